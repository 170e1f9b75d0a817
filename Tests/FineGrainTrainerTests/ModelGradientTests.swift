import FineGrain
import FineGrainTrainer
import XCTest

/// Whole-model checks on the tiny configuration (V=7, T=5, d=8, 2 layers, 2 heads).
final class ModelGradientTests: XCTestCase {
    let config = GPTConfig.tiny
    let B = 2, T = 5

    func fixture() throws -> (GPT, [Int32], [Int32], [Float], [Float]) {
        let model = try GPT(config: config, seed: 11)
        // larger-than-GPT-2 init so that attention and LayerNorm are far from trivial
        var rng = SplitMix64(seed: 12)
        for i in 0 ..< model.parameters.count { model.parameters[i] += Float(0.3 * rng.normal()) }
        let tokens: [Int32] = (0 ..< B * T).map { _ in Int32(rng.next() % 7) }
        let targets: [Int32] = (0 ..< B * T).map { _ in Int32(rng.next() % 7) }
        var w = FD.randn(B * T, &rng)
        w[B * T - 1] = 0; w[B * T - 2] = 0 // padded tail of row 1
        let u = FD.randn(B * T, &rng, scale: 0.5)
        return (model, tokens, targets, w, u)
    }

    /// Parameter gradients of `L = sum_t w_t log p_t + sum_t u_t H_t` against central differences of the
    /// Double-precision reference forward.
    func testWholeModelGradientMatchesFiniteDifferences() throws {
        let (model, tokens, targets, w, u) = try fixture()
        let (lp, ent) = try model.logprobs(tokens: tokens, targets: targets, batch: B, length: T, entropies: true)
        model.zeroGradients()
        try model.backward(targets: targets, dLogprob: w, dEntropy: u)
        let analytic = model.gradients
        // forward agrees with the Double reference
        let floatLoss = FD.dot(lp, w) + FD.dot(ent!, u)
        let refLoss = ReferenceGPT.loss(config: config, params: model.parameters, tokens: tokens, targets: targets,
                                        weights: w, entropyWeights: u, B: B, T: T)
        print("ModelGradientTests forward: float \(floatLoss) double \(refLoss)")
        XCTAssertEqual(floatLoss, refLoss, accuracy: 1e-4 * max(1, abs(refLoss)))
        // numeric gradient in Double (Float parameters perturbed by h = 1e-3; the reference is exact enough)
        let numeric = FD.numericGradient(model.parameters, h: 1e-3) {
            ReferenceGPT.loss(config: self.config, params: $0, tokens: tokens, targets: targets, weights: w, entropyWeights: u, B: self.B, T: self.T)
        }
        let err = FD.maxRelativeError(analytic, numeric, floor: 0.01)
        print("ModelGradientTests whole model (\(analytic.count) parameters): max relative error \(String(format: "%.2e", err))")
        for view in model.layout.tensors {
            let e = FD.maxRelativeError(Array(analytic[view.range]), Array(numeric[view.range]), floor: 0.01)
            print("  \(view.name): \(String(format: "%.2e", e))")
        }
        XCTAssertLessThan(err, 1e-2)
    }

    /// Changing a future token leaves every earlier position's logits bit-identical.
    func testAttentionIsCausal() throws {
        let (model, tokens, _, _, _) = try fixture()
        let base = try model.forward(tokens: tokens, batch: B, length: T)
        let V = config.vocabSize
        for k in 1 ..< T {
            var changed = tokens
            changed[k] = (changed[k] + 1) % Int32(V)           // row 0
            changed[T + k] = (changed[T + k] + 3) % Int32(V)   // row 1
            let out = try model.forward(tokens: changed, batch: B, length: T)
            for b in 0 ..< B {
                for t in 0 ..< k {
                    let r = ((b * T + t) * V) ..< ((b * T + t + 1) * V)
                    XCTAssertEqual(Array(out[r]), Array(base[r]), "row \(b) position \(t) changed when token \(k) changed")
                }
                let r = ((b * T + k) * V) ..< ((b * T + k + 1) * V)
                XCTAssertNotEqual(Array(out[r]), Array(base[r]))
            }
        }
    }

    /// Padding (zero-weight positions after a row's end) contributes nothing: changing padded tokens
    /// leaves the gradient bit-identical.
    func testPaddingContributesNothing() throws {
        let (model, tokens, targets, w, _) = try fixture()
        _ = try model.logprobs(tokens: tokens, targets: targets, batch: B, length: T)
        model.zeroGradients()
        try model.backward(targets: targets, dLogprob: w)
        let g1 = model.gradients
        var padded = tokens, paddedTargets = targets
        padded[B * T - 1] = (padded[B * T - 1] + 2) % 7
        paddedTargets[B * T - 1] = (paddedTargets[B * T - 1] + 1) % 7
        paddedTargets[B * T - 2] = (paddedTargets[B * T - 2] + 1) % 7
        _ = try model.logprobs(tokens: padded, targets: paddedTargets, batch: B, length: T)
        model.zeroGradients()
        try model.backward(targets: paddedTargets, dLogprob: w)
        XCTAssertEqual(g1, model.gradients)
    }

