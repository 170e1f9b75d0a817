import Foundation
import XCTest
@testable import FineGrain

final class JSONLTests: XCTestCase {
    func read(_ text: String) throws -> RolloutJSONL.Document { try RolloutJSONL.read(Data(text.utf8)) }

    func assertRejects(_ text: String, field: String, reasonContains: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try read(text), file: file, line: line) { e in
            guard case let FineGrainError.invalidField(f, reason) = e else { return XCTFail("wrong error \(e)", file: file, line: line) }
            XCTAssertEqual(f, field, file: file, line: line)
            XCTAssertTrue(reason.contains(reasonContains), "reason '\(reason)' lacks '\(reasonContains)'", file: file, line: line)
        }
    }

    func testRoundTripKeepsFieldsAndAddsAdvantages() throws {
        let text = """
        {"group": "q1", "tokens": [5, 9, 2], "reward": 1.0, "mask": [1, 0, 1], "values": [0.1, 0.2, 0.3], "meta": "kept"}
        {"group": 7, "tokens": [4], "reward": 0, "values": [0.5]}

        """
        let doc = try read(text)
        XCTAssertEqual(doc.batch.count, 2)
        XCTAssertEqual(doc.batch.groupIDs, [.string("q1"), .int(7)])
        XCTAssertEqual(doc.batch.mask, [1, 0, 1, 1])
        XCTAssertEqual(doc.batch.value!, [0.1, 0.2, 0.3, 0.5])
        XCTAssertEqual(doc.batch.outcome!, [1, 0])
        let out = AdvantageOutput(advantages: [1, 2, 3, 4], returns: nil)
        let lines = RolloutJSONL.annotate(doc, with: out)
        XCTAssertEqual(lines[0]["meta"], .string("kept"))
        XCTAssertEqual(lines[0]["advantages"], .numbers([1, 2, 3]))
        XCTAssertEqual(lines[1]["advantages"], .numbers([4]))
        XCTAssertNil(lines[0]["returns"])
        let written = String(decoding: try RolloutJSONL.write(lines), as: UTF8.self)
        XCTAssertEqual(written.split(separator: "\n").count, 2)
        let again = try read(written)
        XCTAssertEqual(again.batch.tokens, doc.batch.tokens)
    }

    func testStepsAndNamedRewards() throws {
        let doc = try read("""
        {"group": "a", "tokens": [1, 2, 3], "step_ends": [2, 3], "step_rewards": [0.9, 0.1], "rewards": {"helpful": 0.3, "safe": 1}}
        {"group": "a", "tokens": [1, 2], "step_ends": [2], "step_rewards": [0.5], "rewards": {"helpful": 0.1, "safe": 0}}
        """)
        XCTAssertEqual(doc.batch.stepOffsets!, [0, 2, 3])
        XCTAssertEqual(doc.batch.stepEnds!, [2, 3, 2])
        XCTAssertEqual(doc.batch.stepReward!, [0.9, 0.1, 0.5])
        XCTAssertEqual(doc.batch.namedRewards["helpful"]!, [0.3, 0.1])
    }

    func testExtraColumnsAreReadGenerically() throws {
        let doc = try read("""
        {"group": "a", "tokens": [1, 2, 3], "sum_pi_squared": [0.1, 0.2, 0.3], "step_ends": [1, 3], "step_labels": [1, 0], "ids": [7]}
        {"group": "a", "tokens": [4], "sum_pi_squared": [0.4], "step_ends": [1], "step_labels": [1], "ids": [8, 9]}
        """)
        XCTAssertEqual(doc.batch.extraTokenColumns["sum_pi_squared"]!, [0.1, 0.2, 0.3, 0.4])
        XCTAssertEqual(doc.batch.extraStepColumns["step_labels"]!, [1, 0, 1])
        XCTAssertNil(doc.batch.extraTokenColumns["ids"])  // token-length on no line: echoed only
        assertRejects("{\"group\": 1, \"tokens\": [1, 2], \"prm_logprobs\": [0.1, 0.2]}\n{\"group\": 1, \"tokens\": [1, 2], \"prm_logprobs\": [0.1]}",
                      field: "prm_logprobs", reasonContains: "has 1 entries but tokens has 2")
    }

    func testBadInputs() {
        assertRejects("", field: "rollouts", reasonContains: "empty")
        assertRejects("{\"group\": 1, \"tokens\": [1]}\nnot json\n", field: "line 2", reasonContains: "not valid JSON")
        assertRejects("[1, 2]\n", field: "line 1", reasonContains: "JSON object")
        assertRejects("{\"tokens\": [1], \"reward\": 1}", field: "group", reasonContains: "missing")
        assertRejects("{\"group\": [1], \"tokens\": [1]}", field: "group", reasonContains: "string or an integer")
        assertRejects("{\"group\": 1, \"tokens\": [1.5]}", field: "tokens", reasonContains: "not a 32-bit integer")
        assertRejects("{\"group\": 1, \"tokens\": [1, 2], \"logprobs\": [0.1]}", field: "logprobs", reasonContains: "has 1 entries but tokens has 2")
        assertRejects("{\"group\": 1, \"tokens\": [1, 2], \"mask\": [1]}", field: "mask", reasonContains: "one 0/1 entry per token")
        assertRejects("{\"group\": 1, \"tokens\": [1], \"mask\": [3]}", field: "mask", reasonContains: "0 or 1")
        assertRejects("{\"group\": 1, \"tokens\": [1], \"reward\": \"NaN\"}", field: "reward", reasonContains: "must be finite")
        assertRejects("{\"group\": 1, \"tokens\": [1], \"reward\": 1}\n{\"group\": 1, \"tokens\": [1]}", field: "reward", reasonContains: "missing while other responses have it")
        assertRejects("{\"group\": 1, \"tokens\": [1, 2], \"step_ends\": [3]}", field: "step_ends", reasonContains: "out of range")
        assertRejects("{\"group\": 1, \"tokens\": [1, 2], \"step_rewards\": [3]}", field: "step_ends", reasonContains: "without step_ends")
        assertRejects("{\"group\": 1, \"tokens\": [1], \"rewards\": {\"a\": 1}}\n{\"group\": 1, \"tokens\": [1]}", field: "rewards.a", reasonContains: "missing")
    }
}
