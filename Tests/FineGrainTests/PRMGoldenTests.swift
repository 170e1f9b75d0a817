import Foundation
import XCTest
@testable import FineGrain
import FineGrainConformance

/// Every PURE and PRIME golden file (shared/golden/papers) through `Conformance.run`; all cases must pass.
final class PRMGoldenTests: XCTestCase {
    func check(_ stem: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try assertGoldenPasses("papers", stem, file: file, line: line)
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
