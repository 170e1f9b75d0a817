import XCTest
@testable import FineGrain

/// PRIME (`prime`, loss `prime_ce`): the spec's worked example (§7 e), invariants (§X.7), the loss gradient by
/// finite differences, and bad input.
final class PRMPRIMETests: XCTestCase {
    /// Spec §7(e): q_1 = [0.2, −0.1, 0.3] (acc 1), q_2 = [−0.4, 0.1] (acc 0), n = 2.
    func specBatch() -> RolloutBatch {
        var b = RolloutBatch(groups: [.int(0), .int(0)], lengths: [3, 2])
        b.extraTokenColumns["prm_logprobs"] = [0.2, -0.1, 0.3, -0.4, 0.1]
        b.extraTokenColumns["prm_ref_logprobs"] = [0, 0, 0, 0, 0]
        b.outcome = [1, 0]
        return b
    }

    func assertClose(_ a: [Double], _ b: [Double], tol: Double = 1e-6, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: tol, "\(a) vs \(b)", file: file, line: line) }
    }

    func testSpecExampleOriginalRepo() throws {
        let out = try Registry.advantages("prime", batch: specBatch(), params: ["reference_compatible": .string("original")])
        assertClose(out.returns!, [3.124995, 2.083331, 2.541663, -2.416663, -0.458335], tol: 2e-6)
        assertClose(out.advantages, [0.919627, 0.474072, 0.670116, -1.450729, -0.613085], tol: 2e-6)
    }

    func testPaperBaselineExcludesTheRowsOwnMean() throws {
        // implicit source only, no batch_norm, β = 1: r'_{i,t} = r_{i,t} − mean_{j≠i} m̄_j
        let p: [String: ParamValue] = ["beta": .number(1), "prime_norm": .string("none"), "reward_gt_coef": .number(0), "reward_dpo_coef": .number(1)]
        let g = try Registry.advantages("prime", batch: specBatch(), params: p).returns!
        let m1 = (0.2 - 0.1 + 0.3) / 3, m2 = (-0.4 + 0.1) / 2
        let r1 = [0.2 - m2, -0.1 - m2, 0.3 - m2], r2 = [-0.4 - m1, 0.1 - m1]
        assertClose(g, [r1[0] + r1[1] + r1[2], r1[1] + r1[2], r1[2], r2[0] + r2[1], r2[1]], tol: 1e-12)
    }

    func testOutcomeSourceIsRLOOAndEqualCoefficientsCancel() throws {
        var b = RolloutBatch(groups: [.int(0), .int(0), .int(0), .int(1), .int(1)], lengths: [3, 2, 4, 1, 2])
        b.extraTokenColumns["prm_logprobs"] = (0 ..< 12).map { -0.1 * Double($0 % 4) }
        b.extraTokenColumns["prm_ref_logprobs"] = (0 ..< 12).map { -0.05 * Double($0 % 3) }
        b.outcome = [1, 0, 0, 1, 0]
        let onlyGT = try Registry.advantages("prime", batch: b, params: ["reward_dpo_coef": .number(0), "reward_gt_coef": .number(1)])
        let rloo = try Registry.advantages("rloo", batch: b)
        assertClose(onlyGT.returns!, rloo.advantages, tol: 1e-12)   // o_i − mean_{j≠i} o_j on every token
        let five = try Registry.advantages("prime", batch: b).advantages
        let one = try Registry.advantages("prime", batch: b, params: ["reward_dpo_coef": .number(1), "reward_gt_coef": .number(1)]).advantages
        assertClose(five, one, tol: 1e-7)   // up to the whitening epsilon (var + 1e-8)
    }

    func testMaskedPositionsZeroAndPermutation() throws {
        var b = specBatch(); b.mask[1] = 0
        let out = try Registry.advantages("prime", batch: b)
        XCTAssertEqual(out.advantages[1], 0)
        var p = RolloutBatch(groups: [.int(0), .int(0)], lengths: [2, 3])
        p.extraTokenColumns["prm_logprobs"] = [-0.4, 0.1, 0.2, -0.1, 0.3]; p.extraTokenColumns["prm_ref_logprobs"] = [0, 0, 0, 0, 0]
        p.outcome = [0, 1]
        let x = try Registry.advantages("prime", batch: specBatch()).advantages, y = try Registry.advantages("prime", batch: p).advantages
        assertClose(Array(y[2...]) + Array(y[..<2]), x, tol: 1e-12)
    }

    func testRecipeDropsTheLastToken() throws {
        let p = try Params.resolve(["reference_compatible": .string("recipe")], specs: PRIME.info.params, method: "prime")
        let ir = try PRIME.implicitRewards(specBatch(), p, acc: nil)
        XCTAssertEqual(ir.score[2], 0); XCTAssertEqual(ir.score[4], 0)
        XCTAssertEqual(ir.score[0], 0.05 * 0.2, accuracy: 1e-15)
    }

    func testCELossGradientByFiniteDifferences() throws {
        var input = LossInput(offsets: [0, 3, 5, 6], mask: [1, 1, 0, 1, 1, 1])
        input.logprob = [-0.3, -1.2, -0.5, -0.8, -0.1, -2.0]
        input.refLogprob = [-0.4, -0.9, -0.7, -0.6, -0.3, -1.0]
        input.returns = [1, 1, 1, 0, 0, 1]
        for beta in [0.05, 0.5, 3.0] {
            let p: [String: ParamValue] = ["beta": .number(beta)]
            let out = try Registry.loss("prime_ce", input: input, params: p)
            for t in 0 ..< 6 {
                var hi = input, lo = input
                hi.logprob![t] += 1e-6; lo.logprob![t] -= 1e-6
                let fd = (try Registry.loss("prime_ce", input: hi, params: p).value - (try Registry.loss("prime_ce", input: lo, params: p).value)) / 2e-6
                XCTAssertEqual(out.gradient[t], fd, accuracy: 1e-7)
            }
        }
    }

    func testAccuracyFilter() throws {
        var b = RolloutBatch(groups: [.int(0), .int(0), .int(1), .int(1)], lengths: [1, 1, 1, 1])
        b.outcome = [1, 0, 1, 1]
        XCTAssertEqual(try PRIME.accuracyFilter(b), [true, true, false, false])
    }

    func testBadInput() throws {
        var b = specBatch(); b.extraTokenColumns["prm_ref_logprobs"] = nil
        XCTAssertThrowsError(try Registry.advantages("prime", batch: b)) {
            XCTAssertEqual($0 as? FineGrainError, .missingField(field: "prm_ref_logprobs", method: "prime"))
        }
        var c = specBatch(); c.outcome = nil
        XCTAssertThrowsError(try Registry.advantages("prime", batch: c)) {
            XCTAssertEqual($0 as? FineGrainError, .missingField(field: "reward", method: "prime"))
        }
        var d = specBatch(); d.group = [0, 1]; d.groupIDs = [.int(0), .int(1)]
        XCTAssertThrowsError(try Registry.advantages("prime", batch: d)) { XCTAssertTrue("\($0)".contains("at least 2 per group"), "\($0)") }
        var e = RolloutBatch(groups: [.int(0), .int(1), .int(0), .int(1)], lengths: [1, 1, 1, 1])
        e.extraTokenColumns["prm_logprobs"] = [0, 0, 0, 0]; e.extraTokenColumns["prm_ref_logprobs"] = [0, 0, 0, 0]; e.outcome = [1, 0, 0, 1]
        XCTAssertNoThrow(try Registry.advantages("prime", batch: e))       // grouped by id: fine
        XCTAssertThrowsError(try Registry.advantages("prime", batch: e, params: ["n_samples": .number(2)])) {
            XCTAssertTrue("\($0)".contains("contiguous groups of exactly 2"), "\($0)")
        }
        var f = specBatch(); f.mask = [0, 0, 0, 1, 1]
        XCTAssertThrowsError(try Registry.advantages("prime", batch: f)) { XCTAssertTrue("\($0)".contains("no valid token"), "\($0)") }
        XCTAssertThrowsError(try Registry.advantages("prime", batch: specBatch(), params: ["prime_granularity": .string("step")]))
        var input = LossInput(offsets: [0, 2], mask: [1, 1]); input.logprob = [0, 0]; input.refLogprob = [0, 0]; input.returns = [1, 0]
        XCTAssertThrowsError(try Registry.loss("prime_ce", input: input)) { XCTAssertTrue("\($0)".contains("same on every token"), "\($0)") }
    }

    func testBenchmarkBatchRuns() throws {
        let b = SyntheticBatch.primeBenchmark(responses: 16, maxLength: 300, group: 8, seed: 5)
        XCTAssertEqual(try Registry.advantages("prime", batch: b).advantages.count, b.tokenCount)
    }
}
