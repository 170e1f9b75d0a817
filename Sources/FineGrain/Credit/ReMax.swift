/// ReMax advantages, verl's `compute_remax_outcome_advantage`.
///
/// Paper: Li et al., "ReMax: A Simple, Effective, and Efficient Reinforcement Learning Method for Aligning
/// Large Language Models" (2023, arXiv 2310.10505).
///
/// Formula: `G_t = sum_{t' >= t} r_{t'} * m_{t'}` (undiscounted reverse cumulative sum of masked rewards),
/// `A_t = G_t - b_i * m_t`, where `b_i` is the reward of the greedy (`do_sample = false`) response to the same
/// prompt, given per response in the batch's `reward_baseline` column (JSONL field `reward_baseline`, verl's
/// `reward_baselines`). No normalisation; `returns = G`. As in verl, interior mask-0 positions keep the
/// (non-zero) return-to-go in both outputs: multiply by the mask before use.
public enum ReMax {
    public static let info = MethodInfo(
        name: "remax", kind: .estimator,
        summary: "Return-to-go minus the greedy-response reward baseline",
        paper: Citation("ReMax: A Simple, Effective, and Efficient Reinforcement Learning Method for Aligning Large Language Models", 2023, arxiv: "2310.10505"),
        formula: "G_t = sum_{t'>=t} r_t' * m_t'; A_t = G_t - b_i * m_t; returns = G",
        params: [], requires: ["reward", "reward_baseline"])

    public static let estimator = AdvantageEstimator(info: info, compute: compute)

    public static func compute(_ batch: RolloutBatch, _ params: Params) throws -> AdvantageOutput {
        let base = try batch.require(batch.rewardBaseline, "reward_baseline", method: info.name)
        let n = batch.tokenCount
        var ret = [Double](repeating: 0, count: n), adv = ret
        try CreditKernels.withRewards(batch, method: info.name) { rw in
            base.withUnsafeBufferPointer { bp in batch.mask.withUnsafeBufferPointer { mp in
                batch.offsets.withUnsafeBufferPointer { op in
                    ret.withUnsafeMutableBufferPointer { rb in adv.withUnsafeMutableBufferPointer { ab in
                        let b = SharedPointer(bp), m = SharedPointer(mp), off = SharedPointer(op)
                        let g = SharedMutablePointer(rb), a = SharedMutablePointer(ab)
                        CreditKernels.forEachRowChunk(rows: batch.count, tokens: n) { rr in
                            guard let b = b.base, let m = m.base, let off = off.base, let g = g.base, let a = a.base else { return }
                            for r in rr {
                                let lo = off[r], oi = rw.outcomeIndex(r, offsets: off, mask: m), br = b[r]
                                var run = 0.0
                                var i = off[r &+ 1] &- 1
                                while i >= lo {
                                    if m[i] != 0 { run += rw.at(i, row: r, outcomeIndex: oi) }
                                    g[i] = run
                                    a[i] = m[i] != 0 ? run - br : run
                                    i &-= 1
                                }
                            }
                        }
                    } }
                }
            } }
        }
        return AdvantageOutput(advantages: adv, returns: ret)
    }
}
