import FineGrain

/// Conformance adapters for the segment-level reward model (golden/papers/segrm_*.json, reference
/// yinyueqin/DenseRewardRLHF-PPO). Every adapter builds a full-width batch (padding kept as mask-0 tokens, so
/// every position is compared) and runs FineGrain with `reference_compatible`.
let segmentRMAdapters: [ConformanceAdapter] = [
    ConformanceAdapter("NaiveExperienceMaker.segment_data_peak") { c in
        let mask = try c.matrix("action_mask")
        let batch = try VerlLayout.batch(responseMask: mask, groups: nil, trimTrailingPadding: false)
        let h = try VerlLayout.ragged(try c.matrix("entropies"), like: batch, field: "entropies")
        let width = mask.first?.count ?? 0
        let prompt = Int(c.param("prompt_length")?.doubleValue ?? c.inputs["prompt_length"]?.doubleValue ?? 0)
        let ends = try SegmentRM.segmentEnds(entropies: h, mask: batch.mask, offsets: batch.offsets,
                                             threshold: c.param("entropy_threshold")?.doubleValue ?? 1.75,
                                             referenceCompatible: true, sequenceLength: prompt + width)
        return ["segment_ends": .intMatrix(ends)]
    },
    ConformanceAdapter("NaiveExperienceMaker.get_segment_rewards",
                       tolerance: { _, _ in .float32Reference }) { c in
        let mask = try c.matrix("action_mask")
        let batch = try VerlLayout.batch(responseMask: mask, groups: nil, trimTrailingPadding: false)
        let h = try VerlLayout.ragged(try c.matrix("entropies"), like: batch, field: "entropies")
        let u = try VerlLayout.ragged(try c.matrix("rm_values"), like: batch, field: "rm_values")
        let width = mask.first?.count ?? 0
        // The reference's run-name switches (exp_prefix) as typed parameters.
        let prefix = c.param("exp_prefix")?.stringValue ?? ""
        var given = c.registryParams(only: ["entropy_threshold", "model_type", "ppo_reward_type", "normalize_reward", "rm_mean", "rm_std"])
        given["reference_compatible"] = .bool(true)
        if prefix.contains("no_normalization") { given["normalize_reward"] = .bool(false) }
        if prefix.contains("end_penalty") {
            given["end_penalty"] = .bool(true)
            given["penalty"] = .number(prefix.contains("m0d05") ? -0.05 : 0)
        }
        if prefix.contains("len_thres") && prefix.contains("800") { given["length_threshold"] = .number(800) }
        if prefix.contains("length_norm") { given["length_norm"] = .bool(true) }
        let p = try Params.resolve(given, specs: SegmentRM.info.params, method: SegmentRM.info.name)
        let cfg = try SegmentRM.Config(p)
        let out = try SegmentRM.tokenRewards(offsets: batch.offsets, mask: batch.mask, entropies: h, rmValues: u,
                                             eos: try c.vector("eos_token_present"), config: cfg)
        let ends = try SegmentRM.segmentEnds(entropies: h, mask: batch.mask, offsets: batch.offsets, threshold: cfg.threshold,
                                             referenceCompatible: true, sequenceLength: 3 + width)
        let rewards: JSONValue = out.sequence.map { .numbers($0) } ?? .matrix(VerlLayout.padded(out.rewards, like: batch, width: width))
        return ["rewards": rewards, "avg_segment_lengths": .numbers(out.avgSegmentLength), "segment_ends": .intMatrix(ends)]
    },
    ConformanceAdapter("compute_reward + NaiveExperienceMaker.get_advantages_and_returns",
                       tolerance: { _, _ in .float32Reference }) { c in
        let mask = try c.matrix("action_mask")
        let batch = try VerlLayout.batch(responseMask: mask, groups: nil, trimTrailingPadding: false)
        let width = mask.first?.count ?? 0
        let type = c.param("ppo_reward_type")?.stringValue ?? "segment_normalization"
        guard let rIn = c.inputs["r"]?.arrayValue else { throw FineGrainError.missingField(field: "r", method: c.id) }
        let perToken = rIn.first?.arrayValue != nil
        let tokenR = perToken ? try VerlLayout.ragged(try c.matrix("r"), like: batch, field: "r") : [Double](repeating: 0, count: batch.tokenCount)
        let seqR = perToken ? nil : try c.vector("r")
        let lp = try VerlLayout.ragged(try c.matrix("log_probs"), like: batch, field: "log_probs")
        let base = try VerlLayout.ragged(try c.matrix("base_log_probs"), like: batch, field: "base_log_probs")
        let values = try VerlLayout.ragged(try c.matrix("values"), like: batch, field: "values")
        // segment_last_avg: the reference broadcasts [B] + [B][T]; segment_last_logsumexp scatters at the EOS.
        let shaped = try SegmentRM.shape(offsets: batch.offsets, mask: batch.mask, tokenRewards: tokenR, sequenceRewards: seqR,
                                         logprobs: lp, refLogprobs: base, klCoef: c.param("kl_coef")?.doubleValue ?? 0.01,
                                         clip: 10, referenceBroadcast: type == "segment_last_avg", float32KL: true)
        let gae = SegmentRM.referenceGAE(batch, values: values, rewards: shaped.reward,
                                         gamma: c.param("gamma")?.doubleValue ?? 1, lam: c.param("lambd")?.doubleValue ?? 0.95)
        var norm = gae.advantages
        try SegmentRM.normalizeAdvantages(&norm, mask: batch.mask)
        let trimmed: [JSONValue] = (0 ..< batch.count).map { r in .numbers(Array(norm[batch.offsets[r] ..< batch.offsets[r] + batch.validCount(r)])) }
        func pad(_ x: [Double]) -> JSONValue { .matrix(VerlLayout.padded(x, like: batch, width: width)) }
        return ["kl": pad(shaped.kl), "reward": pad(shaped.reward), "advantages": pad(gae.advantages),
                "returns": pad(gae.returns), "normalized_advantages": .array(trimmed)]
    },
]

extension JSONValue {
    /// Ragged integer lists -> JSON.
    static func intMatrix(_ m: [[Int]]) -> JSONValue { .array(m.map { .array($0.map { .number(Double($0)) }) }) }
}
