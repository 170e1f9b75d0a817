import XCTest
@testable import FineGrain
import FineGrainConformance

/// TEMPO: golden file, the spec's worked examples (§2(e)), a brute-force prefix-tree oracle, telescoping,
/// node balance, permutation invariance, masking, singleton policies and bad input.
final class TreeTEMPOTests: XCTestCase {
    // Letters as token ids.
    let A: Int32 = 10, B: Int32 = 11, C: Int32 = 12, D: Int32 = 13, E: Int32 = 14, F: Int32 = 15, G: Int32 = 16, H: Int32 = 17

    func testGoldenFilePasses() throws { try TreeSupport.checkGolden("tempo") }

    func testSpecExampleSharedPrefixes() throws {
        let b = TreeSupport.batch([[A, B, C], [A, B, D], [A, E, F], [G, H]], groups: [0, 0, 0, 0], outcome: [1, 0, 1, 0])
        let out = try Registry.advantages("tempo", batch: b)
        let r = TreeSupport.rows(out.advantages, b)
        TreeSupport.assertClose(r[0], [1.154699, 0.577349, 1.732048], "r1")
        TreeSupport.assertClose(r[1], [-0.577349, -1.154699, -1.732048], "r2")
        TreeSupport.assertClose(r[2], [1.154699, 1.443373, 0.866024], "r3")
        TreeSupport.assertClose(r[3], [-1.732048, -0.866024], "r4")
        XCTAssertEqual(out.returns!, out.advantages)
        // Telescoping for r1: sum of (TEMPO - GRPO) = (R - mu)/(sigma + eps).
        XCTAssertEqual(r[0].reduce(0, +) - 3 * 0.866024, 0.866024, accuracy: 1e-5)
    }

    func testSpecExampleNoSharedFirstToken() throws {
        let b = TreeSupport.batch([[A, B], [C, D], [E, F]], groups: [0, 0, 0], outcome: [1, 0, 0])
        let out = try Registry.advantages("tempo", batch: b)
        let grpo = try Registry.advantages("grpo", batch: b)
        let r = TreeSupport.rows(out.advantages, b), g = TreeSupport.rows(grpo.advantages, b)
        TreeSupport.assertClose(r[0], [2.309397, 1.154699])
        TreeSupport.assertClose(r[1], [-1.154699, -0.577349])
        TreeSupport.assertClose(r[2], [-1.154699, -0.577349])
        for i in 0 ..< 3 {
            XCTAssertEqual(r[i][0], 2 * g[i][0], accuracy: 1e-12, "first token is 2x GRPO")
            XCTAssertEqual(r[i][1], g[i][1], accuracy: 1e-12, "later tokens equal GRPO")
        }
    }

    /// The definition evaluated literally: for every token, the sets of group members sharing y_<t and y_<=t.
    func bruteForce(_ b: RolloutBatch, tdWeight: Double = 1, stopAtHole: Bool = false) throws -> [Double] {
        let s = try b.scores(method: "test"), gi = b.groupIndex()
        var out = [Double](repeating: 0, count: b.tokenCount)
        for g in 0 ..< b.groupCount {
            let ms = Array(gi.members[gi.start[g] ..< gi.start[g + 1]])
            let n = Double(ms.count), mu = ms.map { s[$0] }.reduce(0, +) / (ms.count > 1 ? n : .infinity)
            let sd = ms.count > 1 ? (ms.map { (s[$0] - mu) * (s[$0] - mu) }.reduce(0, +) / (n - 1)).squareRoot() : 1
            func seq(_ r: Int) -> [Int32] { Array(b.tokens[b.range(r)]) }
            func value(_ prefix: ArraySlice<Int32>) -> Double {
                let through = ms.filter { seq($0).starts(with: prefix) }
                return through.map { s[$0] }.reduce(0, +) / Double(through.count)
            }
            for r in ms {
                let y = seq(r), base = b.offsets[r]
                var hole = false
                for t in 0 ..< y.count {
                    if b.mask[base + t] == 0 { hole = true; continue }
                    let td = (stopAtHole && hole) || ms.count == 1 ? 0 : value(y[0 ... t]) - value(y[0 ..< t])
                    out[base + t] = (s[r] - mu + tdWeight * td) / (sd + 1e-6)
                }
            }
        }
        return out
    }

