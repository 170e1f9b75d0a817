import CBLAS
import Dispatch
import FineGrain

/// Throughput of the tiny GPT on CPU, for the CLI and for the PyTorch peer comparison
/// (`Benchmarks/torch_model_peer.py` times the same architecture and shapes; `Benchmarks/model_pairs.sh`
/// runs the two back to back).
///
/// Threads: forward and backward run as `Parallel.batchShards` (default 2) data-parallel batch shards,
/// each on one thread with OpenBLAS set to one thread for the duration (see `Parallel.shards`); outside
/// the shards (sampling, log-softmax rows) OpenBLAS runs its own pthread pool inside `cblas_sgemm` and our
/// loops use `Parallel.maxThreads` chunks. `OPENBLAS_NUM_THREADS` (read by OpenBLAS at load time) or
/// `setBLASThreads` sets BLAS's count, `Parallel.maxThreads = 1` runs the shards one after the other
/// (same results, bit for bit), which degrades least when several trainers share the cores.
///
/// Measured (release, `GPTConfig.small()` = 108,288 parameters, B = 16, T = 64, on the 2-core target; see
/// the README's model table): the matmuls bound a step. With OpenBLAS's SSE3 "Prescott" kernels (what
/// 0.3.21 picks on this CPU) they are ~73% of `layerProfile`'s per-section minima and the sgemms run at
/// ~30 GFLOP/s; with `OPENBLAS_CORETYPE=SkylakeX` at 135-160 GFLOP/s (~50% of ~6.3 ms), then attention
/// ~23% and GELU ~11%. The MLP layers run at 90-130% of a bare `cblas_sgemm` of the same shape (the layer
/// IS that sgemm plus a bias broadcast; >100% readings are timing noise).
public enum ModelBenchmark {
    /// Seconds since an arbitrary origin (monotonic).
    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

    /// OpenBLAS's thread count (from `OPENBLAS_NUM_THREADS` or the core count).
    public static var blasThreads: Int { Int(openblas_get_num_threads()) }
    /// The kernel family OpenBLAS picked for this CPU (`openblas_get_corename()`, e.g. "Prescott", "SkylakeX";
    /// `OPENBLAS_CORETYPE` overrides it at load time).
    public static var blasCoreName: String { BLASKernels.coreName }
    /// Sets OpenBLAS's thread count for subsequent sgemm calls.
    public static func setBLASThreads(_ n: Int) { openblas_set_num_threads(Int32(Swift.max(1, n))) }

    /// Tokens per second of (a) forward + log-probs + backward on `batch x length` tokens (the RL update)
    /// and (b) KV-cache sampling of `batch` rows from an 8-token prompt to `length` tokens. Best of
    /// `repeats` timings after one warm-up.
    public static func run(config: GPTConfig, batch: Int, length: Int, repeats: Int = 5) throws -> (fwdBwdTokensPerSec: Double, sampleTokensPerSec: Double) {
        let model = try GPT(config: config, seed: 1)
        var rng = SplitMix64(seed: 2)
        let n = batch * length
        let tokens = (0 ..< n).map { _ in Int32(truncatingIfNeeded: rng.next() % UInt64(config.vocabSize)) }
        let targets = GPT.nextTokenTargets(tokens: tokens, batch: batch, length: length)
        let g = [Float](repeating: 1 / Float(n), count: n)
        var best = Double.infinity
        for r in 0 ... Swift.max(1, repeats) {
            let t0 = now()
            _ = try model.logprobs(tokens: tokens, targets: targets, batch: batch, length: length)
            try model.backward(targets: targets, dLogprob: g)
            let dt = now() - t0
            if r > 0 { best = Swift.min(best, dt) }
        }
        let prompt = Swift.min(8, length - 1)
        let prompts = (0 ..< batch).map { b in Array(tokens[(b * length) ..< (b * length + prompt)]) }
        var bestSample = Double.infinity
        for r in 0 ... Swift.max(1, repeats) {
            let t0 = now()
            _ = try model.sample(prompts: prompts, maxNewTokens: length - prompt, temperature: 1, rng: &rng)
            let dt = now() - t0
            if r > 0 { bestSample = Swift.min(bestSample, dt) }
        }
        return (Double(n) / best, Double(batch * (length - prompt)) / bestSample)
    }

