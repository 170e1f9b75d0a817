import XCTest
@testable import FineGrain

/// G-RA [recon] (spec §13(e)) and TP-GRPO [recon] (spec §10(e)): worked examples, option behaviour, bad input.
final class TreeGRATests: XCTestCase {
    /// Two steps per response, step rewards [0.1, 0.2], token layout 2 + 2 tokens.
    func stepBatch(outcome: [Double], groups: [Int]) -> RolloutBatch {
        var b = TreeSupport.batch(outcome.map { _ in [1, 2, 3, 4] }, groups: groups, outcome: outcome)
        b.stepOffsets = (0 ... outcome.count).map { 2 * $0 }
        b.stepEnds = outcome.flatMap { _ in [2, 4] }
        b.stepReward = outcome.flatMap { _ in [0.1, 0.2] }
        return b
    }

    func totals(_ b: RolloutBatch, _ p: [String: ParamValue]) throws -> [Double] {
        let params = try Params.resolve(p, specs: GatedRewardAccumulation.info.params, method: "g_ra")
        let tr = try GatedRewardAccumulation.gatedTokenRewards(b, params)
        return (0 ..< b.count).map { tr[b.range($0)].reduce(0, +) }
    }

    func testSpecExampleGatedVersusDirect() throws {
        let b = stepBatch(outcome: [0, 1], groups: [0, 0])
        TreeSupport.assertClose(try totals(b, ["thresholds": .string("0.5")]), [0, 1.3], tol: 1e-12)
        TreeSupport.assertClose(try totals(b, ["mode": .string("direct")]), [0.3, 1.3], tol: 1e-12)
        // Placement: step rewards on each step's last token, the outcome on the last token.
        let params = try Params.resolve([:], specs: GatedRewardAccumulation.info.params, method: "g_ra")
        TreeSupport.assertClose(Array(try GatedRewardAccumulation.gatedTokenRewards(b, params)[4 ..< 8]), [0, 0.1, 0, 1.2], tol: 1e-12)
        // The estimator equals the base estimator on the accumulated rewards.
        var totalBatch = b; totalBatch.outcome = [0, 1.3]; totalBatch.stepOffsets = nil; totalBatch.stepEnds = nil; totalBatch.stepReward = nil
        TreeSupport.assertClose(try Registry.advantages("g_ra", batch: b).advantages,
                                try Registry.advantages("grpo", batch: totalBatch).advantages, tol: 1e-12)
        TreeSupport.assertClose(try Registry.advantages("g_ra", batch: b, params: ["base_estimator": .string("rloo")]).advantages,
                                try Registry.advantages("rloo", batch: totalBatch).advantages, tol: 1e-12)
        // Comparator: outcome exactly at the threshold passes with ge, not with gt.
        let edge = stepBatch(outcome: [0.5], groups: [0])
        TreeSupport.assertClose(try totals(edge, [:]), [0.8], tol: 1e-12)
        TreeSupport.assertClose(try totals(edge, ["comparator": .string("gt")]), [0.5], tol: 1e-12)
    }

    func testThreeLevelGatingRules() throws {
        // completion (reward, tau 1), tests (rewards.tests, tau 1), then step rewards; completed but failing.
        var b = stepBatch(outcome: [1, 1, 0], groups: [0, 0, 0])
        b.namedRewards["tests"] = [0, 1, 1]
        let base: [String: ParamValue] = ["higher_levels": .string("tests"), "thresholds": .string("1, 1")]
        func with(_ rule: String) -> [String: ParamValue] { base.merging(["gating_rule": .string(rule)]) { $1 } }
        TreeSupport.assertClose(try totals(b, with("all_higher_levels")), [1, 2.3, 0], tol: 1e-12)
        // Literal immediate rule: the steps' immediate higher level is `tests` (spec §13(e) claims otherwise).
        TreeSupport.assertClose(try totals(b, with("immediate_higher_level")), [1, 2.3, 0.3], tol: 1e-12)
        TreeSupport.assertClose(try totals(b, with("top_level")), [1.3, 2.3, 0], tol: 1e-12)
    }

