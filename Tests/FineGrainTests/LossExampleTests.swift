import XCTest
@testable import FineGrain

/// The worked examples of specs/token_losses.md §A.
final class LossExampleTests: XCTestCase {
    func single(lp: Double, old: Double, adv: Double) -> LossInput {
        var i = makeInput(masks: [[1]])
        i.logprob = [lp]; i.oldLogprob = [old]; i.advantages = [adv]
        return i
    }

    // A.1
    func testLossPPOWorkedExamples() throws {
        let p: [String: ParamValue] = ["clip_ratio": .number(0.2), "clip_ratio_c": .number(3)]
        var o = try Registry.loss("vanilla", input: single(lp: 0.5, old: 0, adv: 1), params: p)
        XCTAssertEqual(o.value, -1.2, accuracy: 1e-12); XCTAssertEqual(o.gradient[0], 0)
        XCTAssertEqual(o.metrics["pg_clipfrac"]!, 1, accuracy: 1e-7)
        o = try Registry.loss("vanilla", input: single(lp: 0.5, old: 0, adv: -1), params: p)
        XCTAssertEqual(o.value, 1.648721, accuracy: 1e-6); XCTAssertEqual(o.gradient[0], 1.648721, accuracy: 1e-6)
        o = try Registry.loss("vanilla", input: single(lp: log(4.0), old: 0, adv: -1), params: p)
        XCTAssertEqual(o.value, 3, accuracy: 1e-12); XCTAssertEqual(o.gradient[0], 0)
        XCTAssertEqual(o.metrics["pg_clipfrac_lower"]!, 1, accuracy: 1e-7)
        // On-policy: ρ = 1, ℓ = −A, gradient −A; the alias gives the same.
        let q = try Registry.loss("ppo_clip", input: single(lp: -1, old: -1, adv: 0.7), params: p)
        XCTAssertEqual(q.value, -0.7, accuracy: 1e-12); XCTAssertEqual(q.gradient[0], -0.7, accuracy: 1e-12)
    }

    // A.2
    func testLossGSPOWorkedExample() throws {
        var i = makeInput(masks: [[1, 1]])
        i.oldLogprob = [-1, -1]; i.logprob = [-0.8, -1.1]; i.advantages = [1, 1]
        let o = try Registry.loss("gspo", input: i, params: ["clip_ratio": .number(0.2), "loss_agg_mode": .string("seq-mean-token-mean")])
        XCTAssertEqual(o.value, -1.051271, accuracy: 1e-6)
        XCTAssertEqual(o.gradient[0], -1.051271 / 2, accuracy: 1e-6)
        XCTAssertEqual(o.gradient[1], -1.051271 / 2, accuracy: 1e-6)
    }

    // A.5. The spec's Dr. GRPO value (2.0 = Σ/C) is the older verl formula; verl 0.9.1 (the golden files)
    // divides the seq-mean-token-sum by C: 3.0 / 3 = 1.0.
    func testLossAggregationWorkedExample() throws {
        let x: [Double] = [1, 2, 0, 3, 0, 0]
        let m: [UInt8] = [1, 1, 0, 1, 0, 0]
        let off = [0, 3, 6]
        func agg(_ mode: LossAggMode, c: Double? = nil) throws -> Double {
            try Aggregation(mode: mode, lossScaleFactor: c).aggregate(x, offsets: off, mask: m)
        }
        XCTAssertEqual(try agg(.tokenMean), 2.0, accuracy: 1e-12)
        XCTAssertEqual(try agg(.tokenSum), 6.0, accuracy: 1e-12)
        XCTAssertEqual(try agg(.seqMeanTokenSum), 3.0, accuracy: 1e-12)
        XCTAssertEqual(try agg(.seqMeanTokenMean), 2.25, accuracy: 1e-7)
        XCTAssertEqual(try agg(.seqMeanTokenSumNorm, c: 3), 1.0, accuracy: 1e-12)
        XCTAssertEqual(try agg(.seqMeanTokenSumNorm), 1.0, accuracy: 1e-12)   // default C = longest row (3)
        // Gradient weights: token-mean 1/N, seq-mean-token-mean 1/(G n_i).
        let w = Aggregation(mode: .seqMeanTokenMean).weights(offsets: off, mask: m)
        XCTAssertEqual(w.rowWeight[0], 0.25, accuracy: 1e-8); XCTAssertEqual(w.rowWeight[1], 0.5, accuracy: 1e-8)
        // All masked: NaN except token-sum.
        let z: [UInt8] = [0, 0, 0, 0, 0, 0]
        XCTAssertTrue(try Aggregation(mode: .tokenMean).aggregate(x, offsets: off, mask: z).isNaN)
        XCTAssertEqual(try Aggregation(mode: .tokenSum).aggregate(x, offsets: off, mask: z), 0)
    }

