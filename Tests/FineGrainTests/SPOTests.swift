import Foundation
import XCTest
@testable import FineGrain
import FineGrainConformance

/// SPO-chain, SPO-tree, the SPO trainer's whitening, SALT and PORTool: golden files, the spec's worked
/// examples (credit_assignment.md §3–§5), invariants and bad input.
final class SPOTests: XCTestCase {
    func golden(_ stem: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try assertGoldenPasses("papers", stem, file: file, line: line)
    }

    func testGoldenChain() throws { try golden("spo_chain_advantages") }
    func testGoldenChainNaive() throws { try golden("spo_chain_naive_advantages") }
    func testGoldenTree() throws { try golden("spo_tree_advantages") }
    func testGoldenMaskedWhiten() throws { try golden("spo_masked_whiten") }

    func assertClose(_ a: [Double], _ b: [Double], _ tol: Double = 1e-6, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: tol, "\(a) vs \(b)", file: file, line: line) }
    }

    // MARK: SPO-chain (spec §3.1 (e))

    /// One response with probabilities p, cut values at token indices, score R.
    func chain(_ p: [Double], values: [Int: Double], prompt: Double? = nil, R: Double = 1) -> RolloutBatch {
        var b = RolloutBatch(groups: [.int(0)], lengths: [p.count])
        b.oldLogprob = p.map { Foundation.log($0) }
        var mc = [Double](repeating: 0, count: p.count)
        for (i, v) in values { mc[i] = v }
        b.extraTokenColumns["mc_values"] = mc
        b.outcome = [R]
        if let prompt { b.rewardBaseline = [prompt] }
        return b
    }
    let specP = [0.95, 0.5, 0.99, 0.97, 0.3, 0.92, 0.8, 0.99]

    func testChainSpecExamples() throws {
        let b = chain(specP, values: [0: 0.4, 3: 0.7, 5: 0.5])
        let ref: [String: ParamValue] = ["cutpoint_interval": .number(1), "reference_compatible": .bool(true)]
        assertClose(try Registry.advantages("spo_chain", batch: b, params: ref).advantages, [0, 0.3, 0, 0, -0.2, 0, 0.5, 0])
        XCTAssertEqual(SPOChain.cutpoints(logprobs: b.oldLogprob!, interval: 1), [0, 3, 5])
        var ref2 = ref; ref2["cutpoint_interval"] = .number(2)
        assertClose(try Registry.advantages("spo_chain", batch: b, params: ref2).advantages, [0, 0.1, 0, 0, 0.1, 0, 0.5, 0])
        let first = chain([0.5, 0.95, 0.3, 0.99], values: [1: 0.2], prompt: 0.6)
        assertClose(try Registry.advantages("spo_chain", batch: first, params: ref).advantages, [-0.4, 0, 0.8, 0])
        // Paper default: same numbers where the first token is a cut target (the prompt is a boundary anyway).
        assertClose(try Registry.advantages("spo_chain", batch: first, params: ["cutpoint_interval": .number(1)]).advantages, [-0.4, 0, 0.8, 0])
    }

    func testChainTelescopesAndPaperLeadingSegment() throws {
        // K = 1, every token low: a_t = V(y<=t) - V(y<t); the sum telescopes to R - V(prompt).
        let p = [0.5, 0.4, 0.3, 0.2]
        let b = chain(p, values: [0: 0.3, 1: 0.6, 2: 0.4], prompt: 0.5, R: 1)
        let a = try Registry.advantages("spo_chain", batch: b, params: ["cutpoint_interval": .number(1)]).advantages
        assertClose(a, [-0.2, 0.3, -0.2, 0.6])
        XCTAssertEqual(a.reduce(0, +), 1 - 0.5, accuracy: 1e-12)
        // Paper default without a prompt value: V(prompt) = group mean score; the leading segment is scored.
        let noProb = chain(specP, values: [0: 0.4, 3: 0.7, 5: 0.5])
        let ap = try Registry.advantages("spo_chain", batch: noProb, params: ["cutpoint_interval": .number(1), "use_prob_mask": .bool(false)]).advantages
        assertClose(ap, [0.4 - 1, 0.3, 0.3, 0.3, -0.2, -0.2, 0.5, 0.5])
    }

    func testChainSingleSegmentIsGRPOLike() throws {
        // No low-probability token: one segment, advantage R - mean_g (paper) on the decision tokens only;
        // with the prob mask off every token gets it. Reference mode: all zero.
        var b = RolloutBatch(groups: [.int(0), .int(0)], lengths: [3, 2])
        b.oldLogprob = [Double](repeating: Foundation.log(0.99), count: 5)
        b.extraTokenColumns["mc_values"] = [Double](repeating: 0, count: 5)
        b.outcome = [1, 0]
        let a = try Registry.advantages("spo_chain", batch: b, params: ["use_prob_mask": .bool(false)]).advantages
        assertClose(a, [0.5, 0.5, 0.5, -0.5, -0.5])
        assertClose(try Registry.advantages("spo_chain", batch: b, params: ["reference_compatible": .bool(true)]).advantages, [0, 0, 0, 0, 0])
    }

    func testChainZeroWhereMaskZero() throws {
        var b = chain(specP, values: [0: 0.4, 3: 0.7, 5: 0.5])
        b.mask[1] = 0; b.mask[6] = 0
        let a = try Registry.advantages("spo_chain", batch: b, params: ["cutpoint_interval": .number(1)]).advantages
        XCTAssertEqual(a[1], 0); XCTAssertEqual(a[6], 0); XCTAssertEqual(a[4], -0.2, accuracy: 1e-12)
    }

    func testChainBadInput() throws {
        var b = chain(specP, values: [:])
        b.extraTokenColumns = [:]
        XCTAssertThrowsError(try Registry.advantages("spo_chain", batch: b)) {
            XCTAssertEqual("\($0)", "missing field 'mc_values': required by 'spo_chain'")
        }
        var c = chain(specP, values: [:]); c.oldLogprob = nil
        XCTAssertThrowsError(try Registry.advantages("spo_chain", batch: c)) { XCTAssertTrue("\($0)".contains("'old_logprobs'")) }
        let d = chain([0.5, 0.95], values: [:])
        XCTAssertThrowsError(try Registry.advantages("spo_chain", batch: d, params: ["reference_compatible": .bool(true)])) {
            XCTAssertTrue("\($0)".contains("'reward_baseline'"))
        }
        XCTAssertThrowsError(try Registry.advantages("spo_chain", batch: d, params: ["cutpoint_interval": .number(0)])) {
            XCTAssertTrue("\($0)".contains("invalid parameter 'cutpoint_interval'"))
        }
    }

    func testChainNaiveFixedPartition() throws {
        // L = 6, k = 4: segment lengths [2, 2, 1, 1], cuts {1, 3, 4}.
        XCTAssertEqual(SPOChain.fixedCutpoints(length: 6, segments: 4), [1, 3, 4])
        var b = RolloutBatch(groups: [.int(0)], lengths: [6])
        b.extraTokenColumns["mc_values"] = [0, 0.2, 0, 0.6, 0.5, 0]
        b.outcome = [1]; b.rewardBaseline = [0.3]
        let p: [String: ParamValue] = ["partition": .string("fixed"), "use_prob_mask": .bool(false)]
        assertClose(try Registry.advantages("spo_chain", batch: b, params: p).advantages, [-0.1, -0.1, 0.4, 0.4, -0.1, 0.5])
        var r = p; r["reference_compatible"] = .bool(true)
        assertClose(try Registry.advantages("spo_chain", batch: b, params: r).advantages, [0, 0, 0.4, 0.4, -0.1, 0.5])
    }

    // MARK: SPO-tree (spec §3.2 (e))

    /// root -> c1 [5,6] -> leaves [7] (1), [8] (0); root -> c2 [9,10] -> leaves [11] (0), [12] (0).
    func specTree(order: [Int] = [0, 1, 2, 3]) -> RolloutBatch {
        let paths: [[Int32]] = [[5, 6, 7], [5, 6, 8], [9, 10, 11], [9, 10, 12]], rewards: [Double] = [1, 0, 0, 0]
        var b = RolloutBatch(groups: order.map { _ in .int(0) }, lengths: order.map { paths[$0].count }, tokens: order.flatMap { paths[$0] })
        b.outcome = order.map { rewards[$0] }
        b.stepOffsets = Array(0 ... order.count); b.stepEnds = order.map { _ in 2 }
        return b
    }

    func testTreeSpecExample() throws {
        let p: [String: ParamValue] = ["use_prob_mask": .bool(false), "shared_segments": .string("every")]
        let a = try Registry.advantages("spo_tree", batch: specTree(), params: p).advantages
        assertClose(a, [0.25, 0.25, 0.5, 0.25, 0.25, -0.5, -0.25, -0.25, 0, -0.25, -0.25, 0], 1e-12)
        var g = p; g["adv_method"] = .string("grpo")
        let ag = try Registry.advantages("spo_tree", batch: specTree(), params: g).advantages
        XCTAssertEqual(ag[0], 0.99999996, accuracy: 1e-8); XCTAssertEqual(ag[6], -0.99999996, accuracy: 1e-8)
        let an = try SPOTree.analyze(specTree(), params: p)
        XCTAssertEqual(an.value[an.nodeStart[0]], 0.25, accuracy: 1e-15)
        // `once`: the shared segment [5, 6] carries its advantage in response 0 only.
        let once = try Registry.advantages("spo_tree", batch: specTree(), params: ["use_prob_mask": .bool(false)])
        assertClose(Array(once.advantages[3 ..< 6]), [0, 0, -0.5], 1e-12)
        XCTAssertEqual(once.diagnostics["duplicate_tokens"], 4)
    }

    func testTreePermutationAndMask() throws {
        let p: [String: ParamValue] = ["use_prob_mask": .bool(false), "shared_segments": .string("every")]
        let base = try Registry.advantages("spo_tree", batch: specTree(), params: p).advantages
        let perm = [2, 0, 3, 1]
        let pa = try Registry.advantages("spo_tree", batch: specTree(order: perm), params: p).advantages
        for (k, r) in perm.enumerated() { assertClose(Array(pa[(3 * k) ..< (3 * k + 3)]), Array(base[(3 * r) ..< (3 * r + 3)]), 1e-15) }
        var m = specTree(); m.mask[2] = 0; m.oldLogprob = [Double](repeating: Foundation.log(0.5), count: 12); m.oldLogprob![0] = Foundation.log(0.95)
        let am = try Registry.advantages("spo_tree", batch: m, params: ["shared_segments": .string("every")]).advantages
        XCTAssertEqual(am[2], 0); XCTAssertEqual(am[0], 0); XCTAssertEqual(am[1], 0.25, accuracy: 1e-12)
    }

    func testTreeSingleSegmentIsSequenceReward() throws {
        // No step ends: every response is a leaf under the root; A = R - mean (rloo), GRPO-like (grpo, pop. std).
        var b = RolloutBatch(groups: [.int(0), .int(0), .int(0)], lengths: [2, 1, 2], tokens: [1, 2, 3, 4, 5])
        b.outcome = [1, 0, 0]; b.stepOffsets = [0, 0, 0, 0]; b.stepEnds = []
        let a = try Registry.advantages("spo_tree", batch: b, params: ["use_prob_mask": .bool(false)]).advantages
        assertClose(a, [2.0 / 3, 2.0 / 3, -1.0 / 3, -1.0 / 3, -1.0 / 3], 1e-12)
    }

    func testTreeBadInput() throws {
        var b = specTree(); b.stepOffsets = nil; b.stepEnds = nil
        XCTAssertThrowsError(try Registry.advantages("spo_tree", batch: b, params: ["use_prob_mask": .bool(false)])) {
            XCTAssertEqual("\($0)", "missing field 'step_ends': required by 'spo_tree'")
        }
        XCTAssertThrowsError(try Registry.advantages("spo_tree", batch: specTree())) { XCTAssertTrue("\($0)".contains("'old_logprobs'")) }
        XCTAssertThrowsError(try Registry.advantages("spo_tree", batch: specTree(), params: ["adv_method": .string("gae")])) {
            XCTAssertTrue("\($0)".contains("invalid parameter 'adv_method'"))
        }
    }

    func testTreeBenchmarkBatchRuns() throws {
        let b = SyntheticBatch.spoTreeBenchmark(responses: 64, maxLength: 512, group: 8, seed: 3)
        try b.validate()
        let out = try Registry.advantages("spo_tree", batch: b)
        XCTAssertEqual(out.advantages.count, b.tokenCount)
        XCTAssertTrue(out.advantages.allSatisfy(\.isFinite))
        XCTAssertLessThan(out.diagnostics["nodes"]!, Double(b.stepEnds!.count + 2 * b.count))
    }

    // MARK: SPO trainer whitening

    func testMaskedWhitenBadInput() throws {
        XCTAssertThrowsError(try SPOWhiten.maskedWhiten([1, 2], mask: [0, 0], oldLogprobs: nil)) { XCTAssertTrue("\($0)".contains("all zero")) }
        XCTAssertThrowsError(try SPOWhiten.maskedWhiten([1, 2], mask: [1, 0], oldLogprobs: nil)) { XCTAssertTrue("\($0)".contains("at least 2")) }
        XCTAssertTrue(try SPOWhiten.maskedWhiten([1, 2], mask: [1, 0], oldLogprobs: nil, referenceCompatible: true)[0].isNaN)
        let w = try SPOWhiten.maskedWhiten([1, 2, 3, 9], mask: [1, 1, 1, 1], oldLogprobs: [-1, -1, -1, -0.01])
        assertClose(w, [-1, 0, 1, 7], 1e-7)   // statistics over the three low-probability tokens only
    }

    // MARK: SALT (spec §4 (e)) and PORTool (spec §5 (e))

    /// Steps as single tokens: a=1, b=2, c=3, d=4, e=5.
    func stepBatch(_ paths: [[Int32]], _ rewards: [Double]) -> RolloutBatch {
        var b = RolloutBatch(groups: paths.map { _ in .int(0) }, lengths: paths.map(\.count), tokens: paths.flatMap { $0 })
        b.outcome = rewards
        var so = [0]; var ends = [Int]()
        for p in paths { ends += Array(1 ... p.count); so.append(ends.count) }
        b.stepOffsets = so; b.stepEnds = ends
        return b
    }

    func testSALTSpecExample() throws {
        let b = stepBatch([[1, 2, 3], [1, 2, 4], [1, 5]], [1, 0, 0])
        let a = try Registry.advantages("salt", batch: b).advantages
        assertClose(a, [0, 0.288675, 1.154699, 0, 0.288675, -0.577349, 0, -0.577349], 1e-6)
        let v = try Registry.advantages("salt", batch: b, params: ["mode": .string("value_difference")]).advantages
        assertClose(v, [0, 0.288675, 0.866024, 0, 0.288675, -0.866024, 0, -0.577349], 1e-6)
        // Telescoping (invariant X.2): per-trajectory sum = GRPO advantage.
        assertClose([v[0 ..< 3].reduce(0, +), v[3 ..< 6].reduce(0, +), v[6 ..< 8].reduce(0, +)], [1.154699, -0.577349, -0.577349], 1e-6)
        // state_action merges "b" steps reached through the same history only; "a" is shared by all -> 0.
        let s = try Registry.advantages("salt", batch: stepBatch([[1, 2], [3, 2], [1, 4]], [1, 0, 0]), params: ["merge_key": .string("state_action")]).advantages
        assertClose(s, [0.288675, 0.288675, -0.577349, 0.288675, 0.288675, -0.577349], 1e-6)
    }

    func testSALTBadInput() throws {
        var b = stepBatch([[1, 2, 3], [1, 5]], [1, 0]); b.stepEnds![2] = 2
        XCTAssertThrowsError(try Registry.advantages("salt", batch: b)) { XCTAssertTrue("\($0)".contains("'step_ends'")) }
        XCTAssertThrowsError(try Registry.advantages("salt", batch: stepBatch([[1]], [1]),
                                                     params: ["merge_key": .string("state_action"), "mode": .string("value_difference")])) {
            XCTAssertTrue("\($0)".contains("invalid parameter 'mode'"))
        }
    }

    func testPORToolSpecExample() throws {
        // s1 = 1, s2a = 2, s3a = 3, s3b = 4, s2b = 5.
        let b = stepBatch([[1, 2, 3], [1, 2, 4], [1, 5]], [1, 0, 1])
        let a = try Registry.advantages("portool", batch: b, params: ["gamma": .number(0.9)]).advantages
        assertClose(a, [0, -1.288655, 1.577347, 0, -1.288655, -2.154697, 0, 1.577329], 1e-6)
        // Permuting trajectories permutes the result.
        let p = try Registry.advantages("portool", batch: stepBatch([[1, 5], [1, 2, 4], [1, 2, 3]], [1, 0, 1]), params: ["gamma": .number(0.9)]).advantages
        assertClose(p, [0, 1.577329, 0, -1.288655, -2.154697, 0, -1.288655, 1.577347], 1e-6)
        XCTAssertThrowsError(try Registry.advantages("portool", batch: b, params: ["format_coef": .number(0.1)])) {
            XCTAssertEqual("\($0)", "missing field 'step_tool_success': required by 'portool'")
        }
    }
}