    func testBadInput() throws {
        var b = stepBatch(outcome: [0, 1], groups: [0, 0])
        TreeSupport.assertThrows(["thresholds", "'x' is not a finite number"]) { _ = try Registry.advantages("g_ra", batch: b, params: ["thresholds": .string("x")]) }
        TreeSupport.assertThrows(["thresholds", "has 1 thresholds for 2 levels"]) {
            _ = try Registry.advantages("g_ra", batch: b, params: ["higher_levels": .string("tests")])
        }
        TreeSupport.assertThrows(["missing field 'rewards.tests'"]) {
            _ = try Registry.advantages("g_ra", batch: b, params: ["higher_levels": .string("tests"), "thresholds": .string("1,1")])
        }
        b.stepReward = nil
        TreeSupport.assertThrows(["missing field 'step_rewards'", "g_ra"]) { _ = try Registry.advantages("g_ra", batch: b) }
        b.stepOffsets = nil; b.stepEnds = nil
        TreeSupport.assertThrows(["missing field 'step_ends'"]) { _ = try Registry.advantages("g_ra", batch: b) }
    }
}

final class TreeTPGRPOTests: XCTestCase {
    /// Response 0 has 5 steps of 2 tokens with the given labels; the others have no steps.
    func labelled(_ labels: [Double], outcome: [Double]) -> RolloutBatch {
        var b = TreeSupport.batch(outcome.map { _ in [Int32](repeating: 7, count: 10) }, groups: outcome.map { _ in 0 }, outcome: outcome)
        b.stepOffsets = [0] + outcome.indices.map { _ in labels.count }
        b.stepEnds = labels.indices.map { 2 * $0 + 2 }
        b.extraStepColumns["step_labels"] = labels
        return b
    }

    func testSpecExample() throws {
        XCTAssertEqual(TPGRPO.thoughts(labels: [1, 1, 0, 1, 1][...]).map { [$0.start, $0.end] }, [[0, 2], [2, 3], [3, 5]])
        let b = labelled([1, 1, 0, 1, 1], outcome: [1, 0, 1, 0])
        let out = try Registry.advantages("tp_grpo", batch: b)
        let r = TreeSupport.rows(out.advantages, b)
        TreeSupport.assertClose(r[0], [1.116024, 1.116024, 1.116024, 1.116024, 0.616024, 0.616024,
                                       1.116024, 1.116024, 1.116024, 1.116024])
        TreeSupport.assertClose(r[1], [Double](repeating: -0.866024, count: 10), "no steps: plain GRPO")
        XCTAssertEqual(out.diagnostics["thoughts"], 3)
    }

    func testSignPreservationConstantKappaAndZeroOutcome() throws {
        // Wrong response (a = -0.5) whose only step is judged correct; eta 2, p = 0.25 -> rho = +1.5 reverses it.
        var b = labelled([1], outcome: [0, 1, 0, 0])
        b.mask[0] = 0
        let kept = try Registry.advantages("tp_grpo", batch: b, params: ["eta": .number(2)]).advantages
        XCTAssertEqual(Array(kept[0 ..< 2]), [0, 0], "reversed sign -> 0")
        XCTAssertEqual(kept[2], -0.25 / (0.5 + 1e-6), accuracy: 1e-12)
        let free = try Registry.advantages("tp_grpo", batch: b, params: ["eta": .number(2), "preserve_outcome_sign": .bool(false)]).advantages
        XCTAssertEqual(free[0], 0, "mask-0 token"); XCTAssertEqual(free[1], -0.25 / (0.5 + 1e-6) + 1.5, accuracy: 1e-12)
        XCTAssertEqual(free[2], -0.25 / (0.5 + 1e-6), accuracy: 1e-12, "after the last step: outcome only")
        let const = try Registry.advantages("tp_grpo", batch: b, params: ["kappa": .string("constant"), "preserve_outcome_sign": .bool(false)]).advantages
        XCTAssertEqual(const[1], -0.25 / (0.5 + 1e-6) + 0.5, accuracy: 1e-12)
        // All-equal group: a = 0; the process signal alone, or 0.
        let eq = labelled([0], outcome: [1, 1])
        XCTAssertEqual(try Registry.advantages("tp_grpo", batch: eq).advantages[0], -0.5, accuracy: 1e-12)
        XCTAssertEqual(try Registry.advantages("tp_grpo", batch: eq, params: ["zero_outcome": .string("zero")]).advantages[0], 0)
    }

    func testBadInput() throws {
        var b = labelled([1, 2], outcome: [1, 0])
        TreeSupport.assertThrows(["step_labels", "step 1 is 2.0", "1 (correct) or 0"]) { _ = try Registry.advantages("tp_grpo", batch: b) }
        b.extraStepColumns = [:]
        TreeSupport.assertThrows(["missing field 'step_labels'", "tp_grpo"]) { _ = try Registry.advantages("tp_grpo", batch: b) }
        TreeSupport.assertThrows(["eta", ">= 0"]) { _ = try Registry.advantages("tp_grpo", batch: b, params: ["eta": .number(-1)]) }
    }
}