    /// Small random trees with holes and repeated tokens (so sorting and LCP meet ties and prefixes).
    func randomTreeBatch(seed: UInt64, groups: Int = 5, group: Int = 6) -> RolloutBatch {
        var rng = SplitMix64(seed: seed)
        var rows = [[Int32]](), gids = [Int](), masks = [[UInt8]](), outcome = [Double]()
        for g in 0 ..< groups {
            var members = [[Int32]]()
            for j in 0 ..< group {
                var y: [Int32] = []
                if j > 0, rng.next() % 4 != 0 {
                    let p = members[Int(rng.next() % UInt64(j))]
                    y = Array(p.prefix(Int(rng.next() % UInt64(p.count + 1))))
                }
                let extra = Int(rng.next() % 6)
                for _ in 0 ..< extra { y.append(Int32(rng.next() % 3)) }
                members.append(y)
                rows.append(y); gids.append(g); outcome.append(Double(rng.next() % 3))
                masks.append(y.map { _ in rng.next() % 5 == 0 ? 0 : 1 })
            }
        }
        return TreeSupport.batch(rows, groups: gids, outcome: outcome, masks: masks)
    }

    func testMatchesBruteForceOnRandomTrees() throws {
        for seed in 0 ..< 20 as Range<UInt64> {
            let b = randomTreeBatch(seed: seed)
            for (w, stop) in [(1.0, false), (0.5, false), (1.0, true)] {
                let got = try Registry.advantages("tempo", batch: b, params: ["td_weight": .number(w), "stop_at_first_hole": .bool(stop)])
                TreeSupport.assertClose(got.advantages, try bruteForce(b, tdWeight: w, stopAtHole: stop), tol: 1e-9, "seed \(seed) w \(w) stop \(stop)")
            }
        }
    }

    func testTelescopingAndNodeBalance() throws {
        // EOS-terminated responses (EOS id 1 never appears elsewhere): no response is a strict prefix of another.
        let raw = SyntheticBatch.tempoBenchmark(responses: 48, maxLength: 40, group: 8, seed: 7)
        let rows = (0 ..< raw.count).map { Array(raw.tokens[raw.range($0)]) + [1] }
        let b = TreeSupport.batch(rows, groups: raw.group, outcome: try raw.scores(method: "test"))
        let out = try Registry.advantages("tempo", batch: b), grpo = try Registry.advantages("grpo", batch: b)
        let gi = b.groupIndex(), s = try b.scores(method: "test"), (mean, std) = CreditKernels.groupMeanStd(s, gi)
        var balance = [[Int32]: Double]()
        for r in 0 ..< b.count {
            let g = b.group[r], denom = std[g] + 1e-6
            let dup = (0 ..< b.count).contains { $0 != r && b.group[$0] == g && rows[$0] == rows[r] }
            var sum = 0.0
            for (t, i) in b.range(r).enumerated() {
                let td = (out.advantages[i] - grpo.advantages[i]) * denom
                sum += td
                balance[Array(rows[r][0 ..< t]) + [Int32(-1 - g)], default: 0] += td
            }
            if !dup { XCTAssertEqual(sum, s[r] - mean[g], accuracy: 1e-9, "telescoping, response \(r)") }
        }
        for (node, v) in balance { XCTAssertEqual(v, 0, accuracy: 1e-9, "node balance at depth \(node.count - 1)") }
    }

    func testPermutationInvarianceAndMasking() throws {
        let b = randomTreeBatch(seed: 99, groups: 3, group: 7)
        let out = try Registry.advantages("tempo", batch: b)
        for (i, m) in b.mask.enumerated() where m == 0 { XCTAssertEqual(out.advantages[i], 0) }
        var rng = SplitMix64(seed: 3)
        let perm = (0 ..< b.count).shuffled(using: &rng)
        let rows = perm.map { Array(b.tokens[b.range($0)]) }, masks = perm.map { Array(b.mask[b.range($0)]) }
        let pb = TreeSupport.batch(rows, groups: perm.map { b.group[$0] }, outcome: perm.map { b.outcome![$0] }, masks: masks)
        let pout = try Registry.advantages("tempo", batch: pb)
        for (k, r) in perm.enumerated() {
            TreeSupport.assertClose(Array(pout.advantages[pb.range(k)]), Array(out.advantages[b.range(r)]), tol: 1e-12)
        }
    }