    /// One matmul shape of the model: the layer's time (bias + sgemm as the model calls it) against a bare
    /// `cblas_sgemm` of the same `M x N x K`.
    public struct MatmulResult: Sendable {
        public var name: String
        public var m: Int, n: Int, k: Int
        public var layerGFlops: Double
        public var sgemmGFlops: Double
        public var efficiency: Double { layerGFlops / sgemmGFlops }
    }

    /// The forward and backward matmuls of the MLP (the largest) and the LM head at `batch x length`.
    public static func matmulEfficiency(config: GPTConfig, batch: Int, length: Int, repeats: Int = 20) -> [MatmulResult] {
        let N = batch * length, C = config.dModel, H = config.mlpHidden
        var rng = SplitMix64(seed: 3)
        func buf(_ k: Int) -> FloatBuffer {
            let b = FloatBuffer(k)
            for i in 0 ..< k { b.p[i] = Float(rng.normal() * 0.1) }
            return b
        }
        let x = buf(N * H), w = buf(H * C), bias = buf(H), out = buf(N * H), dout = buf(N * H), dx = buf(N * H), dw = buf(H * C)
        func time(_ body: () -> Void) -> Double {
            body()
            var best = Double.infinity
            for _ in 0 ..< repeats { let t0 = now(); body(); best = Swift.min(best, now() - t0) }
            return best
        }
        func gf(_ m: Int, _ n: Int, _ k: Int, _ t: Double) -> Double { 2 * Double(m) * Double(n) * Double(k) / t / 1e9 }
        var results: [MatmulResult] = []
        // fc forward: [N, C] x [4C, C]^T
        let tf = time { Linear.forward(out: out.p, inp: x.p, weight: w.p, bias: bias.p, N: N, C: C, OC: H) }
        let sf = time { cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(N), Int32(H), Int32(C), 1, x.p, Int32(C), w.p, Int32(C), 0, out.p, Int32(H)) }
        results.append(MatmulResult(name: "mlp.fc forward", m: N, n: H, k: C, layerGFlops: gf(N, H, C, tf), sgemmGFlops: gf(N, H, C, sf)))
        // mlp.proj backward (dinp + dweight): dout [N, C], W [C, 4C]
        let tb = time { Linear.backward(dinp: dx.p, dweight: dw.p, dbias: bias.p, dout: dout.p, inp: x.p, weight: w.p, N: N, C: H, OC: C) }
        let sb = time {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(N), Int32(H), Int32(C), 1, dout.p, Int32(C), w.p, Int32(H), 1, dx.p, Int32(H))
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(C), Int32(H), Int32(N), 1, dout.p, Int32(C), x.p, Int32(H), 1, dw.p, Int32(H))
        }
        results.append(MatmulResult(name: "mlp.proj backward", m: N, n: H, k: C, layerGFlops: 2 * gf(N, H, C, tb), sgemmGFlops: 2 * gf(N, H, C, sb)))
        return results
    }

    /// A one-paragraph text report of `run` and `matmulEfficiency` (for the CLI).
    public static func report(config: GPTConfig, batch: Int, length: Int, repeats: Int = 5) throws -> String {
        let r = try run(config: config, batch: batch, length: length, repeats: repeats)
        var s = "GPT d=\(config.dModel) L=\(config.nLayers) H=\(config.nHeads) V=\(config.vocabSize) (\(config.parameterCount) params), "
        s += "B=\(batch) T=\(length), BLAS threads \(blasThreads), our threads \(Parallel.maxThreads)\n"
        s += "  forward+backward: \(Int(r.fwdBwdTokensPerSec)) tokens/s\n"
        s += "  KV-cache sampling: \(Int(r.sampleTokensPerSec)) tokens/s\n"
        for m in matmulEfficiency(config: config, batch: batch, length: length) {
            s += "  \(m.name) [\(m.m)x\(m.n)x\(m.k)]: layer \(String(format: "%.1f", m.layerGFlops)) GFLOP/s, "
            s += "sgemm \(String(format: "%.1f", m.sgemmGFlops)) GFLOP/s (\(String(format: "%.0f", 100 * m.efficiency))%)\n"
        }
        return s
    }
}
