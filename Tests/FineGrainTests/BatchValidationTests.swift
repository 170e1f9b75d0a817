import XCTest
@testable import FineGrain

/// Every bad-input class of the batch gets an error that names the field and the reason.
final class BatchValidationTests: XCTestCase {
    func base() -> RolloutBatch {
        var b = RolloutBatch(groups: [.string("a"), .string("a"), .int(3)], lengths: [2, 3, 1])
        b.outcome = [1, 0, 1]
        return b
    }

    func assertInvalid(_ b: RolloutBatch, field: String, reasonContains: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try b.validate(), file: file, line: line) { e in
            guard case let FineGrainError.invalidField(f, reason) = e else { return XCTFail("wrong error \(e)", file: file, line: line) }
            XCTAssertEqual(f, field, file: file, line: line)
            XCTAssertTrue(reason.contains(reasonContains), "reason '\(reason)' lacks '\(reasonContains)'", file: file, line: line)
            print("rejected as expected: \(e)")
        }
    }

    func testValidBatchPasses() throws {
        let b = base()
        XCTAssertNoThrow(try b.validate())
        XCTAssertEqual(b.count, 3); XCTAssertEqual(b.tokenCount, 6); XCTAssertEqual(b.groupCount, 2)
        XCTAssertEqual(b.group, [0, 0, 1])
    }

    func testEmptyBatch() {
        assertInvalid(RolloutBatch(groups: [], lengths: []), field: "rollouts", reasonContains: "empty")
    }

    func testMismatchedTokenColumn() {
        var b = base(); b.logprob = [0, 0, 0]
        assertInvalid(b, field: "logprobs", reasonContains: "has 3 entries but tokens has 6")
    }

    func testMismatchedResponseColumn() {
        var b = base(); b.outcome = [1, 0]
        assertInvalid(b, field: "reward", reasonContains: "2 entries for 3 responses")
    }

    func testNaNReward() {
        var b = base(); b.outcome = [1, .nan, 0]
        assertInvalid(b, field: "reward", reasonContains: "response 1 is nan")
    }

    func testInfiniteTokenColumnNamesResponseAndToken() {
        var b = base(); b.value = [0, 0, 0, .infinity, 0, 0]
        assertInvalid(b, field: "values", reasonContains: "token 1 of response 1")
    }

    func testMaskMustBeBinary() {
        var b = base(); b.mask[4] = 2
        assertInvalid(b, field: "mask", reasonContains: "must be 0 or 1")
    }

    func testUnknownGroup() {
        var b = base(); b.group[2] = 7
        assertInvalid(b, field: "group", reasonContains: "unknown group index 7")
    }

    func testOffsetsMustCoverTokens() {
        var b = base(); b.tokens.append(5)
        assertInvalid(b, field: "tokens", reasonContains: "offsets say 6")
    }

    func testStepEndsOutOfRange() {
        var b = base()
        b.stepOffsets = [0, 1, 3, 3]; b.stepEnds = [2, 1, 4]; b.stepReward = [0.5, 0.1, 0.2]
        assertInvalid(b, field: "step_ends", reasonContains: "step end 4 out of range")
    }

    func testStepEndsMustIncrease() {
        var b = base()
        b.stepOffsets = [0, 1, 3, 3]; b.stepEnds = [2, 2, 2]
        assertInvalid(b, field: "step_ends", reasonContains: "step end 2 out of range")
    }

    func testStepRewardCount() {
        var b = base()
        b.stepOffsets = [0, 1, 2, 2]; b.stepEnds = [2, 3]; b.stepReward = [1]
        assertInvalid(b, field: "step_rewards", reasonContains: "1 entries for 2 step ends")
    }

    func testMissingRewardNamesField() {
        var b = base(); b.outcome = nil
        XCTAssertThrowsError(try b.scores(method: "grpo")) { e in
            XCTAssertEqual(e as? FineGrainError, .missingField(field: "reward", method: "grpo"))
        }
    }

    func testScoresAndOutcomePlacement() throws {
        var b = base()
        b.mask = [1, 1, 1, 1, 0, 1]  // response 1 ends with a tool token
        b.tokenReward = [0.5, 0, 0, 0.25, 0, 0]
        XCTAssertEqual(try b.scores(method: "t"), [1.5, 0.25, 1])
        // The outcome lands on the last mask-1 token (index 3 for response 1, not the masked index 4).
        XCTAssertEqual(try b.tokenLevelRewards(method: "t"), [0.5, 1, 0, 0.25, 0, 1])
    }

    func testGroupIndexIsCSR() {
        let b = RolloutBatch(groups: [.int(5), .int(2), .int(5), .int(9), .int(2)], lengths: [1, 1, 1, 1, 1])
        let gi = b.groupIndex()
        XCTAssertEqual(gi.start, [0, 2, 4, 5])
        XCTAssertEqual(gi.members, [0, 2, 1, 4, 3])
    }
}
