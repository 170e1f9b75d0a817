import XCTest
@testable import FineGrain

/// Finite-difference checks of every loss's gradient (w.r.t. log-probs; vpreds for the value loss), the KL
/// estimators and the entropy backward, on random inputs away from clip boundaries.
final class LossGradientTests: XCTestCase {
    let modes = LossAggMode.names

    func testLossGradientsVanillaAllModes() throws {
        for (k, mode) in modes.enumerated() {
            for spread in [0.1, 0.6] {   // 0.6: many clipped / dual-clipped tokens
                let input = randomPolicyInput(seed: UInt64(10 + k), spread: spread, withIS: k % 2 == 0)
                try checkGradient("vanilla", input: input,
                                  params: ["loss_agg_mode": .string(mode), "clip_ratio_low": .number(0.2),
                                           "clip_ratio_high": .number(0.28), "clip_ratio_c": .number(1.5)],
                                  column: \.logprob)
            }
        }
    }

    func testLossGradientsEveryPolicyLoss() throws {
        let cases: [(String, [String: ParamValue])] = [
            ("gpg", [:]),
            ("clip_cov", ["clip_cov_ratio": .number(0.2), "clip_cov_lb": .number(0.0), "clip_cov_ub": .number(5)]),
            ("kl_cov", ["kl_cov_ratio": .number(0.2), "ppo_kl_coef": .number(0.5)]),
            ("sapo", ["tau_pos": .number(1.0), "tau_neg": .number(1.05)]),
            ("geo_mean", ["clip_ratio": .number(0.2)]),
            ("dro", ["dro_beta": .number(0.5)]),
            ("reinforce", [:]),
        ]
        for (name, base) in cases {
            for (k, mode) in ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"].enumerated() {
                var p = base
                p["loss_agg_mode"] = .string(mode)
                let input = randomPolicyInput(seed: UInt64(100 + k), spread: 0.4, withIS: k == 1)
                try checkGradient(name, input: input, params: p, column: \.logprob)
            }
        }
    }

    /// CISPO and DPPO stop the gradient through their ratio weight and validity mask (both functions of
    /// lp − old): moving `old_logprobs` with `logprobs` freezes them, so that finite difference is the
    /// surrogate gradient verl's autograd computes.
    func testLossGradientsStopGradientLosses() throws {
        let cases: [(String, [String: ParamValue])] = [
            ("cispo", ["clip_ratio": .number(0.2)]),
            ("dppo_tv", ["clip_ratio": .number(0.1), "clip_ratio_c": .number(1.2)]),
            ("dppo_kl", ["clip_ratio": .number(0.02)]),
        ]
        for (name, base) in cases {
            for (k, mode) in ["token-mean", "seq-mean-token-mean", "token-sum"].enumerated() {
                var p = base
                p["loss_agg_mode"] = .string(mode)
                let input = randomPolicyInput(seed: UInt64(200 + k), spread: 0.4, withIS: k == 1)
                try checkGradient(name, input: input, params: p, column: \.logprob, alsoShift: \.oldLogprob)
            }
        }
    }

    /// GSPO's token form equals the true gradient of its value when the advantage is constant per response and
    /// every token of a response has the same aggregation weight (no IS weights).
    func testLossGradientGSPO() throws {
        for (k, mode) in ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"].enumerated() {
            for clip in [0.05, 0.5] {
                var input = randomPolicyInput(seed: UInt64(300 + k), spread: 0.3)
                var adv = input.advantages!
                for r in 0 ..< input.count {
                    let range = input.offsets[r] ..< input.offsets[r + 1]
                    for t in range { adv[t] = adv[range.lowerBound] }
                }
                input.advantages = adv
                try checkGradient("gspo", input: input, params: ["clip_ratio": .number(clip), "loss_agg_mode": .string(mode)],
                                  column: \.logprob)
            }
        }
    }

    func testLossGradientValueLoss() throws {
        var rng = TestRNG(7)
        for mode in modes {
            var input = makeInput(masks: [[1, 1, 0, 1], [1, 1, 1, 1, 1], [1, 0, 0]])
            let n = input.tokenCount
            input.values = (0 ..< n).map { _ in rng.uniform(-1, 1) }
            input.returns = (0 ..< n).map { _ in rng.uniform(-1, 1) }
            input.vpreds = input.values!.map { $0 + rng.uniform(-0.6, 0.6) }
            try checkGradient("value_loss", input: input, params: ["cliprange_value": .number(0.2), "loss_agg_mode": .string(mode)],
                              column: \.vpreds)
        }
    }

    func testLossGradientKLEstimators() throws {
        var rng = TestRNG(11)
        let lp = (0 ..< 40).map { _ in rng.uniform(-4, -0.1) }
        let ref = lp.map { $0 + rng.uniform(-2, 2) }
        for name in ["kl", "abs", "k2", "k3"] {
            let o = try KLPenalty.compute(name, logprob: lp, ref: ref)
            let h = 1e-6
            for t in 0 ..< lp.count {
                var a = lp, b = lp
                a[t] += h; b[t] -= h
                let fd = (try KLPenalty.compute(name, logprob: a, ref: ref).values[t] - KLPenalty.compute(name, logprob: b, ref: ref).values[t]) / (2 * h)
                XCTAssertEqual(o.gradient[t], fd, accuracy: 1e-6 * (1 + abs(fd)), "\(name) \(t)")
            }
            // Straight-through forms keep the value and take the k2 gradient.
            let st = try KLPenalty.compute(name + "+", logprob: lp, ref: ref)
            XCTAssertEqual(st.values, o.values)
            for t in 0 ..< lp.count { XCTAssertEqual(st.gradient[t], lp[t] - ref[t], accuracy: 1e-15) }
        }
    }

    func testLossGradientEntropy() throws {
        var rng = TestRNG(5)
        let v = 7, rows = 5
        let z = (0 ..< v * rows).map { _ in rng.uniform(-4, 4) }
        let u = (0 ..< rows).map { _ in rng.uniform(0.5, 2) }
        let (_, g) = try Entropy.withGradient(z, vocab: v, upstream: u)
        let h = 1e-6
        func f(_ x: [Double]) throws -> Double { zip(try Entropy.fromLogits(x, vocab: v), u).reduce(0) { $0 + $1.0 * $1.1 } }
        for i in 0 ..< z.count {
            var a = z, b = z
            a[i] += h; b[i] -= h
            let fd = (try f(a) - f(b)) / (2 * h)
            XCTAssertEqual(g[i], fd, accuracy: 1e-7, "logit \(i)")
        }
    }

    /// The parallel path (large batches) gives the same numbers as the sequential one.
    func testLossLargeBatchMatchesSmallChunks() throws {
        var rng = TestRNG(99)
        let rows = 40, len = 2000
        var input = makeInput(masks: (0 ..< rows).map { r in (0 ..< len).map { t in t < len - r * 10 ? 1 : 0 } })
        let n = input.tokenCount
        let old = (0 ..< n).map { _ in rng.uniform(-3, -0.1) }
        input.oldLogprob = old
        input.logprob = old.map { $0 + rng.uniform(-0.5, 0.5) }
        input.advantages = (0 ..< n).map { _ in rng.uniform(-1, 1) }
        let big = try Registry.loss("vanilla", input: input, params: [:])
        // Reference: the same rows computed one at a time, re-weighted to token-mean.
        var value = 0.0
        var grad = [Double]()
        let total = Double(input.mask.reduce(0) { $0 + Int($1) })
        for r in 0 ..< rows {
            var one = makeInput(masks: [Array(input.mask[input.offsets[r] ..< input.offsets[r + 1]])])
            let range = input.offsets[r] ..< input.offsets[r + 1]
            one.logprob = Array(input.logprob![range]); one.oldLogprob = Array(old[range]); one.advantages = Array(input.advantages![range])
            let o = try Registry.loss("vanilla", input: one, params: ["loss_agg_mode": .string("token-sum")])
            value += o.value
            grad += o.gradient.map { $0 / total }
        }
        XCTAssertEqual(big.value, value / total, accuracy: 1e-12)
        for t in stride(from: 0, to: n, by: 997) { XCTAssertEqual(big.gradient[t], grad[t], accuracy: 1e-15) }
        let kl = try KLPenalty.compute("k3", logprob: input.logprob!, ref: old)
        XCTAssertEqual(kl.values[n - 1], KLPenalty.k3(input.logprob![n - 1], old[n - 1]).0)
    }
}
