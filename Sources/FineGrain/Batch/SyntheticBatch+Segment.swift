/// Synthetic benchmark batches for the reward-model PPO estimators (segment RM, Fine-Grained RLHF, RTO).
extension SyntheticBatch {
    /// `verlBenchmark` plus what `segment_rm` reads: reference entropies `|N(0,1)| * 1.4` (about a fifth of the
    /// tokens exceed the default threshold 1.75, i.e. segments of ~5 tokens) in `entropies`, per-token RM
    /// outputs `N(0,1)` in `rm_values`. Defaults: 512 responses, lengths uniform 1...4096, groups of 8.
    public static func segmentRMBenchmark(responses: Int = 512, maxLength: Int = 4096, group: Int = 8, seed: UInt64 = 0) -> RolloutBatch {
        var b = verlBenchmark(responses: responses, maxLength: maxLength, group: group, seed: seed)
        var rng = SplitMix64(seed: seed ^ 0x5E6_3E47)
        let n = b.tokenCount
        var h = [Double](repeating: 0, count: n), u = h   // [N]
        for i in 0 ..< n { h[i] = abs(rng.normal()) * 1.4; u[i] = rng.normal() }
        b.entropy = h
        b.extraTokenColumns["rm_values"] = u
        return b
    }

    /// `verlBenchmark` plus what `rto` reads: DPO-model log-probs `ref + 0.2 N(0,1)` in `dpo_logprobs` and the
    /// sequence RM score `N(0,1)` in `reward`.
    public static func rtoBenchmark(responses: Int = 512, maxLength: Int = 4096, group: Int = 8, seed: UInt64 = 0) -> RolloutBatch {
        var b = verlBenchmark(responses: responses, maxLength: maxLength, group: group, seed: seed)
        var rng = SplitMix64(seed: seed ^ 0x2_70)
        let ref = b.refLogprob ?? []
        b.extraTokenColumns["dpo_logprobs"] = ref.map { $0 + 0.2 * rng.normal() }
        b.outcome = (0 ..< b.count).map { _ in rng.normal() }
        return b
    }

    /// `verlBenchmark` plus what `fine_grained_rlhf` reads: segment ends every 8-32 tokens (the last at the
    /// response end), random relevance / factuality labels (factuality on about every other end, the rest 0) in
    /// `step_relevance` / `step_factuality`, and a completeness score `N(0, 8)` in `reward`.
    public static func fineGrainedRLHFBenchmark(responses: Int = 512, maxLength: Int = 4096, group: Int = 8, seed: UInt64 = 0) -> RolloutBatch {
        var b = verlBenchmark(responses: responses, maxLength: maxLength, group: group, seed: seed)
        var rng = SplitMix64(seed: seed ^ 0xF6)
        var so = [0], ends = [Int](), rel = [Double](), fac = [Double]()
        for r in 0 ..< b.count {
            let len = b.length(r)
            var e = 0
            while e < len {
                e = Swift.min(len, e + 8 + Int(rng.next() % 25))
                ends.append(e)
                rel.append(rng.uniform() < 0.7 ? 1 : -1)
                fac.append(rng.uniform() < 0.5 ? 0 : (rng.uniform() < 0.6 ? 1 : -1))
            }
            so.append(ends.count)
        }
        b.stepOffsets = so; b.stepEnds = ends
        b.extraStepColumns = ["step_relevance": rel, "step_factuality": fac]
        b.outcome = (0 ..< b.count).map { _ in 8 * rng.normal() }
        return b
    }
}
