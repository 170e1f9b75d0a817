import Foundation
import XCTest
@testable import FineGrain
import FineGrainConformance

/// Runs every verl advantage-estimator golden file through `Conformance.run` and requires all cases to pass.
final class CreditConformanceTests: XCTestCase {
    /// `shared/golden/verl`: `$FINEGRAIN_SHARED/golden/verl` if set, else `../shared` beside the repository root
    /// (the repository root is three levels above this file).
    static var goldenDir: URL {
        if let s = ProcessInfo.processInfo.environment["FINEGRAIN_SHARED"], !s.isEmpty {
            return URL(fileURLWithPath: s).appendingPathComponent("golden/verl")
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.deletingLastPathComponent().appendingPathComponent("shared/golden/verl")
    }

    func check(_ stem: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let path = Self.goldenDir.appendingPathComponent("\(stem).json").path
        guard FileManager.default.fileExists(atPath: path) else {
            return XCTFail("golden file not found: \(path) (set FINEGRAIN_SHARED to the shared/ folder)", file: file, line: line)
        }
        let result = Conformance.run(file: try GoldenFile(path: path))
        print(result.line)
        XCTAssertTrue(result.ok, result.line, file: file, line: line)
        XCTAssertGreaterThan(result.total, 0, file: file, line: line)
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
