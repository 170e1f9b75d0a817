import FineGrain
import FineGrainTrainer
import XCTest

/// The causal-triangle attention kernel (`Attention.forwardTriangle` / `backwardTriangle`) against the
/// scalar reference and the BLAS path, on shapes that take each lane width (head sizes 3, 5, 8, 12, 16,
/// 20, 32: SIMD4/8/16/32 with and without padding), T = 1, T not a multiple of 8, and both
/// `accumulate` modes; plus finite differences through the kernel and the dispatch rule.
final class ModelAttentionKernelTests: XCTestCase {
    /// (B, T, C, NH) covering every lane width, padded and exact, T = 1 and ragged T.
    let shapes: [(Int, Int, Int, Int)] = [
        (2, 64, 64, 4), (1, 13, 16, 2), (3, 1, 12, 1), (2, 9, 12, 4), (1, 20, 40, 2),
        (1, 70, 64, 2), (2, 17, 20, 4), (1, 8, 16, 1), (2, 1, 64, 4),
    ]

    /// max |a - b| / max |b| (relative to the reference's scale).
    func relDiff(_ a: [Float], _ b: [Float]) -> Double {
        XCTAssertEqual(a.count, b.count)
        let scale = max(b.map { Double(abs($0)) }.max() ?? 0, 1e-12)
        return (zip(a, b).map { Double(abs($0 - $1)) }.max() ?? 0) / scale
    }

    func testTriangleForwardEqualsReference() {
        var rng = SplitMix64(seed: 41)
        for (B, T, C, NH) in shapes {
            let qkv = FD.randn(B * T * 3 * C, &rng, scale: 2)
            var out = [Float](repeating: .nan, count: B * T * C), att = [Float](repeating: .nan, count: B * NH * T * T)
            Attention.forwardTriangle(out: &out, att: &att, qkv: qkv, B: B, T: T, C: C, NH: NH)
            var outR = [Float](repeating: 0, count: B * T * C), attR = [Float](repeating: 0, count: B * NH * T * T)
            Attention.forwardReference(out: &outR, att: &attR, qkv: qkv, B: B, T: T, C: C, NH: NH)
            let tag = "B=\(B) T=\(T) C=\(C) NH=\(NH)"
            XCTAssertLessThan(relDiff(out, outR), 1e-5, "out \(tag)")
            XCTAssertLessThan(relDiff(att, attR), 1e-5, "att \(tag)")
            // exact zeros above the diagonal
            for bh in 0 ..< B * NH { for i in 0 ..< T { for j in (i + 1) ..< max(i + 1, T) {
                XCTAssertEqual(att[(bh * T + i) * T + j], 0, "att above diagonal \(tag)")
            } } }
            var outB = [Float](repeating: 0, count: B * T * C), attB = [Float](repeating: 0, count: B * NH * T * T)
            Attention.forwardBLAS(out: &outB, att: &attB, qkv: qkv, B: B, T: T, C: C, NH: NH)
            XCTAssertLessThan(relDiff(out, outB), 1e-5, "out vs BLAS \(tag)")
        }
    }

    func testTriangleBackwardEqualsReference() {
        var rng = SplitMix64(seed: 42)
        for (B, T, C, NH) in shapes {
            let qkv = FD.randn(B * T * 3 * C, &rng, scale: 2), dout = FD.randn(B * T * C, &rng)
            var out = [Float](repeating: 0, count: B * T * C), att = [Float](repeating: 0, count: B * NH * T * T)
            Attention.forwardReference(out: &out, att: &att, qkv: qkv, B: B, T: T, C: C, NH: NH)
            let tag = "B=\(B) T=\(T) C=\(C) NH=\(NH)"
            // accumulate: false overwrites (NaN start must not leak)
            var dq = [Float](repeating: .nan, count: qkv.count), dqR = [Float](repeating: 0, count: qkv.count)
            Attention.backwardTriangle(dqkv: &dq, dout: dout, qkv: qkv, att: att, B: B, T: T, C: C, NH: NH, accumulate: false)
            Attention.backwardReference(dqkv: &dqR, dout: dout, qkv: qkv, att: att, B: B, T: T, C: C, NH: NH)
            XCTAssertLessThan(relDiff(dq, dqR), 1e-5, "dqkv overwrite \(tag)")
            // accumulate: true adds onto what is there
            let start = FD.randn(qkv.count, &rng)
            var dqA = start, dqAR = start
            Attention.backwardTriangle(dqkv: &dqA, dout: dout, qkv: qkv, att: att, B: B, T: T, C: C, NH: NH, accumulate: true)
            Attention.backwardReference(dqkv: &dqAR, dout: dout, qkv: qkv, att: att, B: B, T: T, C: C, NH: NH)
            XCTAssertLessThan(relDiff(dqA, dqAR), 1e-5, "dqkv accumulate \(tag)")
            var dqB = [Float](repeating: 0, count: qkv.count)
            Attention.backwardBLAS(dqkv: &dqB, dout: dout, qkv: qkv, att: att, B: B, T: T, C: C, NH: NH, accumulate: false)
            XCTAssertLessThan(relDiff(dq, dqB), 1e-5, "dqkv vs BLAS \(tag)")
        }
    }

