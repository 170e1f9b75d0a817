import CBLAS
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Thread policy for the trainer's own loops (attention, LayerNorm, GELU, log-softmax rows) and for the
/// data-parallel batch shards of `GPT.forward` / `backward`.
///
/// Two levels, never both at once:
/// - `shards`: the batch rows are split into `batchShards` contiguous shards; each runs the whole model
///   (forward, or backward into its own gradient buffer) on one thread with single-threaded BLAS, and the
///   shards' gradients are summed in shard order. One fork/join per pass instead of one per layer, and
///   every sgemm runs on one core without OpenBLAS's thread hand-off. The shard count depends only on the
///   batch size, never on `maxThreads`, so serial and threaded runs give bit-identical results.
/// - `forEach`: outside shards (sampling, log-softmax rows, single-row batches) a loop splits into at most
///   `maxThreads` chunks; inside a shard it runs serially.
public enum Parallel {
    /// Upper bound on the chunks our loops split into (1 = run serially). Default 2 (the target machine).
    nonisolated(unsafe) public static var maxThreads: Int = 2

    /// Data-parallel shards of a forward/backward batch (at most one per row; 1 = no sharding). Results
    /// depend on it (the order gradient contributions are summed in) but not on `maxThreads`. Default 2.
    nonisolated(unsafe) public static var batchShards: Int = 2

    /// Whether the calling thread is inside a `shards` body (its `forEach` loops then run serially).
    static var insideShard: Bool { pthread_getspecific(shardKey) != nil }

    /// Runs `body(i)` for `i in 0 ..< count`, split into at most `maxThreads` contiguous chunks when the
    /// estimated work (`count * costPerItem` scalar ops) is large enough to amortise the dispatch.
    @inline(__always)
    public static func forEach(_ count: Int, costPerItem: Int, _ body: (Int) -> Void) {
        let threads = Swift.min(maxThreads, count)
        if threads <= 1 || count &* costPerItem < 32_768 || insideShard {
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

    /// Rows `lo ..< hi` of shard `s` when `rows` are split into `count` near-equal contiguous shards.
    @inline(__always)
    static func shardRange(_ s: Int, of count: Int, rows: Int) -> Range<Int> {
        (s &* rows / count) ..< ((s &+ 1) &* rows / count)
    }

    /// Runs `body(s)` for the `count` shards: concurrently on up to `maxThreads` threads, or in order on
    /// this thread; either way with OpenBLAS at one thread and nested `forEach` loops serial. `count == 1`
    /// just calls `body(0)` with nothing changed.
    static func shards(_ count: Int, _ body: (Int) -> Void) {
        if count <= 1 { body(0); return }
        let blas = openblas_get_num_threads()
        if blas != 1 { openblas_set_num_threads(1) }
        defer { if blas != 1 { openblas_set_num_threads(blas) } }
        let threads = Swift.min(maxThreads, count)
        withoutActuallyEscaping(body) { escapable in
            nonisolated(unsafe) let f = escapable
            @Sendable func run(_ t: Int) {
                let was = pthread_getspecific(shardKey)
                pthread_setspecific(shardKey, UnsafeRawPointer(bitPattern: 1))
                var s = t
                while s < count { f(s); s &+= threads }
                pthread_setspecific(shardKey, was)
            }
            if threads <= 1 { run(0) } else { DispatchQueue.concurrentPerform(iterations: threads, execute: run) }
        }
    }
}

/// Thread-specific flag: non-nil while the thread runs a `Parallel.shards` body.
private let shardKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()
