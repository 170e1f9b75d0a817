extension SyntheticBatch {
    /// A benchmark batch for the tree estimators (TEMPO): `responses` responses with lengths uniform in
    /// `1...maxLength`, `group` consecutive responses per group, where each group is a random tree of branch
    /// points. The first response of a group is random tokens (ids in `2 ..< 32000`); every later response
    /// picks an earlier response of its group as parent and a branch point `b` uniform in `0...min(L_parent,
    /// L_own)`, copies the parent's first `b` tokens and continues with fresh tokens (the token at `b` differs
    /// from the parent's), so responses share prefixes of realistic, varied depth. Outcome Bernoulli(0.5) on
    /// the last token of `token_rewards` (as `verlBenchmark`); every token is a policy token (mask 1).
    public static func tempoBenchmark(responses: Int = 512, maxLength: Int = 4096, group: Int = 8, seed: UInt64 = 0) -> RolloutBatch {
        var rng = SplitMix64(seed: seed)
        let g = Swift.max(1, group), maxLen = Swift.max(1, maxLength)
        let lengths = (0 ..< responses).map { _ in 1 + Int(rng.next() % UInt64(maxLen)) }
        let groups = (0 ..< responses).map { GroupID.int($0 / g) }
        var b = RolloutBatch(groups: groups, lengths: lengths)
        func fresh(_ rng: inout SplitMix64) -> Int32 { Int32(2 + rng.next() % 31998) }
        b.tokens.withUnsafeMutableBufferPointer { tok in
            for r in 0 ..< responses {
                let first = (r / g) * g, base = b.offsets[r], len = lengths[r]
                var t = 0
                if r > first {
                    let parent = first + Int(rng.next() % UInt64(r - first))
                    let pBase = b.offsets[parent], pLen = lengths[parent]
                    let branch = Int(rng.next() % UInt64(Swift.min(pLen, len) + 1))
                    while t < branch { tok[base + t] = tok[pBase + t]; t += 1 }
                    if t < len && t < pLen {
                        var x = fresh(&rng)
                        if x == tok[pBase + t] { x = x == 31999 ? 2 : x + 1 }
                        tok[base + t] = x; t += 1
                    }
                }
                while t < len { tok[base + t] = fresh(&rng); t += 1 }
            }
        }
        var tokenReward = [Double](repeating: 0, count: b.tokenCount)
        for r in 0 ..< responses where rng.uniform() < 0.5 { tokenReward[b.offsets[r + 1] - 1] = 1 }
        b.tokenReward = tokenReward
        return b
    }
}
