import XCTest
@testable import FineGrain

final class SmokeTests: XCTestCase {
    func testEmptyBatchIsRejected() {
        let b = RolloutBatch(groups: [], lengths: [])
        XCTAssertThrowsError(try b.validate()) { XCTAssertTrue("\($0)".contains("empty")) }
    }
}
