import Foundation
import XCTest
@testable import FineGrain
import FineGrainConformance

/// The segment-RM, Fine-Grained RLHF and RTO golden files (shared/golden/papers) through `Conformance.run`.
final class SegmentConformanceTests: XCTestCase {
    func check(_ stem: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try assertGoldenPasses("papers", stem, file: file, line: line)
    }

    func testSegmentPeak() throws { try check("segrm_segment_peak") }
    func testSegmentRewards() throws { try check("segrm_segment_rewards") }
    func testSegmentRewardGAE() throws { try check("segrm_reward_gae") }
    func testFineGrainedPipeline() throws { try check("fg_rlhf_pipeline") }
    func testFineGrainedSplit() throws { try check("fg_rlhf_split") }
    func testFineGrainedWhiten() throws { try check("fg_rlhf_whiten") }
    func testRTORewards() throws { try check("rto_rewards") }
}
