@testable import FineGrainServer
import Foundation
import XCTest

/// Per-item deadlines: a slow item times out on its own clock, the others still finish; the clock starts
/// when an item's work starts (a batch longer than one deadline is fine); abandoned workers are bounded.
final class ItemDeadlinesTests: XCTestCase {
    static func names(_ outcomes: [ItemDeadlines.Outcome<Int>]) -> [String] {
        outcomes.map { o in
            switch o {
            case let .done(v): return "done \(v)"
            case .timedOut: return "timeout"
            case .notRun: return "not run"
            }
        }
    }

    func testASlowItemTimesOutAndTheRestFinish() {
        let start = ContinuousClock.now
        let out = ItemDeadlines.run(count: 5, limit: .milliseconds(100)) { i -> Int in
            if i == 2 { Thread.sleep(forTimeInterval: 1.0) }
            return i * 10
        }
        let elapsed = ContinuousClock.now - start
        XCTAssertEqual(Self.names(out), ["done 0", "done 10", "timeout", "done 30", "done 40"])
        XCTAssertLessThan(elapsed, .milliseconds(900), "the batch did not wait for the abandoned item")
        XCTAssertGreaterThanOrEqual(elapsed, .milliseconds(100), "the slow item had its full deadline")
        print("ItemDeadlinesTests slow item: batch answered in \(elapsed) with a 100 ms deadline and a 1 s item")
    }

    func testTheClockStartsWhenTheItemStarts() {
        // 8 items of 80 ms = 640 ms in all, each within a 400 ms deadline: all done (timed from the
        // request's arrival, items 5... would have timed out).
        let out = ItemDeadlines.run(count: 8, limit: .milliseconds(400)) { i -> Int in
            Thread.sleep(forTimeInterval: 0.08)
            return i
        }
        XCTAssertEqual(Self.names(out), (0 ..< 8).map { "done \($0)" })
    }

    func testAbandonedWorkersAreBounded() {
        let out = ItemDeadlines.run(count: 6, limit: .milliseconds(30), maxAbandoned: 2) { i -> Int in
            Thread.sleep(forTimeInterval: 0.5)
            return i
        }
        XCTAssertEqual(Self.names(out), ["timeout", "timeout", "timeout", "not run", "not run", "not run"])
    }

    func testEmptyAndFastBatches() {
        XCTAssertTrue(ItemDeadlines.run(count: 0, limit: .seconds(1)) { $0 }.isEmpty)
        let out = ItemDeadlines.run(count: 1000, limit: .seconds(10)) { $0 &* 2 }
        XCTAssertEqual(Self.names(out), (0 ..< 1000).map { "done \($0 * 2)" })
    }
}
