import XCTest
@testable import FineGrain

/// Worked examples (credit_assignment.md §8, §9; token_losses.md §J), invariants and bad input for
/// `segment_rm`, `fine_grained_rlhf` and `rto`.
final class SegmentRewardModelTests: XCTestCase {
    func near(_ a: [Double], _ b: [Double], _ tol: Double = 1e-6, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: tol, file: file, line: line) }
    }
    func params(_ m: MethodInfo, _ given: [String: ParamValue] = [:]) throws -> Params {
        try Params.resolve(given, specs: m.params, method: m.name)
    }

    /// §8(e): K = 4 segments of lengths [3, 2, 4, 1] + EOS, Phi-3 tau = 1.75 coefficients.
    func specBatch() -> RolloutBatch {
        var b = RolloutBatch(groups: [.int(0)], lengths: [11])
        b.entropy = [0.1, 0.1, 2.0, 0.1, 2.0, 0.1, 0.1, 0.1, 2.0, 0.1, 0.1]
        b.extraTokenColumns["rm_values"] = [0, 0, 0.2, 0, -0.5, 0, 0, 0, 1.0, 0.3, 0]
        b.value = [Double](repeating: 0, count: 11)
        b.oldLogprob = [Double](repeating: -1, count: 11); b.refLogprob = b.oldLogprob
        return b
    }

    func testSegmentRMSpecExample() throws {
        let b = specBatch()
        XCTAssertEqual(try SegmentRM.segmentEnds(entropies: b.entropy!, mask: b.mask, offsets: b.offsets, threshold: 1.75,
                                                 referenceCompatible: false), [[2, 4, 8, 9]])
        let out = try SegmentRM.tokenRewards(offsets: b.offsets, mask: b.mask, entropies: b.entropy!,
                                             rmValues: b.extraTokenColumns["rm_values"]!, eos: nil,
                                             config: SegmentRM.Config(try params(SegmentRM.info)))
        let a = 0.106616, c = -0.082647, d = 0.067943
        near(out.rewards, [a, a, a, c, c, d, d, d, d, -0.060164, 0])
        // Even split: each segment's token rewards sum to its normalised reward.
        near([out.rewards[0 ..< 3].reduce(0, +), out.rewards[3 ..< 5].reduce(0, +), out.rewards[5 ..< 9].reduce(0, +)],
             [0.319849, -0.165295, 0.271774])
        XCTAssertEqual(out.avgSegmentLength, [2.5])
        // Through the registry, gamma = lam = 1, V = 0, no KL: the first return is the sum of the rewards.
        let est = try Registry.advantages("segment_rm", batch: b, params: ["lam": .number(1), "normalize_advantages": .bool(false)])
        XCTAssertEqual(est.returns![0], out.rewards.reduce(0, +), accuracy: 1e-12)
    }

    func testSingleSegmentIsSequenceReward() throws {
        // No entropy above the threshold: one segment ending at e-1, even split, sum = raw RM score there.
        var b = specBatch()
        b.entropy = [Double](repeating: 0.5, count: 11)
        let p: [String: ParamValue] = ["model_type": .string("none"), "kl_coef": .number(0), "lam": .number(1),
                                       "normalize_advantages": .bool(false)]
        let out = try Registry.advantages("segment_rm", batch: b, params: p)
        XCTAssertEqual(out.returns![0], 0.3, accuracy: 1e-12)   // u[e-1] = u[9]
        XCTAssertEqual(out.advantages[10], 0)                   // EOS token: no segment, no reward, V = 0
    }

    func testOneTokenResponseGuard() throws {
        XCTAssertEqual(try SegmentRM.segmentEnds(entropies: [3.0], mask: [1], offsets: [0, 1], threshold: 1.75, referenceCompatible: false), [[0]])
        XCTAssertEqual(try SegmentRM.segmentEnds(entropies: [3.0], mask: [1], offsets: [0, 1], threshold: 1.75, referenceCompatible: true), [[-1]])
    }

    func testSegmentRMMaskZeroAndPermutation() throws {
        var b = SyntheticBatch.segmentRMBenchmark(responses: 6, maxLength: 40, group: 3, seed: 7)
        for i in stride(from: 3, to: b.tokenCount, by: 7) { b.mask[i] = 0 }
        let out = try Registry.advantages("segment_rm", batch: b)
        for i in 0 ..< b.tokenCount where b.mask[i] == 0 { XCTAssertEqual(out.advantages[i], 0); XCTAssertEqual(out.returns![i], 0) }
        // Reversing the responses reverses the per-response results (statistics are batch-global).
        let perm = Array((0 ..< b.count).reversed())
        let pb = permuted(b, perm)
        let po = try Registry.advantages("segment_rm", batch: pb)
        for (k, r) in perm.enumerated() {
            near(Array(po.advantages[pb.range(k)]), Array(out.advantages[b.range(r)]), 1e-9)
        }
    }

    func permuted(_ b: RolloutBatch, _ perm: [Int]) -> RolloutBatch {
        var out = RolloutBatch(groups: perm.map { b.groupIDs[b.group[$0]] }, lengths: perm.map { b.length($0) },
                               mask: perm.flatMap { Array(b.mask[b.range($0)]) })
        func col(_ c: [Double]?) -> [Double]? { c.map { c in perm.flatMap { Array(c[b.range($0)]) } } }
        out.entropy = col(b.entropy); out.value = col(b.value); out.oldLogprob = col(b.oldLogprob)
        out.refLogprob = col(b.refLogprob); out.logprob = col(b.logprob)
        for (k, v) in b.extraTokenColumns { out.extraTokenColumns[k] = col(v) }
        out.outcome = b.outcome.map { o in perm.map { o[$0] } }
        return out
    }

    func testSegmentRMBadInput() throws {
        var b = specBatch()
        b.entropy = nil
        XCTAssertThrowsError(try Registry.advantages("segment_rm", batch: b)) {
            XCTAssertEqual("\($0)", "missing field 'entropies': required by 'segment_rm'")
        }
        b = specBatch(); b.extraTokenColumns = [:]
        XCTAssertThrowsError(try Registry.advantages("segment_rm", batch: b)) { XCTAssertTrue("\($0)".contains("'rm_values'")) }
        XCTAssertThrowsError(try Registry.advantages("segment_rm", batch: specBatch(), params: ["entropy_threshold": .number(1.5)])) {
            XCTAssertTrue("\($0)".contains("invalid parameter 'entropy_threshold'"), "\($0)")
        }
        XCTAssertThrowsError(try Registry.advantages("segment_rm", batch: specBatch(), params: ["model_type": .string("custom")])) {
            XCTAssertTrue("\($0)".contains("norm_a"), "\($0)")
        }
        XCTAssertThrowsError(try Registry.advantages("segment_rm", batch: specBatch(), params: ["end_penalty": .bool(true)])) {
            XCTAssertTrue("\($0)".contains("'rewards.eos'"), "\($0)")
        }
    }

    // MARK: - Fine-Grained RLHF

    /// §9(e): 10 tokens, sub-sentence ends 3, 6, 9 (ok, bad, ok), sentence ends 6, 9 (bad, ok), completeness 2.0.
    func fgBatch() throws -> RolloutBatch {
        var b = RolloutBatch(groups: [.int(0)], lengths: [10])
        let m = try FineGrainedRLHF.mergeSegments(length: 10, ends: [[3, 6, 9], [6, 9]], labels: [[1, -1, 1], [-1, 1]],
                                                  clipToLength: false, fields: ["relevance", "factuality"])
        b.stepOffsets = [0, m.stepEnds.count]; b.stepEnds = m.stepEnds
        b.extraStepColumns = ["step_relevance": m.labels[0], "step_factuality": m.labels[1]]
        b.outcome = [2.0]
        b.value = [Double](repeating: 0, count: 10)
        b.oldLogprob = [Double](repeating: -1, count: 10); b.refLogprob = b.oldLogprob
        return b
    }

    func testFineGrainedSpecExample() throws {
        XCTAssertEqual(FineGrainedRLHF.completeness(2.0, mean: -0.44677690555995353, std: 8.301160619054132, scale: 0.3, bias: 0), 0.088425, accuracy: 1e-6)
        let s = try FineGrainedRLHF.pipeline(try fgBatch(), try params(FineGrainedRLHF.info))
        near(s.raw, [0, 0, 0, 0.3, 0, 0, -0.8, 0, 0, 0.888425])
        // Whitening: paper (÷ std) vs the reference quirk (÷ sqrt(std)).
        var x = [1.0, 2, 3], y = x
        try FineGrainedRLHF.whiten(&x, mask: [1, 1, 1], shiftMean: true, referenceQuirks: false)
        try FineGrainedRLHF.whiten(&y, mask: [1, 1, 1], shiftMean: true, referenceQuirks: true)
        near(x, [-1.224745, 0, 1.224745]); near(y, [-1.106682, 0, 1.106682])
    }

    func testFineGrainedMaskZeroAndBadInput() throws {
        var b = SyntheticBatch.fineGrainedRLHFBenchmark(responses: 4, maxLength: 60, seed: 3)
        for i in stride(from: 2, to: b.tokenCount, by: 5) { b.mask[i] = 0 }
        let out = try Registry.advantages("fine_grained_rlhf", batch: b)
        for i in 0 ..< b.tokenCount where b.mask[i] == 0 { XCTAssertEqual(out.advantages[i], 0); XCTAssertEqual(out.returns![i], 0) }
        var bad = try fgBatch()
        bad.extraStepColumns["step_relevance"]![0] = 2
        XCTAssertThrowsError(try Registry.advantages("fine_grained_rlhf", batch: bad)) {
            XCTAssertTrue("\($0)".contains("'step_relevance'") && "\($0)".contains("must be -1, 0 or 1"), "\($0)")
        }
        bad = try fgBatch(); bad.extraStepColumns["step_factuality"] = nil
        XCTAssertThrowsError(try Registry.advantages("fine_grained_rlhf", batch: bad)) {
            XCTAssertEqual("\($0)", "missing field 'step_factuality': required by 'fine_grained_rlhf'")
        }
        XCTAssertThrowsError(try FineGrainedRLHF.mergeSegments(length: 4, ends: [[5]], labels: [[1]], clipToLength: false, fields: ["subsentence_ends"])) {
            XCTAssertTrue("\($0)".contains("'subsentence_ends'") && "\($0)".contains("outside the response"), "\($0)")
        }
    }

    // MARK: - RTO

    func rtoBatch() -> RolloutBatch {
        var b = RolloutBatch(groups: [.int(0)], lengths: [3])
        b.extraTokenColumns["dpo_logprobs"] = [2.0, -0.4, 0.1]
        b.refLogprob = [0, 0, 0]; b.oldLogprob = [0.1, 0, 0]; b.value = [0, 0, 0]; b.outcome = [1.5]
        return b
    }

    func testRTOSpecExample() throws {
        let s = try RTO.rewards(rtoBatch(), try params(RTO.info))
        near(s.dpo, [0.05, -0.02, 0.005], 1e-12); near(s.reward, [0.049, -0.02, 1.505], 1e-12)
    }

    func testRTOWithDPOEqualRefIsPPO() throws {
        var b = SyntheticBatch.rtoBenchmark(responses: 5, maxLength: 30, seed: 11)
        b.extraTokenColumns["dpo_logprobs"] = b.refLogprob
        let rto = try Registry.advantages("rto", batch: b, params: ["kl_coef": .number(0), "normalize_advantages": .bool(false)])
        var g = b; g.tokenReward = nil   // plain PPO: the sequence score on the last token, verl's GAE
        let gae = try Registry.advantages("gae", batch: g, params: ["lam": .number(0.95)])
        near(rto.returns!, gae.returns!, 1e-12)
    }

    func testRTOBadInput() throws {
        var b = rtoBatch(); b.extraTokenColumns = [:]
        XCTAssertThrowsError(try Registry.advantages("rto", batch: b)) {
            XCTAssertEqual("\($0)", "missing field 'dpo_logprobs': required by 'rto'")
        }
        b = rtoBatch(); b.outcome = nil
        XCTAssertThrowsError(try Registry.advantages("rto", batch: b)) { XCTAssertTrue("\($0)".contains("'reward'")) }
    }

    // MARK: - Fused estimators == their staged stages

    /// Small benchmark batches with interior holes, a fully masked row and a one-token row.
    func holey(_ b0: RolloutBatch) -> RolloutBatch {
        var b = b0
        for i in 0 ..< b.tokenCount where i % 7 == 3 || i % 11 == 5 { b.mask[i] = 0 }
        for i in b.offsets[2] ..< b.offsets[3] { b.mask[i] = 0 }
        return b
    }

    func assertBitClose(_ a: [Double], _ b: [Double], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        for (i, (x, y)) in zip(a, b).enumerated() where abs(x - y) > 1e-9 * Swift.max(1, abs(y)) {
            return XCTFail("index \(i): \(x) vs \(y)", file: file, line: line)
        }
    }

    func testSegmentFusedEqualsStaged() throws {
        for big in [false, true] {
            var b = holey(SyntheticBatch.segmentRMBenchmark(responses: big ? 64 : 12, maxLength: big ? 4096 : 40, group: 4, seed: 3))
            b.namedRewards["eos"] = (0 ..< b.count).map { Double($0 % 5 == 1 ? 0 : 1) }
            let variants: [[String: ParamValue]] = [
                [:], ["ppo_reward_type": .string("same_segment_last")], ["ppo_reward_type": .string("every_segment_last")],
                ["ppo_reward_type": .string("segment_last_avg"), "rm_mean": .number(0.2), "rm_std": .number(2)],
                ["length_norm": .bool(true), "entropy_threshold": .number(0), "model_type": .string("phi3-instruct")],
                ["entropy_threshold": .number(1000), "model_type": .string("none")],
                ["end_penalty": .bool(true), "length_threshold": .number(20), "penalty": .number(-0.05), "kl_coef": .number(0.1)],
                ["normalize_advantages": .bool(false), "gamma": .number(0.9), "sigma_min": .number(0.5)],
            ]
            for v in variants {
                let p = try params(SegmentRM.info, v)
                let c = try SegmentRM.Config(p)
                let out = try SegmentRM.compute(b, p)
                let seg = try SegmentRM.tokenRewards(offsets: b.offsets, mask: b.mask, entropies: b.entropy!, rmValues: b.extraTokenColumns["rm_values"]!,
                                                     eos: c.endPenalty ? b.namedRewards["eos"] : nil, config: c)
                let sh = try SegmentRM.shape(offsets: b.offsets, mask: b.mask, tokenRewards: seg.rewards, sequenceRewards: seg.sequence,
                                             logprobs: b.oldLogprob!, refLogprobs: b.refLogprob!, klCoef: try p.double("kl_coef"),
                                             clip: try p.double("reward_clip"), referenceBroadcast: false, float32KL: false)
                var (adv, ret) = RewardModelPPO.gae(offsets: b.offsets, mask: b.mask, values: b.value!, rewards: sh.reward,
                                                    gamma: try p.double("gamma"), lam: try p.double("lam"), openRLHFMasking: false)
                if try p.bool("normalize_advantages") { try RewardModelPPO.normalize(&adv, mask: b.mask, method: "segment_rm") }
                assertBitClose(out.advantages, adv); assertBitClose(out.returns!, ret)
                XCTAssertEqual(out.diagnostics["avg_segment_length"]!, seg.avgSegmentLength.reduce(0, +) / Double(b.count), accuracy: 1e-12)
            }
        }
    }

    func testFineGrainedFusedEqualsPipeline() throws {
        for big in [false, true] {
            let b = holey(SyntheticBatch.fineGrainedRLHFBenchmark(responses: big ? 64 : 12, maxLength: big ? 4096 : 60, group: 4, seed: 5))
            for v: [String: ParamValue] in [[:], ["whiten_rewards": .bool(false)], ["completeness_scale": .number(0)], ["kl_coef": .number(0)]] {
                let p = try params(FineGrainedRLHF.info, v)
                let out = try FineGrainedRLHF.compute(b, p)
                let s = try FineGrainedRLHF.pipeline(b, p)
                assertBitClose(out.advantages, s.advantages); assertBitClose(out.returns!, s.returns)
            }
        }
    }

    func testRTOFusedEqualsStaged() throws {
        for big in [false, true] {
            let b = holey(SyntheticBatch.rtoBenchmark(responses: big ? 64 : 12, maxLength: big ? 4096 : 40, group: 4, seed: 7))
            for v: [String: ParamValue] in [[:], ["reference_compatible": .bool(true)], ["dpo_reward_scale": .number(1), "dpo_reward_clip": .number(0)]] {
                let p = try params(RTO.info, v)
                let out = try RTO.compute(b, p)
                let s = try RTO.rewards(b, p)
                var (adv, ret) = RewardModelPPO.gae(offsets: b.offsets, mask: b.mask, values: b.value!, rewards: s.reward,
                                                    gamma: try p.double("gamma"), lam: try p.double("lam"),
                                                    openRLHFMasking: try p.bool("reference_compatible"))
                try RewardModelPPO.normalize(&adv, mask: b.mask, method: "rto")
                assertBitClose(out.advantages, adv); assertBitClose(out.returns!, ret)
            }
        }
    }
}
