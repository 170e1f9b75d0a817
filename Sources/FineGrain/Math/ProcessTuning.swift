#if os(Linux)
@_silgen_name("mallopt") private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

/// Process-level settings for FineGrain's executables (`finegrain`, `finegrain-service-bench`).
public enum ProcessTuning {
    /// Allocator tuning for a process that allocates many same-sized, multi-megabyte token columns in a
    /// loop (estimator outputs, per-step batches): glibc serves blocks above 128 KiB with fresh `mmap`s, so
    /// every call pays page faults and kernel zeroing for its outputs (measured: more system than user time
    /// in `bench`). Keeping freed blocks in the heap (as PyTorch's caching allocator does for tensors) lets
    /// the next call reuse them. Process-level only; the library itself changes nothing.
    public static func keepLargeFreedBlocks() {
        #if os(Linux)
        _ = glibcMallopt(-3, 1 << 30)  // M_MMAP_THRESHOLD (<malloc.h>, not exported by Swift's Glibc module)
        _ = glibcMallopt(-1, 1 << 30)  // M_TRIM_THRESHOLD
        #endif
    }

}
