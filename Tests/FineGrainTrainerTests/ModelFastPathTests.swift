import FineGrain
import FineGrainTrainer
import XCTest

/// The eight-lane kernels (LayerNorm, GELU, causal softmax, log-softmax) and the data-parallel batch
/// shards: fast == reference to ~1e-5 at shapes that take the SIMD paths (and their scalar tails), the
/// fast layers and the whole model against finite differences at such shapes, and sharded == unsharded.
final class ModelFastPathTests: XCTestCase {
    override func tearDown() { Parallel.maxThreads = 2; Parallel.batchShards = 2 }

    func maxDiff(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).map { Double(abs($0 - $1)) }.max() ?? 0 }

    func testLayerNormFastEqualsReference() {
        var rng = SplitMix64(seed: 31)
        for (N, C) in [(5, 8), (37, 64), (3, 12)] { // 12: not a multiple of 8, falls back
            let x = FD.randn(N * C, &rng, scale: 3), w = FD.randn(C, &rng), b = FD.randn(C, &rng), d = FD.randn(N * C, &rng)
            var o1 = [Float](repeating: 0, count: N * C), o2 = o1, m1 = [Float](repeating: 0, count: N), m2 = m1, r1 = m1, r2 = m1
            LayerNorm.forward(out: &o1, mean: &m1, rstd: &r1, inp: x, weight: w, bias: b, N: N, C: C)
            LayerNorm.forwardReference(out: &o2, mean: &m2, rstd: &r2, inp: x, weight: w, bias: b, N: N, C: C)
            XCTAssertLessThan(maxDiff(o1, o2), 1e-5, "forward \(N)x\(C)")
            XCTAssertLessThan(maxDiff(r1, r2), 1e-5, "rstd \(N)x\(C)")
            var dx1 = [Float](repeating: 0.5, count: N * C), dx2 = dx1, dw1 = [Float](repeating: 1, count: C), dw2 = dw1, db1 = dw1, db2 = dw1
            LayerNorm.backward(dinp: &dx1, dweight: &dw1, dbias: &db1, dout: d, inp: x, weight: w, mean: m2, rstd: r2, N: N, C: C)
            LayerNorm.backwardReference(dinp: &dx2, dweight: &dw2, dbias: &db2, dout: d, inp: x, weight: w, mean: m2, rstd: r2, N: N, C: C)
            XCTAssertLessThan(maxDiff(dx1, dx2), 1e-5, "dx \(N)x\(C)")
            XCTAssertLessThan(maxDiff(dw1, dw2), 1e-4, "dw \(N)x\(C)")
            XCTAssertLessThan(maxDiff(db1, db2), 1e-4, "db \(N)x\(C)")
            // accumulate: false overwrites
            var dx3 = [Float](repeating: .nan, count: N * C)
            LayerNorm.backward(dinp: &dx3, dweight: &dw1, dbias: &db1, dout: d, inp: x, weight: w, mean: m2, rstd: r2, N: N, C: C, accumulate: false)
            XCTAssertLessThan(maxDiff(dx3.map { $0 + 0.5 }, dx2), 1e-5, "overwrite \(N)x\(C)")
        }
    }

    func testLayerNormFastPathFiniteDifferences() {
        var rng = SplitMix64(seed: 32)
        let N = 3, C = 16
        let x = FD.randn(N * C, &rng), w = FD.randn(C, &rng), bias = FD.randn(C, &rng), dout = FD.randn(N * C, &rng)
        func fwd(_ x: [Float], _ w: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: N * C), m = [Float](repeating: 0, count: N), r = m
            LayerNorm.forward(out: &out, mean: &m, rstd: &r, inp: x, weight: w, bias: bias, N: N, C: C)
            return out
        }
        var out = [Float](repeating: 0, count: N * C), m = [Float](repeating: 0, count: N), r = m
        LayerNorm.forward(out: &out, mean: &m, rstd: &r, inp: x, weight: w, bias: bias, N: N, C: C)
        var dx = [Float](repeating: 0, count: N * C), dw = [Float](repeating: 0, count: C), db = dw
        LayerNorm.backward(dinp: &dx, dweight: &dw, dbias: &db, dout: dout, inp: x, weight: w, mean: m, rstd: r, N: N, C: C)
        XCTAssertLessThan(FD.maxRelativeError(dx, FD.numericGradient(x, h: 1e-2) { FD.dot(fwd($0, w), dout) }), 1e-2)
        XCTAssertLessThan(FD.maxRelativeError(dw, FD.numericGradient(w, h: 1e-2) { FD.dot(fwd(x, $0), dout) }), 1e-2)
    }

    func testGELUFastEqualsReference() {
        var rng = SplitMix64(seed: 33)
        let n = 2051 // two 1024-chunks of SIMD8 blocks and a scalar tail
        let x = FD.randn(n, &rng, scale: 4) + [-20, 20, 0], d = FD.randn(n + 3, &rng)
        var o1 = [Float](repeating: 0, count: n + 3), o2 = o1, t1 = o1, t2 = o1
        GELU.forward(out: &o1, inp: x, count: n + 3, tanhCache: &t1)
        GELU.forwardReference(out: &o2, inp: x, count: n + 3, tanhCache: &t2)
        XCTAssertLessThan(maxDiff(o1, o2), 1e-6)
        XCTAssertLessThan(maxDiff(t1, t2), 1e-6)
        for cache in [true, false] {
            var g1 = [Float](repeating: 0.25, count: n + 3), g2 = g1
            if cache {
                GELU.backward(dinp: &g1, inp: x, dout: d, count: n + 3, tanhCache: t1)
            } else {
                GELU.backward(dinp: &g1, inp: x, dout: d, count: n + 3)
            }
            GELU.backwardReference(dinp: &g2, inp: x, dout: d, count: n + 3, tanhCache: t2)
            XCTAssertLessThan(maxDiff(g1, g2), 1e-5, "cache \(cache)")
        }
        var g3 = [Float](repeating: .nan, count: n + 3), g4 = [Float](repeating: 0, count: n + 3)
        GELU.backward(dinp: &g3, inp: x, dout: d, count: n + 3, tanhCache: t1, accumulate: false)
        GELU.backwardReference(dinp: &g4, inp: x, dout: d, count: n + 3, tanhCache: t2)
        XCTAssertLessThan(maxDiff(g3, g4), 1e-5)
    }

    func testLogSoftmaxFastEqualsReferenceAndFiniteDifferences() {
        var rng = SplitMix64(seed: 34)
        for V in [8, 32] {
            let N = 9
            let z = FD.randn(N * V, &rng, scale: 3), g = FD.randn(N, &rng), e = FD.randn(N, &rng)
            let y: [Int32] = (0 ..< N).map { _ in Int32(rng.next() % UInt64(V)) }
            var gz = g
            gz[2] = 0 // a row with both coefficients zero
            var ez = e
            ez[2] = 0
            for tau: Float in [1, 0.7] {
                var lp1 = [Float](repeating: 0, count: N), lp2 = lp1, h1 = lp1, h2 = lp1
                LogSoftmax.forward(logprobs: &lp1, entropies: &h1, logits: z, targets: y, N: N, V: V, temperature: tau)
                LogSoftmax.forwardReference(logprobs: &lp2, entropies: &h2, logits: z, targets: y, N: N, V: V, temperature: tau)
                XCTAssertLessThan(maxDiff(lp1, lp2), 1e-5, "logprobs V=\(V) tau=\(tau)")
                XCTAssertLessThan(maxDiff(h1, h2), 1e-5, "entropies V=\(V) tau=\(tau)")
                var d1 = [Float](repeating: .nan, count: N * V), d2 = d1
                LogSoftmax.backward(dlogits: &d1, logits: z, targets: y, dLogprob: gz, dEntropy: ez, N: N, V: V, temperature: tau)
                LogSoftmax.backwardReference(dlogits: &d2, logits: z, targets: y, dLogprob: gz, dEntropy: ez, N: N, V: V, temperature: tau)
                XCTAssertLessThan(maxDiff(d1, d2), 1e-5, "dlogits V=\(V) tau=\(tau)")
                XCTAssertEqual(Array(d1[(2 * V) ..< (3 * V)]), [Float](repeating: 0, count: V))
                func loss(_ z: [Float]) -> Double {
                    var lp = [Float](repeating: 0, count: N), h = lp
                    LogSoftmax.forward(logprobs: &lp, entropies: &h, logits: z, targets: y, N: N, V: V, temperature: tau)
                    return FD.dot(lp, gz) + FD.dot(h, ez)
                }
                XCTAssertLessThan(FD.maxRelativeError(d1, FD.numericGradient(z, h: 1e-2, loss)), 1e-2, "FD V=\(V) tau=\(tau)")
            }
        }
    }

    func testAttentionSIMDSoftmaxEqualsReference() {
        var rng = SplitMix64(seed: 35)
        for (B, T, C, NH) in [(2, 64, 64, 4), (1, 13, 16, 2), (3, 8, 8, 1)] {
            let qkv = FD.randn(B * T * 3 * C, &rng, scale: 2), dout = FD.randn(B * T * C, &rng)
            var out = [Float](repeating: 0, count: B * T * C), att = [Float](repeating: .nan, count: B * NH * T * T)
            Attention.forward(out: &out, att: &att, qkv: qkv, B: B, T: T, C: C, NH: NH)
            var outR = [Float](repeating: 0, count: B * T * C), attR = [Float](repeating: 0, count: B * NH * T * T)
            Attention.forwardReference(out: &outR, att: &attR, qkv: qkv, B: B, T: T, C: C, NH: NH)
            XCTAssertLessThan(maxDiff(out, outR), 1e-5, "out T=\(T)")
            // 2e-6: the triangle kernel sums each score q.k in a different order than the reference
            XCTAssertLessThan(maxDiff(att, attR), 2e-6, "att T=\(T)")
            var dq = [Float](repeating: .nan, count: qkv.count), dqR = [Float](repeating: 0, count: qkv.count)
            Attention.backward(dqkv: &dq, dout: dout, qkv: qkv, att: att, B: B, T: T, C: C, NH: NH, accumulate: false)
            Attention.backwardReference(dqkv: &dqR, dout: dout, qkv: qkv, att: attR, B: B, T: T, C: C, NH: NH)
            XCTAssertLessThan(maxDiff(dq, dqR), 1e-4, "dqkv T=\(T)")
        }
        // finite differences through the SIMD softmax with a scalar tail (T = 11)
        let B = 1, T = 11, C = 8, NH = 1
        let qkv = FD.randn(B * T * 3 * C, &rng), dout = FD.randn(B * T * C, &rng)
        func fwd(_ qkv: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: B * T * C), att = [Float](repeating: 0, count: B * NH * T * T)
            Attention.forward(out: &out, att: &att, qkv: qkv, B: B, T: T, C: C, NH: NH)
            return out
        }
        var out = [Float](repeating: 0, count: B * T * C), att = [Float](repeating: 0, count: B * NH * T * T)
        Attention.forward(out: &out, att: &att, qkv: qkv, B: B, T: T, C: C, NH: NH)
        var dqkv = [Float](repeating: 0, count: qkv.count)
        Attention.backward(dqkv: &dqkv, dout: dout, qkv: qkv, att: att, B: B, T: T, C: C, NH: NH)
        XCTAssertLessThan(FD.maxRelativeError(dqkv, FD.numericGradient(qkv, h: 1e-2) { FD.dot(fwd($0), dout) }), 1e-2)
    }

    /// A configuration whose every layer takes the eight-lane path (C, hs, V multiples of 8; T = 9 gives
    /// the causal softmax a scalar tail), three rows so the two shards are uneven, against central
    /// differences of the Double reference.
    func testWholeModelFastPathsMatchFiniteDifferences() throws {
        let config = GPTConfig(vocabSize: 8, contextLength: 9, dModel: 8, nLayers: 2, nHeads: 1)
        let B = 3, T = 9
        let model = try GPT(config: config, seed: 13)
        var rng = SplitMix64(seed: 14)
        for i in 0 ..< model.parameters.count { model.parameters[i] += Float(0.3 * rng.normal()) }
        let tokens: [Int32] = (0 ..< B * T).map { _ in Int32(rng.next() % 8) }
        let targets: [Int32] = (0 ..< B * T).map { _ in Int32(rng.next() % 8) }
        let w = FD.randn(B * T, &rng), u = FD.randn(B * T, &rng, scale: 0.5)
        let (lp, ent) = try model.logprobs(tokens: tokens, targets: targets, batch: B, length: T, entropies: true)
        model.zeroGradients()
        try model.backward(targets: targets, dLogprob: w, dEntropy: u)
        let refLoss = ReferenceGPT.loss(config: config, params: model.parameters, tokens: tokens, targets: targets,
                                        weights: w, entropyWeights: u, B: B, T: T)
        XCTAssertEqual(FD.dot(lp, w) + FD.dot(ent!, u), refLoss, accuracy: 1e-4 * max(1, abs(refLoss)))
        let numeric = FD.numericGradient(model.parameters, h: 1e-3) {
            ReferenceGPT.loss(config: config, params: $0, tokens: tokens, targets: targets, weights: w, entropyWeights: u, B: B, T: T)
        }
        let err = FD.maxRelativeError(model.gradients, numeric, floor: 0.01)
        print("ModelFastPathTests whole model (\(numeric.count) parameters): max relative error \(String(format: "%.2e", err))")
        XCTAssertLessThan(err, 1e-2)
    }

    /// 1, 2 and 3 batch shards give the same log-probs and gradients (up to the order gradient
    /// contributions are summed in); gradients accumulate across calls in every mode.
    func testShardedEqualsUnsharded() throws {
        let config = GPTConfig.small()
        let model = try GPT(config: config, seed: 15)
        var rng = SplitMix64(seed: 16)
        let B = 5, T = 24
        let tokens = (0 ..< B * T).map { _ in Int32(rng.next() % 32) }
        let targets = GPT.nextTokenTargets(tokens: tokens, batch: B, length: T)
        let g = FD.randn(B * T, &rng), e = FD.randn(B * T, &rng, scale: 0.1)
        func run(_ shards: Int) throws -> ([Float], [Float]) {
            Parallel.batchShards = shards
            model.zeroGradients()
            var lp: [Float] = []
            for _ in 0 ..< 2 {
                lp = try model.logprobs(tokens: tokens, targets: targets, batch: B, length: T).logprobs
                try model.backward(targets: targets, dLogprob: g, dEntropy: e)
            }
            return (lp, model.gradients)
        }
        let one = try run(1)
        let scale = Double(one.1.map { abs($0) }.max()!)
        for shards in [2, 3, 8] {
            let s = try run(shards)
            XCTAssertLessThan(maxDiff(s.0, one.0), 1e-5, "logprobs, \(shards) shards")
            XCTAssertLessThan(maxDiff(s.1, one.1), 1e-5 * scale, "gradients, \(shards) shards")
        }
    }
}
