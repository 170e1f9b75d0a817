import FineGrain
import FineGrainTrainer
import XCTest

final class ModelOptimizerTests: XCTestCase {
    /// The first two AdamW steps against the formulas evaluated by hand in Double.
    func testAdamWFirstStepsByHand() throws {
        let lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.5
        let opt = try AdamW(decays: [true, false], beta1: Float(b1), beta2: Float(b2), eps: Float(eps), weightDecay: Float(wd))
        var p: [Float] = [1, -2]
        let g1: [Double] = [0.5, 0.1], g2: [Double] = [-0.25, 0.3]
        try opt.update(parameters: &p, gradients: g1.map(Float.init), learningRate: Float(lr))
        // step 1: mhat = g, vhat = g^2 -> update = lr * (g / (|g| + eps) + wd * theta) for the decayed entry
        var e: [Double] = [1 - lr * (0.5 / (0.5 + eps) + wd * 1), -2 - lr * (0.1 / (0.1 + eps))]
        XCTAssertEqual(Double(p[0]), e[0], accuracy: 1e-6)
        XCTAssertEqual(Double(p[1]), e[1], accuracy: 1e-6)
        try opt.update(parameters: &p, gradients: g2.map(Float.init), learningRate: Float(lr))
        for i in 0 ..< 2 {
            let m = b1 * (1 - b1) * g1[i] + (1 - b1) * g2[i]
            let v = b2 * (1 - b2) * g1[i] * g1[i] + (1 - b2) * g2[i] * g2[i]
            let mhat = m / (1 - b1 * b1), vhat = v / (1 - b2 * b2)
            e[i] -= lr * (mhat / (vhat.squareRoot() + eps) + (i == 0 ? wd * e[i] : 0))
            XCTAssertEqual(Double(p[i]), e[i], accuracy: 1e-5, "parameter \(i) after step 2")
        }
        XCTAssertEqual(opt.step, 2)
    }

    /// AdamW with a warm-up + cosine schedule minimises a badly scaled quadratic.
    func testAdamWMinimisesQuadratic() throws {
        let a: [Float] = [1, 10, 100, 0.1], c: [Float] = [3, -1, 0.5, 2]
        var p: [Float] = [0, 0, 0, 0]
        let opt = try AdamW(decays: [false, false, false, false], beta1: 0.9, beta2: 0.99, weightDecay: 0)
        let schedule = LearningRateSchedule.cosine(peak: 0.1, warmup: 20, total: 2000, minimum: 0.001)
        try schedule.validate()
        for step in 0 ..< 2000 {
            let g = (0 ..< 4).map { 2 * a[$0] * (p[$0] - c[$0]) }
            try opt.update(parameters: &p, gradients: g, learningRate: schedule.rate(at: step))
        }
        for i in 0 ..< 4 { XCTAssertEqual(p[i], c[i], accuracy: 0.02, "coordinate \(i)") }
    }

    /// Decoupled weight decay alone shrinks decayed parameters geometrically: theta *= (1 - lr wd) per step
    /// (with zero gradients the Adam term is 0).
    func testDecoupledDecayWithZeroGradient() throws {
        let opt = try AdamW(decays: [true, false], weightDecay: 0.1)
        var p: [Float] = [2, 2]
        for _ in 0 ..< 10 { try opt.update(parameters: &p, gradients: [0, 0], learningRate: 0.5) }
        XCTAssertEqual(Double(p[0]), 2 * pow(1 - 0.05, 10), accuracy: 1e-5)
        XCTAssertEqual(p[1], 2)
    }

    func testLayoutDecayMaskSkipsGainsBiasesAndEmbeddings() throws {
        let model = try GPT(config: .tiny, seed: 0)
        let opt = try AdamW(layout: model.layout, weightDecay: 1)
        var p = model.parameters
        try opt.update(parameters: &p, gradients: [Float](repeating: 0, count: p.count), learningRate: 0.1)
        for v in model.layout.tensors {
            let changed = v.range.contains { p[$0] != model.parameters[$0] }
            XCTAssertEqual(changed, v.name.hasSuffix(".weight") && !v.name.contains("ln_"), v.name)
        }
    }

    func testGlobalNormClipping() {
        var g: [Float] = [3, 4]
        let n = GradientClipping.clipGlobalNorm(&g, maxNorm: 1)
        XCTAssertEqual(n, 5)
        XCTAssertEqual(g[0], 0.6, accuracy: 1e-6)
        XCTAssertEqual(g[1], 0.8, accuracy: 1e-6)
        var small: [Float] = [0.3, 0.4]
        XCTAssertEqual(GradientClipping.clipGlobalNorm(&small, maxNorm: 1), 0.5, accuracy: 1e-7)
        XCTAssertEqual(small, [0.3, 0.4])
        var bad: [Float] = [.nan, 1]
        XCTAssertTrue(GradientClipping.clipGlobalNorm(&bad, maxNorm: 1).isNaN)
    }

    func testLearningRateSchedules() throws {
        let c = LearningRateSchedule.constant(peak: 1, warmup: 4)
        XCTAssertEqual((0 ..< 6).map { c.rate(at: $0) }, [0.25, 0.5, 0.75, 1, 1, 1])
        let s = LearningRateSchedule.cosine(peak: 1, warmup: 10, total: 110, minimum: 0.1)
        XCTAssertEqual(s.rate(at: 0), 0.1, accuracy: 1e-6)
        XCTAssertEqual(s.rate(at: 10), 1, accuracy: 1e-6)
        XCTAssertEqual(s.rate(at: 60), 0.55, accuracy: 1e-6)
        XCTAssertEqual(s.rate(at: 110), 0.1, accuracy: 1e-6)
        XCTAssertEqual(s.rate(at: 500), 0.1, accuracy: 1e-6)
        XCTAssertThrowsError(try LearningRateSchedule.cosine(peak: 1, warmup: 10, total: 5, minimum: 0).validate())
    }

    func testBadOptimizerInputThrows() throws {
        XCTAssertThrowsError(try AdamW(decays: [true], beta1: 1))
        let opt = try AdamW(decays: [true, true])
        var p: [Float] = [1]
        XCTAssertThrowsError(try opt.update(parameters: &p, gradients: [1], learningRate: 0.1)) { e in
            XCTAssertEqual(e as? FineGrainError, .invalidField(field: "parameters", reason: "expected 2 values, got 1"))
        }
        var q: [Float] = [1, 2]
        XCTAssertThrowsError(try opt.update(parameters: &q, gradients: [1], learningRate: 0.1))
        XCTAssertThrowsError(try opt.update(parameters: &q, gradients: [1, 1], learningRate: .nan))
    }
}