    // A.6
    func testLossKLWorkedExample() throws {
        let expect: [(String, Double, Double)] = [("k1", 1, 1), ("kl", 1, 1), ("abs", 1, 1), ("k2", 0.5, 1), ("mse", 0.5, 1),
                                                  ("k3", 0.367879, 1 - exp(-1.0)), ("low_var_kl", 0.367879, 1 - exp(-1.0)),
                                                  ("k3+", 0.367879, 1), ("k1+", 1, 1)]
        for (name, v, g) in expect {
            let o = try KLPenalty.compute(name, logprob: [-1], ref: [-2])
            XCTAssertEqual(o.values[0], v, accuracy: 1e-6, name)
            XCTAssertEqual(o.gradient[0], g, accuracy: 1e-12, name)
        }
        // k3 clamps: |ref − lp| > 20 or the value above 10 kill the gradient.
        let c = try KLPenalty.compute("k3", logprob: [-30, -1, -1, 0], ref: [-1, -30, -6, -12])
        XCTAssertEqual(c.values[0], 10); XCTAssertEqual(c.gradient[0], 0)   // both clamps active
        XCTAssertEqual(c.values[1], 10); XCTAssertEqual(c.gradient[1], 0)   // inner clamp at −20
        XCTAssertEqual(c.values[2], exp(-5.0) + 4, accuracy: 1e-12)
        XCTAssertEqual(c.gradient[2], 1 - exp(-5.0), accuracy: 1e-12)
        XCTAssertEqual(c.values[3], 10); XCTAssertEqual(c.gradient[3], 0)   // value e^-12 + 11 > 10: outer clamp
    }

    // A.7
    func testLossEntropyWorkedExamples() throws {
        let h = try Entropy.fromLogits([0, 0, 1, 0], vocab: 2)
        XCTAssertEqual(h[0], log(2.0), accuracy: 1e-12)
        XCTAssertEqual(h[1], 0.582203, accuracy: 1e-6)
        // A dominant logit: finite, ~0, no overflow.
        let d = try Entropy.fromLogits([60, 0, 0, 0], vocab: 4)
        XCTAssertTrue(d[0].isFinite && d[0] >= 0 && d[0] < 1e-20)
    }

    func testLossPolicyObjectiveCombinesTerms() throws {
        var input = randomPolicyInput(seed: 3, spread: 0.1, withRef: true)
        input.entropy = (0 ..< input.tokenCount).map { Double($0 % 5) * 0.1 + 0.2 }
        let obj = PolicyObjective(loss: "vanilla", params: ["loss_agg_mode": .string("seq-mean-token-mean")],
                                  klCoef: 0.05, klType: "low_var_kl", entropyCoeff: 0.01)
        let o = try obj.compute(input)
        let pg = try Registry.loss("vanilla", input: input, params: ["loss_agg_mode": .string("seq-mean-token-mean")])
        XCTAssertEqual(o.value, pg.value + 0.05 * o.klLoss! - 0.01 * o.entropyLoss!, accuracy: 1e-12)
        // Gradient: finite differences of pg + kl terms (entropy has no logprob gradient here).
        let h = 1e-6
        for t in 0 ..< input.tokenCount where input.mask[t] != 0 {
            var a = input, b = input
            a.logprob![t] += h; b.logprob![t] -= h
            let fa = try obj.compute(a), fb = try obj.compute(b)
            let fd = ((fa.value + 0.01 * fa.entropyLoss!) - (fb.value + 0.01 * fb.entropyLoss!)) / (2 * h)
            XCTAssertEqual(o.gradient[t], fd, accuracy: 1e-6)
        }
    }
}
