import Foundation
import XCTest
@testable import FineGrain
import FineGrainConformance

/// Runs every verl advantage-estimator golden file through `Conformance.run` and requires all cases to pass.
final class CreditConformanceTests: XCTestCase {
    func check(_ stem: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try assertGoldenPasses("verl", stem, file: file, line: line)
    }

    func testGAE() throws { try check("gae") }
    func testGRPO() throws { try check("grpo") }
    func testGRPOVectorized() throws { try check("grpo_vectorized") }
    func testRLOO() throws { try check("rloo") }
    func testRLOOVectorized() throws { try check("rloo_vectorized") }
    func testReinforcePlusPlus() throws { try check("reinforce_plus_plus") }
    func testReinforcePlusPlusBaseline() throws { try check("reinforce_plus_plus_baseline") }
    func testReMax() throws { try check("remax") }
    func testOPO() throws { try check("opo") }
    func testGPG() throws { try check("gpg_advantage") }
    func testGRPOPassK() throws { try check("grpo_passk") }
    func testGDPO() throws { try check("gdpo") }
    func testOptimalTokenBaseline() throws { try check("optimal_token_baseline") }
    func testTIROptimalTokenBaseline() throws { try check("tir_optimal_token_baseline") }
}