    func testNoSharedFirstTokenEqualsGRPOAfterFirstToken() throws {
        let rows: [[Int32]] = [[1, 5, 6, 7], [2, 5, 6], [3, 9], [4, 4, 4, 4, 4]]
        let b = TreeSupport.batch(rows, groups: [0, 0, 0, 0], outcome: [0.3, 1, 0, 2])
        let t = try Registry.advantages("tempo", batch: b), g = try Registry.advantages("grpo", batch: b)
        for r in 0 ..< b.count {
            let lo = b.offsets[r]
            XCTAssertEqual(t.advantages[lo], 2 * g.advantages[lo], accuracy: 1e-12)
            for i in (lo + 1) ..< b.offsets[r + 1] { XCTAssertEqual(t.advantages[i], g.advantages[i], accuracy: 1e-12) }
        }
    }

    func testEqualRewardsGiveZeroAndSingletonPolicies() throws {
        let eq = TreeSupport.batch([[A, B], [A, C], [D]], groups: [0, 0, 0], outcome: [0.5, 0.5, 0.5])
        XCTAssertTrue(try Registry.advantages("tempo", batch: eq).advantages.allSatisfy { $0 == 0 })

        let one = TreeSupport.batch([[A, B, C]], groups: [0], outcome: [2], masks: [[1, 0, 1]])
        TreeSupport.assertClose(try Registry.advantages("tempo", batch: one).advantages, [2 / (1 + 1e-6), 0, 2 / (1 + 1e-6)], tol: 1e-12)
        XCTAssertEqual(try Registry.advantages("tempo", batch: one, params: ["singleton_policy": .string("zero")]).advantages, [0, 0, 0])
        XCTAssertTrue(try Registry.advantages("tempo", batch: one, params: ["singleton_policy": .string("reference")]).advantages.allSatisfy(\.isNaN))
    }

    func testStopAtFirstHoleKeepsGRPOAfterTheHole() throws {
        // Both responses branch after a hole: the paper default corrects there, the reference does not.
        let b = TreeSupport.batch([[A, B, C], [A, B, D]], groups: [0, 0], outcome: [1, 0], masks: [[1, 0, 1], [1, 0, 1]])
        let paper = try Registry.advantages("tempo", batch: b).advantages
        let ref = try Registry.advantages("tempo", batch: b, params: ["stop_at_first_hole": .bool(true)]).advantages
        let grpo = try Registry.advantages("grpo", batch: b).advantages
        XCTAssertEqual(ref, grpo)
        XCTAssertEqual(paper[2], 2 * grpo[2], accuracy: 1e-12)
        XCTAssertEqual(paper[1], 0)
    }

    func testBenchmarkBatchSharesPrefixes() throws {
        let b = SyntheticBatch.tempoBenchmark(responses: 64, maxLength: 256, group: 8, seed: 1)
        XCTAssertEqual(b.count, 64); XCTAssertEqual(b.groupCount, 8)
        try b.validate()
        var shared = 0
        for r in stride(from: 1, to: 64, by: 1) where r % 8 != 0 && b.length(r) > 0 && b.length(r - 1) > 0 {
            if (0 ..< r % 8).contains(where: { b.tokens[b.offsets[r - r % 8 + $0]] == b.tokens[b.offsets[r]] }) { shared += 1 }
        }
        XCTAssertGreaterThan(shared, 20, "most responses share at least their first token with an earlier sibling")
        XCTAssertEqual(try Registry.advantages("tempo", batch: b).advantages.count, b.tokenCount)
    }

    func testBadInput() throws {
        var b = TreeSupport.batch([[A, B], [A, C]], groups: [0, 0], outcome: [1, 0])
        TreeSupport.assertThrows(["epsilon", "tempo"]) { _ = try Registry.advantages("tempo", batch: b, params: ["epsilon": .number(-1)]) }
        TreeSupport.assertThrows(["singleton_policy", "nan"]) { _ = try Registry.advantages("tempo", batch: b, params: ["singleton_policy": .string("nan")]) }
        TreeSupport.assertThrows(["td_weight", "finite"]) { _ = try Registry.advantages("tempo", batch: b, params: ["td_weight": .number(.infinity)]) }
        b.outcome = nil
        TreeSupport.assertThrows(["missing field 'reward'", "tempo"]) { _ = try Registry.advantages("tempo", batch: b) }
        b.outcome = [1, .nan]
        TreeSupport.assertThrows(["reward", "finite"]) { _ = try Registry.advantages("tempo", batch: b) }
    }
}
