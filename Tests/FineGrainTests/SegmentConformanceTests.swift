import Foundation
import XCTest
@testable import FineGrain
import FineGrainConformance

/// The segment-RM, Fine-Grained RLHF and RTO golden files (shared/golden/papers) through `Conformance.run`.
final class SegmentConformanceTests: XCTestCase {
    static var papersDir: URL {
        if let s = ProcessInfo.processInfo.environment["FINEGRAIN_SHARED"], !s.isEmpty {
            return URL(fileURLWithPath: s).appendingPathComponent("golden/papers")
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.deletingLastPathComponent().appendingPathComponent("shared/golden/papers")
    }

    func check(_ stem: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let path = Self.papersDir.appendingPathComponent("\(stem).json").path
        guard FileManager.default.fileExists(atPath: path) else {
            return XCTFail("golden file not found: \(path) (set FINEGRAIN_SHARED to the shared/ folder)", file: file, line: line)
        }
        let result = Conformance.run(file: try GoldenFile(path: path))
        print(result.line)
        XCTAssertTrue(result.ok, result.line, file: file, line: line)
        XCTAssertGreaterThan(result.total, 0, file: file, line: line)
    }

    func testSegmentPeak() throws { try check("segrm_segment_peak") }
    func testSegmentRewards() throws { try check("segrm_segment_rewards") }
    func testSegmentRewardGAE() throws { try check("segrm_reward_gae") }
    func testFineGrainedPipeline() throws { try check("fg_rlhf_pipeline") }
    func testFineGrainedSplit() throws { try check("fg_rlhf_split") }
    func testFineGrainedWhiten() throws { try check("fg_rlhf_whiten") }
    func testRTORewards() throws { try check("rto_rewards") }
}
