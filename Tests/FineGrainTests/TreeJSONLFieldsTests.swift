import Foundation
import XCTest
@testable import FineGrain

/// The JSONL fields documented in `MethodInfo.requires` reach the estimators through the generic reader.
final class TreeJSONLFieldsTests: XCTestCase {
    func testDTPOAndTPGRPOFieldsFromJSONL() throws {
        let text = """
        {"group": "q", "tokens": [5, 6, 7, 8], "mask": [1, 1, 0, 1], "reward": 1, "rewards": {"tool": 0.5}, "turn_ids": [1, 1, 0, 2], "step_ends": [2, 4], "step_labels": [1, 0]}
        {"group": "q", "tokens": [5, 9, 9], "reward": 0, "rewards": {"tool": -0.2}, "turn_ids": [1, 0, 2], "step_ends": [3], "step_labels": [0]}
        """
        let doc = try RolloutJSONL.read(Data(text.utf8))
        XCTAssertEqual(doc.batch.extraTokenColumns["turn_ids"], [1, 1, 0, 2, 1, 0, 2])
        XCTAssertEqual(doc.batch.extraStepColumns["step_labels"], [1, 0, 0])
        let dtpo = try Registry.advantages("dtpo", batch: doc.batch, params: ["lambda_coeff": .number(0.3)])
        TreeSupport.assertClose(Array(dtpo.advantages[0 ..< 4]), [0.919237, 0.919237, 0, 0.707106])
        let tp = try Registry.advantages("tp_grpo", batch: doc.batch)
        XCTAssertEqual(tp.advantages[2], 0, "mask-0 token")
        XCTAssertEqual(try Registry.advantages("tempo", batch: doc.batch).advantages.count, 7)
    }
}
