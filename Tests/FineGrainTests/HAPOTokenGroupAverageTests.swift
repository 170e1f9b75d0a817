import XCTest
@testable import FineGrain
import FineGrainConformance

/// HAPO token-level group average: golden file, spec example (§11(e) / token_losses B.2), token-weighted zero
/// sum, fallback, singleton, masking, reference-compatible padding, bad input.
final class TreeHAPOTests: XCTestCase {
    func testGoldenFilePasses() throws { try TreeSupport.checkGolden("hapo_token_group_average") }

    func testSpecExample() throws {
        let b = TreeSupport.batch([[1, 2, 3], [4]], groups: [0, 0], outcome: [1, 0])
        let out = try Registry.advantages("hapo_token_group_average", batch: b)
        TreeSupport.assertClose(out.advantages, [0.577349, 0.577349, 0.577349, -1.732047])
        XCTAssertEqual(out.returns!, out.advantages)
        XCTAssertEqual(out.advantages.reduce(0, +), 0, accuracy: 1e-5, "token-weighted zero sum (up to epsilon)")
    }

    func testTokenWeightedZeroSumMaskingAndPermutation() throws {
        var rng = SplitMix64(seed: 5)
        let lengths = (0 ..< 12).map { _ in 1 + Int(rng.next() % 9) }
        let rows = lengths.map { [Int32](repeating: 3, count: $0) }
        let masks = lengths.map { l in (0 ..< l).map { $0 == 0 ? UInt8(1) : UInt8(rng.next() % 4 == 0 ? 0 : 1) } }
        let b = TreeSupport.batch(rows, groups: (0 ..< 12).map { $0 / 4 }, outcome: (0 ..< 12).map { _ in rng.uniform() },
                                  masks: masks)
        let out = try Registry.advantages("hapo_token_group_average", batch: b, params: ["norm_adv_by_std_in_grpo": .bool(false)])
        for g in 0 ..< 3 {
            var sum = 0.0
            for r in (4 * g) ..< (4 * g + 4) { for i in b.range(r) { sum += out.advantages[i] } }
            XCTAssertEqual(sum, 0, accuracy: 1e-12, "group \(g)")
        }
        for (i, m) in b.mask.enumerated() where m == 0 { XCTAssertEqual(out.advantages[i], 0) }
        let perm = [3, 2, 1, 0] + Array(4 ..< 12)
        let pb = TreeSupport.batch(perm.map { rows[$0] }, groups: perm.map { $0 / 4 }, outcome: perm.map { b.outcome![$0] },
                                   masks: perm.map { masks[$0] })
        let pout = try Registry.advantages("hapo_token_group_average", batch: pb, params: ["norm_adv_by_std_in_grpo": .bool(false)])
        for (k, r) in perm.enumerated() { XCTAssertEqual(Array(pout.advantages[pb.range(k)]), Array(out.advantages[b.range(r)])) }
    }

    func testFallbackToGRPOAndSingleton() throws {
        // One long correct response among short wrong ones: pooled std is small for the short rows -> |a| >= 5.
        let rows: [[Int32]] = [[Int32](repeating: 1, count: 200), [2], [3], [4]]
        let b = TreeSupport.batch(rows, groups: [0, 0, 0, 0], outcome: [0, 1, 1, 1])
        let out = try Registry.advantages("hapo_token_group_average", batch: b)
        let grpo = try Registry.advantages("grpo", batch: b)
        XCTAssertEqual(out.advantages, grpo.advantages)
        XCTAssertEqual(out.diagnostics["fallback_groups"], 1)
        let one = TreeSupport.batch([[1, 2]], groups: [0], outcome: [3], masks: [[1, 0]])
        XCTAssertEqual(try Registry.advantages("hapo_token_group_average", batch: one).advantages, [0, 0], "singleton: pooled std 0 -> 0")
        // Reference: the hole holds -R/eps, which trips the fallback -> GRPO's R/(1+eps).
        let ref = try Registry.advantages("hapo_token_group_average", batch: one, params: ["reference_compatible": .bool(true)])
        TreeSupport.assertClose(ref.advantages, [3 / (1 + 1e-6), 0], tol: 1e-12)
    }

    func testBadInput() throws {
        var b = TreeSupport.batch([[1], [2]], groups: [0, 0], outcome: [1, 0])
        TreeSupport.assertThrows(["fallback_threshold", "> 0"]) {
            _ = try Registry.advantages("hapo_token_group_average", batch: b, params: ["fallback_threshold": .number(0)])
        }
        TreeSupport.assertThrows(["unknown parameter"]) { _ = try Registry.advantages("hapo_token_group_average", batch: b, params: ["lam": .number(1)]) }
        b.outcome = nil
        TreeSupport.assertThrows(["missing field 'reward'"]) { _ = try Registry.advantages("hapo_token_group_average", batch: b) }
    }
}
