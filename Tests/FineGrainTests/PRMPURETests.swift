import XCTest
@testable import FineGrain

/// PURE (`pure`, `pure_verl`): the spec's worked examples (§6 e), invariants (§X.6) and bad input.
final class PRMPURETests: XCTestCase {
    /// Spec §6(e) two-sample batch: A has steps of 4, 3, 5 tokens (ends 5, 9, 15), B of 6, 6 (ends 7, 14).
    func specBatch(solved: [Double] = [0, 1]) -> RolloutBatch {
        var b = RolloutBatch(groups: [.int(0), .int(0)], lengths: [15, 14])
        b.stepOffsets = [0, 3, 5]; b.stepEnds = [5, 9, 15, 7, 14]; b.stepReward = [0.9, -0.2, 0.5, 0.8, 0.6]
        b.outcome = solved
        return b
    }

    func assertClose(_ a: [Double], _ b: [Double], tol: Double = 1e-6, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: tol, "\(a) vs \(b)", file: file, line: line) }
    }

    func testSpecMinFormWeights() {
        let r = PURE.minFormRewards(scores: [0.9, -0.2, 0.5], valid: [true, true, true], temperature: 0.1, uniform: false)
        assertClose(r, [0.000015, -0.199814, 0.000456])
        XCTAssertEqual(r.reduce(0, +), -0.199344, accuracy: 1e-6)
        let s = PURE.minFormRewards(scores: [0.8, 0.6], valid: [true, true], temperature: 0.1, uniform: false)
        assertClose(s, [0.095362, 0.528478])
    }

    func testSpecTokenBaselineReturns() throws {
        let out = try Registry.advantages("pure", batch: specBatch(), params: ["normalize": .bool(false)])
        let a = [Double](repeating: -1.734064, count: 4) + [0] + [Double](repeating: -1.555839, count: 3) + [0]
            + [Double](repeating: -1.222345, count: 5) + [0]
        let b = [Double](repeating: 1.783316, count: 6) + [0] + [Double](repeating: 1.608216, count: 6) + [0]
        assertClose(out.advantages, a + b)
        let shaped = try PURE.shapedRewards(specBatch(), try Params.resolve([:], specs: PURE.info.params, method: "pure"))
        assertClose(shaped.stepRewards, [-0.178225, -0.333495, -0.222345, 0.175100, 0.608216])
        XCTAssertEqual(shaped.stepTokens, [4, 3, 5, 6, 6])
    }

    func testNormalisedAdvantagesHaveZeroMeanUnitStdOffStepEnds() throws {
        let b = specBatch()
        let out = try Registry.advantages("pure", batch: b)
        let ends = Set([4, 8, 14, 15 + 6, 15 + 13])
        let kept = out.advantages.enumerated().filter { !ends.contains($0.offset) }.map(\.element)
        let mean = kept.reduce(0, +) / Double(kept.count)
        let variance = kept.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(kept.count)
        XCTAssertEqual(mean, 0, accuracy: 1e-12)
        XCTAssertEqual(variance, 1, accuracy: 1e-9)
        for e in ends { XCTAssertEqual(out.advantages[e], 0) }
    }

    func testStrictMinFormIntended() throws {
        // Row 0: steps [0.9, -0.2, 0.5] ending at 2, 4, 6; row 1 has zero rewards, so row 0's baseline is 0.
        var b = RolloutBatch(groups: [.int(0), .int(0)], lengths: [6, 2])
        b.stepOffsets = [0, 3, 4]; b.stepEnds = [2, 4, 6, 2]; b.stepReward = [0.9, -0.2, 0.5, 0]
        let out = try Registry.advantages("pure_verl", batch: b, params: ["credit_assignment": .string("strict_min_form"), "adv_norm": .bool(false)])
        assertClose(Array(out.returns![0 ..< 6]), [-0.2, -0.2, -0.2, -0.2, 0.5, 0.5])
        // the reference's min over all token rewards lets the zeros between steps in
        let ref = try Registry.advantages("pure_verl", batch: b, params: ["credit_assignment": .string("strict_min_form"),
                                                                          "adv_norm": .bool(false), "reference_compatible": .bool(true)])
        XCTAssertLessThanOrEqual(ref.returns![5], 0.5)
        XCTAssertEqual(ref.returns![4], 0, accuracy: 1e-12)
    }

    func testEqualStepScoresReduceToTheSequenceScore() throws {
        for t in [0.01, 0.1, 10.0] {
            let r = PURE.minFormRewards(scores: [0.3, 0.3, 0.3, 0.3], valid: [Bool](repeating: true, count: 4), temperature: t, uniform: false)
            assertClose(r, [0.075, 0.075, 0.075, 0.075], tol: 1e-12)   // Σ = 0.3 = min = mean
        }
        // T → 0 gives the min, T → ∞ the mean (spec §X.6)
        XCTAssertEqual(PURE.minFormRewards(scores: [0.9, -0.2, 0.5], valid: [true, true, true], temperature: 1e-3, uniform: false).reduce(0, +), -0.2, accuracy: 1e-9)
        XCTAssertEqual(PURE.minFormRewards(scores: [0.9, -0.2, 0.5], valid: [true, true, true], temperature: 1e6, uniform: false).reduce(0, +), 0.4, accuracy: 1e-6)
    }

    func testSingleStepWeightIsOne() {
        XCTAssertEqual(PURE.minFormRewards(scores: [-0.7], valid: [true], temperature: 0.1, uniform: false), [-0.7])
    }

    func testVerifiableOnlyReducesToRLOO() throws {
        // reward_mode VR, one step ending on EOS, advantages kept there: every token gets the RLOO of `reward`.
        var b = RolloutBatch(groups: [.int(0), .int(0), .int(0), .int(1), .int(1)], lengths: [3, 2, 4, 1, 2])
        b.stepOffsets = [0, 1, 2, 3, 4, 5]; b.stepEnds = [3, 2, 4, 1, 2]; b.stepReward = [0.1, 0.2, 0.3, 0.4, 0.5]
        b.outcome = [1, 0, 0, 1, 0]
        let pure = try Registry.advantages("pure", batch: b, params: ["reward_mode": .string("VR"), "normalize": .bool(false),
                                                                      "nomask_separator_adv": .bool(true)])
        let rloo = try Registry.advantages("rloo", batch: b)
        assertClose(pure.advantages, rloo.advantages, tol: 1e-12)
    }

    func testMaskedPositionsAreZero() throws {
        var b = specBatch()
        for i in [1, 2, 10, 17] { b.mask[i] = 0 }
        b.oldLogprob = (0 ..< b.tokenCount).map { -0.1 * Double($0 % 5) }; b.refLogprob = [Double](repeating: -0.2, count: b.tokenCount)
        let out = try Registry.advantages("pure", batch: b, params: ["kl_coef": .number(0.01)])
        for i in [1, 2, 10, 17] { XCTAssertEqual(out.advantages[i], 0); XCTAssertEqual(out.returns![i], 0) }
        let v = try Registry.advantages("pure_verl", batch: b)
        for i in [1, 2, 10, 17] { XCTAssertEqual(v.advantages[i], 0) }
    }

    func testPermutingAGroupPermutesTheResult() throws {
        let b = specBatch()
        var p = RolloutBatch(groups: [.int(0), .int(0)], lengths: [14, 15])
        p.stepOffsets = [0, 2, 5]; p.stepEnds = [7, 14, 5, 9, 15]; p.stepReward = [0.8, 0.6, 0.9, -0.2, 0.5]; p.outcome = [1, 0]
        for name in ["pure", "pure_verl"] {
            let x = try Registry.advantages(name, batch: b).advantages, y = try Registry.advantages(name, batch: p).advantages
            assertClose(Array(y[14...]) + Array(y[..<14]), x, tol: 1e-12)
        }
    }

    func testBadInput() throws {
        var b = specBatch(); b.stepReward = nil; b.stepOffsets = nil; b.stepEnds = nil
        XCTAssertThrowsError(try Registry.advantages("pure", batch: b)) {
            XCTAssertEqual($0 as? FineGrainError, .missingField(field: "step_rewards", method: "pure"))
        }
        var c = specBatch(); c.stepEnds = [5, 9, 16, 7, 14]
        XCTAssertThrowsError(try Registry.advantages("pure", batch: c)) {
            XCTAssertTrue("\($0)".contains("step_ends") && "\($0)".contains("out of range"), "\($0)")
        }
        var d = specBatch(); d.group = [0, 1]; d.groupIDs = [.int(0), .int(1)]
        XCTAssertThrowsError(try Registry.advantages("pure", batch: d)) {
            XCTAssertTrue("\($0)".contains("at least 2 per group"), "\($0)")
        }
        var e = specBatch(); e.outcome = nil
        XCTAssertThrowsError(try Registry.advantages("pure", batch: e)) {
            XCTAssertEqual($0 as? FineGrainError, .missingField(field: "reward", method: "pure"))
        }
        XCTAssertThrowsError(try Registry.advantages("pure", batch: specBatch(), params: ["n_samples_per_prompt": .number(3)])) {
            XCTAssertTrue("\($0)".contains("not a multiple of 3"), "\($0)")
        }
        XCTAssertThrowsError(try Registry.advantages("pure", batch: specBatch(), params: ["temperature": .number(0)])) {
            XCTAssertTrue("\($0)".contains("temperature"), "\($0)")
        }
        XCTAssertThrowsError(try Registry.advantages("pure", batch: specBatch(), params: ["kl_coef": .number(0.1)])) {
            XCTAssertEqual($0 as? FineGrainError, .missingField(field: "old_logprobs", method: "pure"))
        }
        XCTAssertThrowsError(try PURE.stepEnds(tokens: [3, 2, 2], mask: [1, 1, 1], separators: [2], response: 0)) {
            XCTAssertTrue("\($0)".contains("step separator"), "\($0)")
        }
    }

    func testBenchmarkBatchRuns() throws {
        let b = SyntheticBatch.pureBenchmark(responses: 16, maxLength: 600, group: 8, seed: 3)
        XCTAssertNoThrow(try b.validate())
        XCTAssertEqual(try Registry.advantages("pure", batch: b).advantages.count, b.tokenCount)
        XCTAssertEqual(try Registry.advantages("pure_verl", batch: b).advantages.count, b.tokenCount)
    }
}