    /// Central differences of `sum(out * dout)` through the kernel, at a padded head size and ragged T.
    func testTriangleMatchesFiniteDifferences() {
        var rng = SplitMix64(seed: 43)
        for (B, T, C, NH) in [(1, 11, 12, 2), (2, 5, 16, 1)] {
            let qkv = FD.randn(B * T * 3 * C, &rng), dout = FD.randn(B * T * C, &rng)
            func fwd(_ qkv: [Float]) -> [Float] {
                var out = [Float](repeating: 0, count: B * T * C), att = [Float](repeating: 0, count: B * NH * T * T)
                Attention.forwardTriangle(out: &out, att: &att, qkv: qkv, B: B, T: T, C: C, NH: NH)
                return out
            }
            var out = [Float](repeating: 0, count: B * T * C), att = [Float](repeating: 0, count: B * NH * T * T)
            Attention.forwardTriangle(out: &out, att: &att, qkv: qkv, B: B, T: T, C: C, NH: NH)
            var dqkv = [Float](repeating: 0, count: qkv.count)
            Attention.backwardTriangle(dqkv: &dqkv, dout: dout, qkv: qkv, att: att, B: B, T: T, C: C, NH: NH)
            let numeric = FD.numericGradient(qkv, h: 1e-2) { FD.dot(fwd($0), dout) }
            XCTAssertLessThan(FD.maxRelativeError(dqkv, numeric), 1e-2, "B=\(B) T=\(T) C=\(C) NH=\(NH)")
        }
    }

    func testDispatchRule() {
        let saved = Attention.preferTriangle
        defer { Attention.preferTriangle = saved }
        XCTAssertEqual(saved, Attention.cpuSpecificBuild || BLASKernels.isWeak(BLASKernels.coreName))
        XCTAssertTrue(BLASKernels.isWeak("Prescott"))
        XCTAssertFalse(BLASKernels.isWeak("Haswell"))
        XCTAssertFalse(BLASKernels.isWeak("SkylakeX"))
        Attention.preferTriangle = true
        XCTAssertTrue(Attention.usesTriangle(T: 64, C: 64, NH: 4))  // the default model
        XCTAssertTrue(Attention.usesTriangle(T: 1, C: 64, NH: 2))
        XCTAssertFalse(Attention.usesTriangle(T: 64, C: 128, NH: 2)) // head size 64: BLAS
        XCTAssertFalse(Attention.usesTriangle(T: Attention.triangleMaxLength + 1, C: 64, NH: 4))
        Attention.preferTriangle = false
        XCTAssertFalse(Attention.usesTriangle(T: 64, C: 64, NH: 4))
    }

    /// The whole model's loss gradient is the same (to float rounding) on either attention path.
    func testModelGradientsAgreeAcrossAttentionPaths() throws {
        let saved = Attention.preferTriangle
        defer { Attention.preferTriangle = saved }
        let config = GPTConfig(vocabSize: 11, contextLength: 13, dModel: 32, nLayers: 2, nHeads: 2)
        let B = 3, T = 13
        var rng = SplitMix64(seed: 44)
        let tokens: [Int32] = (0 ..< B * T).map { _ in Int32(rng.next() % 11) }
        let targets = GPT.nextTokenTargets(tokens: tokens, batch: B, length: T)
        let w = [Float](repeating: 1 / Float(B * T), count: B * T)
        var grads: [[Float]] = []
        for triangle in [true, false] {
            Attention.preferTriangle = triangle
            let model = try GPT(config: config, seed: 45)
            _ = try model.logprobs(tokens: tokens, targets: targets, batch: B, length: T)
            try model.backward(targets: targets, dLogprob: w)
            grads.append(model.gradients)
        }
        XCTAssertLessThan(relDiff(grads[0], grads[1]), 1e-4)
        XCTAssertGreaterThan(grads[0].map { abs($0) }.max() ?? 0, 0)
    }
}
