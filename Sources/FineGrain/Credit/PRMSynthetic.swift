// Synthetic benchmark batches for the PRM credit methods (PURE, PRIME): 512 responses x lengths uniform in
// 1...4096, groups of 8, seeded SplitMix64 so every machine builds the same batch.

extension SyntheticBatch {
    /// PURE benchmark: `verlBenchmark`'s layout plus PRM steps every 50-200 tokens (the last step ends on the
    /// last token), step scores `step_rewards` uniform in [0, 1], and a Bernoulli(0.5) verifiable `reward`.
    public static func pureBenchmark(responses: Int = 512, maxLength: Int = 4096, group: Int = 8, seed: UInt64 = 0) -> RolloutBatch {
        var b = verlBenchmark(responses: responses, maxLength: maxLength, group: group, seed: seed)
        var rng = SplitMix64(seed: seed &+ 0x5045_5245)
        var stepOffsets = [0], ends = [Int](), scores = [Double](), outcome = [Double]()
        for r in 0 ..< b.count {
            let len = b.length(r)
            var e = 0
            while true {
                e += 50 + Int(rng.next() % 151)
                if e >= len { break }
                ends.append(e); scores.append(rng.uniform())
            }
            if len > 0 { ends.append(len); scores.append(rng.uniform()) }
            stepOffsets.append(ends.count)
            outcome.append(rng.uniform() < 0.5 ? 1 : 0)
        }
        b.stepOffsets = stepOffsets; b.stepEnds = ends; b.stepReward = scores
        b.outcome = outcome; b.tokenReward = nil
        return b
    }

    /// PRIME benchmark: `verlBenchmark`'s layout plus implicit-PRM log-probs `prm_logprobs = −|N(0,1)|`, reference
    /// log-probs `prm_ref_logprobs = prm + 0.1 N(0,1)`, and a Bernoulli(0.5) outcome `reward` (accuracy).
    public static func primeBenchmark(responses: Int = 512, maxLength: Int = 4096, group: Int = 8, seed: UInt64 = 0) -> RolloutBatch {
        var b = verlBenchmark(responses: responses, maxLength: maxLength, group: group, seed: seed)
        var rng = SplitMix64(seed: seed &+ 0x5052_494D)
        let n = b.tokenCount
        var prm = [Double](repeating: 0, count: n), ref = prm
        for i in 0 ..< n { prm[i] = -abs(rng.normal()); ref[i] = prm[i] + 0.1 * rng.normal() }
        b.extraTokenColumns["prm_logprobs"] = prm
        b.extraTokenColumns["prm_ref_logprobs"] = ref
        b.outcome = (0 ..< b.count).map { _ in rng.uniform() < 0.5 ? 1 : 0 }
        b.tokenReward = nil
        return b
    }
}
