import FineGrain

extension ModelBenchmark {
    /// One attention shape timed both ways on one thread: the triangle kernel and the per-(batch, head)
    /// sgemms, forward and backward (`accumulate: false`, as the model calls it), best of `repeats`.
    public struct AttentionTiming: Sendable {
        public var B: Int, T: Int, C: Int, NH: Int
        public var triangleForwardMs: Double, triangleBackwardMs: Double
        public var blasForwardMs: Double, blasBackwardMs: Double
        /// BLAS time over triangle time, forward + backward (> 1: the triangle kernel is faster).
        public var speedup: Double { (blasForwardMs + blasBackwardMs) / (triangleForwardMs + triangleBackwardMs) }
    }

    /// `AttentionTiming` for each sequence length in `lengths` (batch `B`, width `C`, `NH` heads), with our
    /// loops and OpenBLAS on one thread: the data the `Attention.triangleMaxLength` crossover comes from.
    public static func attentionKernels(B: Int, lengths: [Int], C: Int, NH: Int, repeats: Int = 20) -> [AttentionTiming] {
        let threads = Parallel.maxThreads, blas = blasThreads
        Parallel.maxThreads = 1
        setBLASThreads(1)
        defer { Parallel.maxThreads = threads; setBLASThreads(blas) }
        var rng = SplitMix64(seed: 4)
        return lengths.map { T in
            let qkv = FloatBuffer(B * T * 3 * C), dout = FloatBuffer(B * T * C)
            for i in 0 ..< B * T * 3 * C { qkv.p[i] = Float(rng.normal()) }
            for i in 0 ..< B * T * C { dout.p[i] = Float(rng.normal()) }
            let out = FloatBuffer(B * T * C), att = FloatBuffer(B * NH * T * T), dqkv = FloatBuffer(B * T * 3 * C)
            func time(_ body: () -> Void) -> Double {
                body()
                var best = Double.infinity
                for _ in 0 ..< Swift.max(1, repeats) { let t0 = now(); body(); best = Swift.min(best, now() - t0) }
                return best * 1e3
            }
            let tf = time { Attention.forwardTriangle(out: out.p, att: att.p, qkv: qkv.p, B: B, T: T, C: C, NH: NH) }
            let tb = time { Attention.backwardTriangle(dqkv: dqkv.p, dout: dout.p, qkv: qkv.p, att: att.p, B: B, T: T, C: C, NH: NH, accumulate: false) }
            let bf = time { Attention.forwardBLAS(out: out.p, att: att.p, qkv: qkv.p, B: B, T: T, C: C, NH: NH) }
            let bb = time { Attention.backwardBLAS(dqkv: dqkv.p, dout: dout.p, qkv: qkv.p, att: att.p, B: B, T: T, C: C, NH: NH, accumulate: false) }
            return AttentionTiming(B: B, T: T, C: C, NH: NH, triangleForwardMs: tf, triangleBackwardMs: tb, blasForwardMs: bf, blasBackwardMs: bb)
        }
    }
}
