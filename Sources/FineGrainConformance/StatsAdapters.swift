import FineGrain

/// Conformance adapters for masked statistics and entropy.
let statsAdapters: [ConformanceAdapter] = []
