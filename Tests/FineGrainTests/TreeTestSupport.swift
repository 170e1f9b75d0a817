import Foundation
import XCTest
@testable import FineGrain
import FineGrainConformance

/// Shared helpers of the `Tree*` tests (TEMPO, HAPO token-level group average, DTPO, G-RA, TP-GRPO).
enum TreeSupport {
    /// Runs one paper golden file and requires PASS (prints the PASS/FAIL line).
    static func checkGolden(_ stem: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try assertGoldenPasses("papers", stem, file: file, line: line)
    }

    /// A batch from token rows (ids), one group id per row, an outcome per row; mask all 1 unless given.
    static func batch(_ rows: [[Int32]], groups: [Int], outcome: [Double], masks: [[UInt8]]? = nil) -> RolloutBatch {
        var b = RolloutBatch(groups: groups.map { .int($0) }, lengths: rows.map(\.count),
                             tokens: rows.flatMap { $0 }, mask: masks.map { $0.flatMap { $0 } })
        b.outcome = outcome
        return b
    }

    /// Per-response slices of a ragged column.
    static func rows(_ x: [Double], _ b: RolloutBatch) -> [[Double]] { (0 ..< b.count).map { Array(x[b.range($0)]) } }

    static func assertClose(_ got: [Double], _ want: [Double], tol: Double = 1e-6, _ msg: String = "",
                            file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, "length \(msg)", file: file, line: line)
        for (i, (g, w)) in zip(got, want).enumerated() {
            XCTAssertEqual(g, w, accuracy: tol, "\(msg) [\(i)]", file: file, line: line)
        }
    }

    /// Asserts that `body` throws a `FineGrainError` whose description contains every fragment.
    static func assertThrows(_ fragments: [String], file: StaticString = #filePath, line: UInt = #line,
                             _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("expected an error containing \(fragments)", file: file, line: line)
        } catch let e as FineGrainError {
            for f in fragments { XCTAssertTrue(e.description.contains(f), "'\(e.description)' lacks '\(f)'", file: file, line: line) }
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }
}
