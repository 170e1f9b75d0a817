import XCTest
@testable import FineGrain
import FineGrainConformance

/// AdaptVision DTPO advantages: golden file, spec example (§12(e)), paper vs positional turn roles, masking, bad input.
final class TreeDTPOTests: XCTestCase {
    func testGoldenFilePasses() throws { try TreeSupport.checkGolden("dtpo_advantage") }

    func dtpoBatch(turns: [[Double]], out: [Double], tool: [Double], groups: [Int], masks: [[UInt8]]? = nil) -> RolloutBatch {
        var b = TreeSupport.batch(turns.map { $0.map { _ in Int32(5) } }, groups: groups, outcome: out, masks: masks)
        b.namedRewards["tool"] = tool
        b.extraTokenColumns["turn_ids"] = turns.flatMap { $0 }
        return b
    }

    func testSpecExample() throws {
        let b = dtpoBatch(turns: [[1, 1, 0, 2, 2], [1, 0, 2, 2]], out: [1, 0], tool: [0.5, -0.2], groups: [0, 0])
        let out = try Registry.advantages("dtpo", batch: b, params: ["lambda_coeff": .number(0.3)])
        let r = TreeSupport.rows(out.advantages, b)
        TreeSupport.assertClose(r[0], [0.919237, 0.919237, 0, 0.707106, 0.707106])
        TreeSupport.assertClose(r[1], [-0.919237, 0, -0.707106, -0.707106])
        let p = try Params.resolve([:], specs: DTPOAdvantage.info.params, method: "dtpo")
        let (tool, outcome) = try DTPOAdvantage.groupAdvantages(b, p)
        TreeSupport.assertClose(tool, [0.707105, -0.707105]); TreeSupport.assertClose(outcome, [0.707106, -0.707106])
    }

    func testDirectAnswerRoles() throws {
        // Response 0 answers directly (turn 1 only); response 1 calls a tool (turn 1) then answers (turn 2).
        let b = dtpoBatch(turns: [[1, 1], [1, 0, 2]], out: [1, 0], tool: [0, 1], groups: [0, 0], masks: [[1, 1], [1, 0, 1]])
        let paper = TreeSupport.rows(try Registry.advantages("dtpo", batch: b).advantages, b)
        let ref = TreeSupport.rows(try Registry.advantages("dtpo", batch: b, params: ["turn_roles": .string("positional")]).advantages, b)
        let a = 1 / (0.5.squareRoot() + 1e-6) * 0.5           // |a_out| = |a_tool| for a group of two
        TreeSupport.assertClose(paper[0], [a, a], "direct answer gets a_out only")
        TreeSupport.assertClose(ref[0], [a - 0.3 * a, a - 0.3 * a], "reference: turn 1 is the tool turn")
        TreeSupport.assertClose(paper[1], [-a + 0.3 * a, 0, -a]); TreeSupport.assertClose(ref[1], paper[1])
        // Three turns: the paper credits turns 1 and 2 as tool turns, the reference gives turn 3 nothing.
        let c = dtpoBatch(turns: [[1, 2, 3], [1, 2]], out: [1, 0], tool: [1, 0], groups: [0, 0])
        XCTAssertEqual(TreeSupport.rows(try Registry.advantages("dtpo", batch: c, params: ["turn_roles": .string("positional")]).advantages, c)[0][2], 0)
        TreeSupport.assertClose(TreeSupport.rows(try Registry.advantages("dtpo", batch: c).advantages, c)[0], [1.3 * a, 1.3 * a, a])
    }

    func testBadInput() throws {
        var b = dtpoBatch(turns: [[1, 2], [1]], out: [1, 0], tool: [0, 1], groups: [0, 0])
        b.extraTokenColumns["turn_ids"] = [1, 1.5, 1]
        TreeSupport.assertThrows(["turn_ids", "token 1 of response 0", "integer"]) { _ = try Registry.advantages("dtpo", batch: b) }
        b.extraTokenColumns["turn_ids"] = nil
        TreeSupport.assertThrows(["missing field 'turn_ids'", "dtpo"]) { _ = try Registry.advantages("dtpo", batch: b) }
        b.extraTokenColumns["turn_ids"] = [1, 2, 1]; b.namedRewards = [:]
        TreeSupport.assertThrows(["missing field 'rewards.tool'"]) { _ = try Registry.advantages("dtpo", batch: b) }
        b.namedRewards["bbox"] = [0, 1]
        XCTAssertNoThrow(try Registry.advantages("dtpo", batch: b, params: ["tool_reward": .string("bbox")]))
    }
}