    func testSupervisedStepReducesLoss() throws {
        let model = try GPT(config: config, seed: 3)
        let tokens: [Int32] = [1, 2, 3, 4, 5, 2, 3, 4, 5, 6]
        let targets = GPT.nextTokenTargets(tokens: tokens, batch: 2, length: 5)
        XCTAssertEqual(Array(targets[0 ..< 5]), [2, 3, 4, 5, 0])
        let weights: [Float] = [1, 1, 1, 1, 0, 1, 1, 1, 1, 0]
        var first = 0.0, last = 0.0
        for step in 0 ..< 60 {
            model.zeroGradients()
            let loss = try model.supervisedStep(tokens: tokens, targets: targets, weights: weights, batch: 2, length: 5)
            if step == 0 {
                first = loss
                let (lp, _) = try model.logprobs(targets: targets)
                let mean = -FD.dot(lp, weights) / 8
                XCTAssertEqual(loss, mean, accuracy: 1e-5)
                XCTAssertEqual(try model.crossEntropyLoss(targets: targets, weights: weights), loss, accuracy: 1e-9)
            }
            last = loss
            for i in 0 ..< model.parameters.count { model.parameters[i] -= 0.5 * model.gradients[i] }
        }
        print("ModelGradientTests supervised: loss \(first) -> \(last)")
        XCTAssertLessThan(last, first * 0.5)
    }

    func testBadInputThrowsNamingTheField() throws {
        let model = try GPT(config: config, seed: 1)
        func field(_ body: () throws -> Void) -> String {
            do { try body(); return "no error" } catch let e as FineGrainError {
                if case let .invalidField(f, _) = e { return f }
                if case let .invalidParameter(n, _, _) = e { return n }
                return "\(e)"
            } catch { return "\(error)" }
        }
        XCTAssertEqual(field { try model.forward(tokens: [1, 2, 9], batch: 1, length: 3) }, "tokens")
        XCTAssertEqual(field { try model.forward(tokens: [1, 2, -1], batch: 1, length: 3) }, "tokens")
        XCTAssertEqual(field { try model.forward(tokens: [Int32](repeating: 1, count: 6), batch: 1, length: 6) }, "length")
        XCTAssertEqual(field { try model.forward(tokens: [1, 2, 3], batch: 1, length: 2) }, "tokens")
        XCTAssertEqual(field { try model.forward(tokens: [], batch: 0, length: 2) }, "batch")
        try model.forward(tokens: [1, 2, 3], batch: 1, length: 3)
        XCTAssertEqual(field { _ = try model.logprobs(targets: [1, 2]) }, "targets")
        XCTAssertEqual(field { _ = try model.logprobs(targets: [1, 2, 7]) }, "targets")
        XCTAssertEqual(field { _ = try model.logprobs(targets: [1, 2, 3], temperature: 0) }, "temperature")
        XCTAssertEqual(field { try model.backward(targets: [1, 2, 3], dLogprob: [1, 1]) }, "dLogprob")
        XCTAssertEqual(field { try model.backward(targets: [1, 2, 3], dLogprob: [1, .nan, 1]) }, "dLogprob")
        XCTAssertEqual(field { try model.backward(targets: [1, 2, 3], dLogprob: [1, 1, 1], dEntropy: [1]) }, "dEntropy")
        XCTAssertEqual(field { try model.backward(dLogits: [1]) }, "dLogits")
        XCTAssertEqual(field { _ = try GPT(config: GPTConfig(vocabSize: 5, contextLength: 4, dModel: 6, nLayers: 1, nHeads: 4), seed: 0) }, "nHeads")
        XCTAssertEqual(field { _ = try GPT(config: self.config, parameters: [1, 2]) }, "parameters")
    }

    func testLayoutAndDefaultConfig() throws {
        let small = GPTConfig.small()
        XCTAssertEqual(small.parameterCount, 108_288)
        let layout = ParameterLayout(config: small)
        XCTAssertEqual(layout.count, small.parameterCount)
        var next = 0
        for v in layout.tensors { XCTAssertEqual(v.offset, next); next += v.count }
        XCTAssertEqual(layout.view(named: "h.1.mlp.fc.weight")?.shape, [256, 64])
        // deterministic init
        XCTAssertEqual(try GPT(config: config, seed: 5).parameters, try GPT(config: config, seed: 5).parameters)
        XCTAssertNotEqual(try GPT(config: config, seed: 5).parameters, try GPT(config: config, seed: 6).parameters)
    }

    func testFrozenReferenceIsAValueCopy() throws {
        let (model, tokens, targets, _, _) = try fixture()
        let ref = FrozenReference(copying: model)
        let before = try ref.logprobs(of: tokens, targets: targets, batch: B, length: T)
        XCTAssertEqual(before, try model.logprobs(tokens: tokens, targets: targets, batch: B, length: T).logprobs)
        for i in 0 ..< model.parameters.count { model.parameters[i] *= 1.1 }
        XCTAssertEqual(before, try ref.logprobs(of: tokens, targets: targets, batch: B, length: T))
        XCTAssertNotEqual(before, try model.logprobs(tokens: tokens, targets: targets, batch: B, length: T).logprobs)
    }
}
