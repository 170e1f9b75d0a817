import Dispatch

/// Thread policy for the trainer's own loops (attention, LayerNorm, GELU, log-softmax rows).
///
/// OpenBLAS runs its own pthreads for sgemm; on a 2-core machine, letting both OpenBLAS and our
/// `DispatchQueue.concurrentPerform` loops use 2 threads is fine because they never overlap in time (a
/// layer is either a BLAS call or one of our loops). `ModelBenchmark` measures the choices; see its docs.
public enum Parallel {
    /// Upper bound on the chunks our loops split into (1 = run serially). Default 2 (the target machine).
    nonisolated(unsafe) public static var maxThreads: Int = 2

    /// Runs `body(i)` for `i in 0 ..< count`, split into at most `maxThreads` contiguous chunks when the
    /// estimated work (`count * costPerItem` scalar ops) is large enough to amortise the dispatch.
    @inline(__always)
    public static func forEach(_ count: Int, costPerItem: Int, _ body: (Int) -> Void) {
        let threads = Swift.min(maxThreads, count)
        if threads <= 1 || count &* costPerItem < 32_768 {
            for i in 0 ..< count { body(i) }
            return
        }
        let chunk = (count + threads - 1) / threads
        withoutActuallyEscaping(body) { escapable in
            nonisolated(unsafe) let f = escapable
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                let lo = t &* chunk, hi = Swift.min(count, lo &+ chunk)
                var i = lo
                while i < hi { f(i); i &+= 1 }
            }
        }
    }
}
