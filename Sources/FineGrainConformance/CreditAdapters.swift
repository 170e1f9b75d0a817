import FineGrain

/// Conformance adapters for advantage estimators (golden/verl and golden/papers).
let creditAdapters: [ConformanceAdapter] = []
