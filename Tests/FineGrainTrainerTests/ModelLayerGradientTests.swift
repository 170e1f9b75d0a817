import FineGrain
import FineGrainTrainer
import XCTest

/// Every layer's backward against central finite differences of `L = sum(out * w)` (random `w`), in Float
/// with small shapes and a relative tolerance of 1e-2 (errors are printed).
final class ModelLayerGradientTests: XCTestCase {
    func report(_ name: String, _ a: [Float], _ n: [Double], tol: Double = 1e-2, file: StaticString = #filePath, line: UInt = #line) {
        let e = FD.maxRelativeError(a, n)
        print("ModelLayerGradientTests \(name): max relative error \(String(format: "%.2e", e))")
        XCTAssertLessThan(e, tol, name, file: file, line: line)
    }

    func testLayerNormBackward() {
        var rng = SplitMix64(seed: 1)
        let N = 3, C = 6
        let x = FD.randn(N * C, &rng), w = FD.randn(C, &rng), bias = FD.randn(C, &rng), dout = FD.randn(N * C, &rng)
        func fwd(_ x: [Float], _ w: [Float], _ bias: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: N * C), m = [Float](repeating: 0, count: N), r = m
            LayerNorm.forward(out: &out, mean: &m, rstd: &r, inp: x, weight: w, bias: bias, N: N, C: C)
            return out
        }
        var out = [Float](repeating: 0, count: N * C), m = [Float](repeating: 0, count: N), r = m
        LayerNorm.forward(out: &out, mean: &m, rstd: &r, inp: x, weight: w, bias: bias, N: N, C: C)
        var dx = [Float](repeating: 0, count: N * C), dw = [Float](repeating: 0, count: C), db = dw
        LayerNorm.backward(dinp: &dx, dweight: &dw, dbias: &db, dout: dout, inp: x, weight: w, mean: m, rstd: r, N: N, C: C)
        report("layernorm dx", dx, FD.numericGradient(x, h: 1e-2) { FD.dot(fwd($0, w, bias), dout) })
        report("layernorm dw", dw, FD.numericGradient(w, h: 1e-2) { FD.dot(fwd(x, $0, bias), dout) })
        report("layernorm db", db, FD.numericGradient(bias, h: 1e-2) { FD.dot(fwd(x, w, $0), dout) })
    }

    func testLinearBackward() {
        var rng = SplitMix64(seed: 2)
        let N = 4, C = 5, OC = 3
        let x = FD.randn(N * C, &rng), w = FD.randn(OC * C, &rng), b = FD.randn(OC, &rng), dout = FD.randn(N * OC, &rng)
        func fwd(_ x: [Float], _ w: [Float], _ b: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: N * OC)
            Linear.forward(out: &out, inp: x, weight: w, bias: b, N: N, C: C, OC: OC)
            return out
        }
        var dx = [Float](repeating: 0, count: N * C), dw = [Float](repeating: 0, count: OC * C), db = [Float](repeating: 0, count: OC)
        Linear.backward(dinp: &dx, dweight: &dw, dbias: &db, dout: dout, inp: x, weight: w, N: N, C: C, OC: OC)
        report("linear dx", dx, FD.numericGradient(x, h: 1e-2) { FD.dot(fwd($0, w, b), dout) })
        report("linear dw", dw, FD.numericGradient(w, h: 1e-2) { FD.dot(fwd(x, $0, b), dout) })
        report("linear db", db, FD.numericGradient(b, h: 1e-2) { FD.dot(fwd(x, w, $0), dout) })
    }

    func testGELUBackward() {
        var rng = SplitMix64(seed: 3)
        let n = 40
        let x = FD.randn(n, &rng, scale: 2), dout = FD.randn(n, &rng)
        func fwd(_ x: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: n)
            GELU.forward(out: &out, inp: x, count: n)
            return out
        }
        var dx = [Float](repeating: 0, count: n)
        GELU.backward(dinp: &dx, inp: x, dout: dout, count: n)
        report("gelu dx", dx, FD.numericGradient(x, h: 1e-2) { FD.dot(fwd($0), dout) })
        // the tanh cache written by forward gives the same backward
        var cache = [Float](repeating: 0, count: n), y2 = cache, dx2 = cache
        GELU.forward(out: &y2, inp: x, count: n, tanhCache: &cache)
        GELU.backward(dinp: &dx2, inp: x, dout: dout, count: n, tanhCache: cache)
        XCTAssertEqual(y2, fwd(x))
        XCTAssertEqual(dx2, dx)
        // value check against the formula in Double
        let y = fwd(x)
        for i in 0 ..< n {
            let d = Double(x[i])
            let ref = 0.5 * d * (1 + tanh((2 / Double.pi).squareRoot() * (d + 0.044715 * d * d * d)))
            XCTAssertEqual(Double(y[i]), ref, accuracy: 1e-5)
        }
        // the rational tanh inside GELU: max error over a fine grid, and saturation
        var worst = 0.0
        for k in -2000 ... 2000 {
            let t = Double(k) / 200
            let xs = [Float](repeating: Float(t), count: 1)
            var o = [Float](repeating: 0, count: 1)
            GELU.forward(out: &o, inp: xs, count: 1)
            let d = Double(Float(t))
            let ref = 0.5 * d * (1 + tanh((2 / Double.pi).squareRoot() * (d + 0.044715 * d * d * d)))
            worst = max(worst, abs(Double(o[0]) - ref) / max(1, abs(ref)))
        }
        print("ModelLayerGradientTests gelu value: max relative error on [-10, 10] \(worst)")
        XCTAssertLessThan(worst, 1e-6)
    }

    func testAttentionBackward() {
        // head sizes 3 (scalar tail only) and 19 (two SIMD8 blocks + tail)
        attentionCase(B: 2, T: 4, C: 6, NH: 2)
        attentionCase(B: 1, T: 5, C: 38, NH: 2)
    }

    func attentionCase(B: Int, T: Int, C: Int, NH: Int) {
        var rng = SplitMix64(seed: 4)
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
        // the BLAS kernels equal the reference loops
        var outR = [Float](repeating: 0, count: B * T * C), attR = [Float](repeating: 0, count: B * NH * T * T)
        Attention.forwardReference(out: &outR, att: &attR, qkv: qkv, B: B, T: T, C: C, NH: NH)
        var dqkvR = [Float](repeating: 0, count: qkv.count)
        Attention.backwardReference(dqkv: &dqkvR, dout: dout, qkv: qkv, att: attR, B: B, T: T, C: C, NH: NH)
        XCTAssertLessThan(zip(out, outR).map { abs($0 - $1) }.max()!, 1e-5)
        XCTAssertLessThan(zip(att, attR).map { abs($0 - $1) }.max()!, 1e-6)
        XCTAssertLessThan(zip(dqkv, dqkvR).map { abs($0 - $1) }.max()!, 1e-5)
        report("attention dqkv hs=\(C / NH)", dqkv, FD.numericGradient(qkv, h: 1e-2) { FD.dot(fwd($0), dout) })
        // rows of att are distributions with zeros above the diagonal
        for r in 0 ..< B * NH * T {
            let t = r % T
            let row = att[(r * T) ..< (r * T + T)]
            XCTAssertEqual(Double(row.reduce(0, +)), 1, accuracy: 1e-5)
            for t2 in (t + 1) ..< T { XCTAssertEqual(row[r * T + t2], 0) }
        }
    }

    func testEmbeddingBackward() {
        var rng = SplitMix64(seed: 5)
        let B = 2, T = 3, C = 4, V = 5
        let tokens: [Int32] = [1, 4, 1, 0, 2, 4]
        let wte = FD.randn(V * C, &rng), wpe = FD.randn(T * C, &rng), dout = FD.randn(B * T * C, &rng)
        func fwd(_ wte: [Float], _ wpe: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: B * T * C)
            Embedding.forward(out: &out, tokens: tokens, wte: wte, wpe: wpe, B: B, T: T, C: C)
            return out
        }
        var dwte = [Float](repeating: 0, count: V * C), dwpe = [Float](repeating: 0, count: T * C)
        Embedding.backward(dwte: &dwte, dwpe: &dwpe, dout: dout, tokens: tokens, B: B, T: T, C: C)
        report("embedding dwte", dwte, FD.numericGradient(wte, h: 1e-2) { FD.dot(fwd($0, wpe), dout) })
        report("embedding dwpe", dwpe, FD.numericGradient(wpe, h: 1e-2) { FD.dot(fwd(wte, $0), dout) })
    }

    func testResidualBackward() {
        let a: [Float] = [1, 2, 3], b: [Float] = [0.5, -1, 4], dout: [Float] = [0.1, 0.2, -0.3]
        var out = [Float](repeating: 0, count: 3)
        Residual.forward(out: &out, a: a, b: b, count: 3)
        XCTAssertEqual(out, [1.5, 1, 7])
        var da = [Float](repeating: 0, count: 3), db = da
        Residual.backward(da: &da, db: &db, dout: dout, count: 3)
        XCTAssertEqual(da, dout)
        XCTAssertEqual(db, dout)
    }

    /// Log-softmax outputs: L = sum_t g_t log p(y_t) + sum_t e_t H_t, at temperature 1 and 0.7.
    func testLogSoftmaxBackward() {
        var rng = SplitMix64(seed: 6)
        let N = 3, V = 5
        let z = FD.randn(N * V, &rng, scale: 2), g = FD.randn(N, &rng), e = FD.randn(N, &rng)
        let y: [Int32] = [0, 3, 4]
        for tau: Float in [1, 0.7] {
            func loss(_ z: [Float]) -> Double {
                var lp = [Float](repeating: 0, count: N), h = lp
                LogSoftmax.forward(logprobs: &lp, entropies: &h, logits: z, targets: y, N: N, V: V, temperature: tau)
                return FD.dot(lp, g) + FD.dot(h, e)
            }
            var dz = [Float](repeating: 0, count: N * V)
            LogSoftmax.backward(dlogits: &dz, logits: z, targets: y, dLogprob: g, dEntropy: e, N: N, V: V, temperature: tau)
            report("logsoftmax dlogits tau=\(tau)", dz, FD.numericGradient(z, h: 1e-2, loss))
        }
        // values: log p sums to one over the vocabulary, entropy of uniform is log V
        let flat = [Float](repeating: 0.3, count: V)
        var lp: [Float] = [0], h: [Float] = [0]
        LogSoftmax.forward(logprobs: &lp, entropies: &h, logits: flat, targets: [2], N: 1, V: V)
        XCTAssertEqual(Double(lp[0]), -log(Double(V)), accuracy: 1e-6)
        XCTAssertEqual(Double(h[0]), log(Double(V)), accuracy: 1e-6)
    }

    func testBLASLinearEqualsReference() {
        var rng = SplitMix64(seed: 7)
        for (N, C, OC) in [(1, 1, 1), (7, 13, 5), (33, 64, 192), (64, 256, 64)] {
            let x = FD.randn(N * C, &rng), w = FD.randn(OC * C, &rng), b = FD.randn(OC, &rng), dout = FD.randn(N * OC, &rng)
            var o1 = [Float](repeating: 0, count: N * OC), o2 = o1
            Linear.forward(out: &o1, inp: x, weight: w, bias: b, N: N, C: C, OC: OC)
            Linear.forwardReference(out: &o2, inp: x, weight: w, bias: b, N: N, C: C, OC: OC)
            var dx1 = [Float](repeating: 0.5, count: N * C), dx2 = dx1
            var dw1 = [Float](repeating: -0.25, count: OC * C), dw2 = dw1
            var db1 = [Float](repeating: 1, count: OC), db2 = db1
            Linear.backward(dinp: &dx1, dweight: &dw1, dbias: &db1, dout: dout, inp: x, weight: w, N: N, C: C, OC: OC)
            Linear.backwardReference(dinp: &dx2, dweight: &dw2, dbias: &db2, dout: dout, inp: x, weight: w, N: N, C: C, OC: OC)
            let tol = 1e-4 * Double(max(C, N, OC))
            func maxDiff(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).map { Double(abs($0 - $1)) }.max() ?? 0 }
            XCTAssertLessThan(maxDiff(o1, o2), tol, "forward \(N)x\(C)x\(OC)")
            XCTAssertLessThan(maxDiff(dx1, dx2), tol, "dinp \(N)x\(C)x\(OC)")
            XCTAssertLessThan(maxDiff(dw1, dw2), tol, "dweight \(N)x\(C)x\(OC)")
            XCTAssertLessThan(maxDiff(db1, db2), tol, "dbias \(N)x\(C)x\(OC)")
        }
    }
}
