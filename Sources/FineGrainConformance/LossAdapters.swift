import FineGrain

/// Conformance adapters for policy / value losses, KL estimators and loss aggregation.
let lossAdapters: [ConformanceAdapter] = []
