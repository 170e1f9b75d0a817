// REINFORCE++ (discounted return-to-go, batch-whitened) and REINFORCE++-baseline (group-mean-centred
// outcome tiled over tokens, batch-whitened). Both whiten with verl's `masked_whiten` over the whole batch
// and need at least 2 valid tokens.

/// REINFORCE++ advantages, verl's `compute_reinforce_plus_plus_outcome_advantage` (verl 0.9.1 semantics).
///
/// Paper: Hu, "REINFORCE++: A Simple and Efficient Approach for Aligning Large Language Models" (2025,
/// arXiv 2501.03262).
///
/// Formula, a backward scan per response with `G = 0`:
///
///     if m_t == 1 { G = r_t + gamma * G }     // mask-0 (holes, padding): G carried unchanged, not discounted
///     returns_t = G * m_t
///     advantages = masked_whiten(returns, m) * m   // batch-global
///
/// so tokens before a tool-output run still see the rewards after it (verl 0.9.1, the golden files).
/// `reset_at_holes = true` reproduces older verl (commit b178a3cd, the spec §1.4 reference): `G = r_t + gamma * G; returns_t = G;
/// if m_t == 0 { G = 0 }`, i.e. the return restarts at every mask-0 position and holes keep their (non-zero)
/// return. Right-padded batches without holes give the same advantages either way.
public enum ReinforcePlusPlus {
    public static let info = MethodInfo(
        name: "reinforce_plus_plus", kind: .estimator,
        summary: "Discounted reward-to-go, whitened over the batch (critic-free)",
        paper: Citation("REINFORCE++: A Simple and Efficient Approach for Aligning Large Language Models", 2025, arxiv: "2501.03262"),
        formula: "G = r_t + gamma*G at mask-1 tokens, carried through mask-0 ones (reset_at_holes: restart after each mask-0 position, older verl); returns = G * m; A = masked_whiten(returns) * m",
        params: [
            .number("gamma", 1.0, "discount factor (verl default 1.0)"),
            .bool("reset_at_holes", false, "restart the running return after every mask-0 position (older verl, b178a3cd); default false carries it through holes (verl 0.9.1)"),
        ],
        requires: ["reward"])

    public static let estimator = AdvantageEstimator(info: info, compute: compute)

    public static func compute(_ batch: RolloutBatch, _ params: Params) throws -> AdvantageOutput {
        let gamma = try params.double("gamma"), reset = try params.bool("reset_at_holes")
        let n = batch.tokenCount, rows = batch.count
        var ret = overwrittenDoubles(n)   // [N], every position written by the scan
        let chunks = CreditKernels.rowChunks(rows: rows, tokens: n)
        var part = [Double](repeating: 0, count: chunks), cnt = [Int](repeating: 0, count: chunks)   // [chunks]
        try CreditKernels.withRewards(batch, method: info.name) { rw in
            batch.mask.withUnsafeBufferPointer { mp in batch.offsets.withUnsafeBufferPointer { op in
                ret.withUnsafeMutableBufferPointer { rb in part.withUnsafeMutableBufferPointer { pb in cnt.withUnsafeMutableBufferPointer { cb in
                    let m = SharedPointer(mp), off = SharedPointer(op), g = SharedMutablePointer(rb)
                    let ps = SharedMutablePointer(pb), cs = SharedMutablePointer(cb)
                    // The scan also sums the returns at mask-1 positions, saving whitening's first pass.
                    CreditKernels.forEachRowChunkIndexed(rows: rows, tokens: n) { c, rr in
                        guard let m = m.base, let off = off.base, let g = g.base else { return }
                        var sum = 0.0, count = 0
                        for r in rr {
                            let lo = off[r], oi = rw.outcomeIndex(r, offsets: off, mask: m)
                            var run = 0.0
                            var i = off[r &+ 1] &- 1
                            if reset {
                                while i >= lo {
                                    run = rw.at(i, row: r, outcomeIndex: oi) + gamma * run
                                    g[i] = run
                                    if m[i] == 0 { run = 0 } else { sum += run; count &+= 1 }
                                    i &-= 1
                                }
                            } else {
                                while i >= lo {
                                    if m[i] != 0 {
                                        run = rw.at(i, row: r, outcomeIndex: oi) + gamma * run
                                        g[i] = run
                                        sum += run; count &+= 1
                                    } else {
                                        g[i] = run * 0      // verl's `G * m`: keeps the sign of zero
                                    }
                                    i &-= 1
                                }
                            }
                        }
                        ps.base![c] = sum; cs.base![c] = count
                    }
                } } }
            } }
        }
        var sum = 0.0, count = 0
        for c in 0 ..< chunks { sum += part[c]; count &+= cnt[c] }
        let adv = try CreditKernels.whitened(ret, mask: batch.mask, zeroMasked: true, method: info.name, precomputed: (sum, count))
        return AdvantageOutput(advantages: adv, returns: ret)
    }
}

/// REINFORCE++-baseline advantages, verl's `compute_reinforce_plus_plus_baseline_outcome_advantage`.
///
/// Paper: "REINFORCE++: A Simple and Efficient Approach for Aligning Large Language Models" (2025,
/// arXiv 2501.03262).
///
/// Formula: `a_i = R_i - mean_g` (group of one: mean 0, no std), tiled to every mask-1 token of the
/// response, then `A = masked_whiten(a * m, m) * m` over the whole batch (longer responses weigh more in the
/// statistics). `returns == advantages`.
public enum ReinforcePlusPlusBaseline {
    public static let info = MethodInfo(
        name: "reinforce_plus_plus_baseline", kind: .estimator,
        summary: "Group-mean-centred outcome tiled over tokens, whitened over the batch",
        paper: Citation("REINFORCE++: A Simple and Efficient Approach for Aligning Large Language Models", 2025, arxiv: "2501.03262"),
        formula: "a_i = R_i - mean_g (singleton: mean 0); A = masked_whiten(a_i * m) * m",
        params: [], requires: ["reward"])

    public static let estimator = AdvantageEstimator(info: info) { batch, params in
        var s = try batch.scores(method: params.method)
        let mean = CreditKernels.groupMean(s, batch.groupIndex())
        for r in 0 ..< s.count { s[r] -= mean[batch.group[r]] }
        var adv = CreditKernels.broadcast(s, batch)
        try CreditKernels.whiten(&adv, mask: batch.mask, zeroMasked: true, method: params.method)
        return AdvantageOutput(advantages: adv, returns: adv)
    }
}
