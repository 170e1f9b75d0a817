import XCTest
@testable import FineGrain

/// Bad input throws a FineGrainError naming the field or parameter and the reason.
final class LossErrorTests: XCTestCase {
    func expectError(_ body: @autoclosure () throws -> Any, contains words: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { e in
            XCTAssertTrue(e is FineGrainError, "\(e)", file: file, line: line)
            for w in words { XCTAssertTrue("\(e)".contains(w), "'\(e)' does not mention '\(w)'", file: file, line: line) }
        }
    }

    func testLossMissingOldLogprobsNamesField() {
        var input = randomPolicyInput(seed: 1, spread: 0.1)
        input.oldLogprob = nil
        for name in ["vanilla", "gspo", "cispo", "clip_cov", "dppo_tv", "geo_mean", "dro"] {
            expectError(try Registry.loss(name, input: input, params: ["ppo_kl_coef": .number(0.1)].filter { _ in name == "kl_cov" }),
                        contains: ["old_logprobs", name])
        }
        // GPG does not read them.
        XCTAssertNoThrow(try Registry.loss("gpg", input: input))
        var v = makeInput(masks: [[1, 1]])
        v.vpreds = [0, 0]; v.values = [0, 0]
        expectError(try Registry.loss("value_loss", input: v), contains: ["returns"])
    }

    func testLossUnknownAggModeThrows() {
        let input = randomPolicyInput(seed: 1, spread: 0.1)
        expectError(try Registry.loss("vanilla", input: input, params: ["loss_agg_mode": .string("bogus-mode")]),
                    contains: ["loss_agg_mode", "bogus-mode"])
        expectError(try Aggregation(mode: .tokenMean, dpSize: 2).aggregate([1], offsets: [0, 1], mask: [1]),
                    contains: ["batch_num_tokens", "dp_size"])
        expectError(try Registry.loss("vanilla", input: input, params: ["loss_agg_mode": .string("seq-mean-token-mean"), "dp_size": .number(4)]),
                    contains: ["global_batch_size"])
        expectError(try Registry.loss("vanilla", input: input, params: ["clip_ratio": .number(0.2), "bogus": .number(1)]),
                    contains: ["bogus", "unknown parameter"])
    }

    func testLossDualClipMustExceedOne() {
        let input = randomPolicyInput(seed: 1, spread: 0.1)
        for c in [1.0, 0.5] {
            expectError(try Registry.loss("vanilla", input: input, params: ["clip_ratio_c": .number(c)]), contains: ["clip_ratio_c", "greater than 1"])
        }
    }

    func testLossMismatchedColumnLength() {
        var input = randomPolicyInput(seed: 1, spread: 0.1)
        input.advantages = [1, 2, 3]
        expectError(try Registry.loss("vanilla", input: input), contains: ["advantages", "3 entries"])
        var bad = randomPolicyInput(seed: 1, spread: 0.1)
        bad.mask.removeLast()
        expectError(try Registry.loss("gpg", input: bad), contains: ["mask"])
        expectError(try KLPenalty.compute("k3", logprob: [1, 2], ref: [1]), contains: ["ref_logprobs"])
        expectError(try Entropy.fromLogits([1, 2, 3], vocab: 2), contains: ["logits", "multiple"])
    }

    func testLossOtherParameterChecks() {
        let input = randomPolicyInput(seed: 1, spread: 0.1)
        expectError(try Registry.loss("kl_cov", input: input), contains: ["ppo_kl_coef"])
        expectError(try Registry.loss("clip_cov", input: input, params: ["clip_cov_ratio": .number(0)]), contains: ["clip_cov_ratio"])
        expectError(try Registry.loss("dro", input: input, params: ["dro_beta": .number(0)]), contains: ["dro_beta"])
        expectError(try Registry.loss("sapo", input: input, params: ["tau_neg": .number(-1)]), contains: ["tau_neg"])
        expectError(try KLPenalty.estimator("full"), contains: ["full"])
        expectError(try KLPenalty.estimator("k7"), contains: ["k7"])
    }

    func testLossClipCovSeedIsReproducible() throws {
        let input = randomPolicyInput(seed: 4, spread: 0.3)
        let p: [String: ParamValue] = ["clip_cov_ratio": .number(0.1), "clip_cov_lb": .number(-10), "clip_cov_ub": .number(10), "seed": .number(3)]
        let a = try Registry.loss("clip_cov", input: input, params: p)
        let b = try Registry.loss("clip_cov", input: input, params: p)
        XCTAssertEqual(a.value, b.value); XCTAssertEqual(a.gradient, b.gradient)
        XCTAssertEqual(a.gradient.filter { $0 == 0 }.count, b.gradient.filter { $0 == 0 }.count)
    }
}
