import Foundation
import XCTest
@testable import FineGrain
import FineGrainConformance

/// Every PURE and PRIME golden file (shared/golden/papers) through `Conformance.run`; all cases must pass.
final class PRMGoldenTests: XCTestCase {
    /// `$FINEGRAIN_SHARED/golden/papers`, else `../shared/golden/papers` beside the repository root.
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

    func testPureMinFormReward() throws { try check("pure_min_form_reward") }
    func testPureOpenRLHFPipeline() throws { try check("pure_openrlhf_pipeline") }
    func testPureVerlRMScore() throws { try check("pure_verl_rm_score") }
    func testPureVerlRLOO() throws { try check("pure_verl_rloo") }
    func testPrimeImplicitReward() throws { try check("prime_implicit_reward") }
    func testPrimeRecipeImplicitReward() throws { try check("prime_recipe_implicit_reward") }
    func testPrimeRLOOReturns() throws { try check("prime_rloo_returns") }
    func testPrimeRecipeRLOO() throws { try check("prime_recipe_rloo") }
    func testPrimeCEDPOLoss() throws { try check("prime_ce_dpo_loss") }
}
