/// Generalized Advantage Estimation with a critic, verl's `compute_gae_advantage_return`.
///
/// Paper: Schulman et al., "High-Dimensional Continuous Control Using Generalized Advantage Estimation"
/// (2015, arXiv 1506.02438); used by PPO, "Proximal Policy Optimization Algorithms" (2017, arXiv 1707.06347).
///
/// Formula, a backward scan per response with `nextV = 0`, `lastA = 0`:
///
///     delta_t = r_t + gamma * nextV - V_t
///     cand_t  = delta_t + gamma * lam * lastA
///     if m_t == 1 { nextV = V_t; lastA = cand_t }      // mask-0 (holes, padding): both carried unchanged
///     A_t = lastA
///     returns = A + V                                  // raw, before whitening (critic target)
///     advantages = masked_whiten(A, m)                 // batch-global, every position, not zeroed
///
/// Holes are skipped: the last valid token before a tool-output run bootstraps from the value of the next
/// valid token. Neither output is zeroed at mask-0 positions (verl does not either); multiply by the mask
/// before use. verl's defaults `gamma = lam = 1.0`. Needs at least 2 valid tokens in the batch (whitening).
/// Rows are scanned in parallel for large batches; whitening is two batch-global passes.
public enum GAE {
    public static let info = MethodInfo(
        name: "gae", kind: .estimator,
        summary: "Generalized Advantage Estimation with a value baseline (PPO); holes carried, batch-whitened",
        paper: Citation("High-Dimensional Continuous Control Using Generalized Advantage Estimation", 2015, arxiv: "1506.02438"),
        formula: "delta_t = r_t + gamma*V_next - V_t; A_t = delta_t + gamma*lam*A_next (mask-0: carry V_next, A_next); returns = A + V; advantages = masked_whiten(A)",
        params: [
            .number("gamma", 1.0, "discount factor (verl default 1.0)"),
            .number("lam", 1.0, "GAE lambda (verl default 1.0)"),
        ],
        requires: ["reward", "values"])

    public static let estimator = AdvantageEstimator(info: info, compute: compute)

    public static func compute(_ batch: RolloutBatch, _ params: Params) throws -> AdvantageOutput {
        let gamma = try params.double("gamma"), lam = try params.double("lam")
        let values = try batch.require(batch.value, "values", method: info.name)
        var (adv, ret, stats) = try CreditKernels.withRewards(batch, method: info.name) { rw in
            scanWithStats(offsets: batch.offsets, mask: batch.mask, values: values, rewards: rw, gamma: gamma, lam: lam)
        }
        // The scan already summed the masked advantages: whitening needs only its variance and apply passes.
        try CreditKernels.whiten(&adv, mask: batch.mask, zeroMasked: false, method: info.name, precomputed: stats)
        return AdvantageOutput(advantages: adv, returns: ret)
    }

    /// The GAE backward scan alone (no whitening), row-parallel over contiguous buffers: `advantages` `[N]`
    /// and `returns = A + V` `[N]`, both left unzeroed at mask-0 positions (see the type's doc comment).
    /// Shared by estimators that build their own token rewards (segment RM, Fine-Grained RLHF, RTO).
    static func scan(offsets: [Int], mask: [UInt8], values: [Double], rewards rw: CreditKernels.Rewards,
                     gamma: Double, lam: Double) -> (advantages: [Double], returns: [Double]) {
        let (a, g, _) = scanWithStats(offsets: offsets, mask: mask, values: values, rewards: rw, gamma: gamma, lam: lam)
        return (a, g)
    }

    /// `scan` plus the masked sum and count of the advantages, accumulated per row chunk in fixed order.
    static func scanWithStats(offsets: [Int], mask: [UInt8], values: [Double], rewards rw: CreditKernels.Rewards,
                              gamma: Double, lam: Double) -> (advantages: [Double], returns: [Double], stats: (sum: Double, count: Int)) {
        let n = offsets.last ?? 0, rows = offsets.count - 1
        var adv = overwrittenDoubles(n)   // [N], every position written by the scan
        var ret = overwrittenDoubles(n)   // [N]
        let chunks = CreditKernels.rowChunks(rows: rows, tokens: n)
        var part = [Double](repeating: 0, count: chunks), cnt = [Int](repeating: 0, count: chunks)   // [chunks]
        let gl = gamma * lam
        values.withUnsafeBufferPointer { vp in mask.withUnsafeBufferPointer { mp in
            offsets.withUnsafeBufferPointer { op in
                adv.withUnsafeMutableBufferPointer { ab in ret.withUnsafeMutableBufferPointer { rb in
                    part.withUnsafeMutableBufferPointer { pb in cnt.withUnsafeMutableBufferPointer { cb in
                        let v = SharedPointer(vp), m = SharedPointer(mp), off = SharedPointer(op)
                        let a = SharedMutablePointer(ab), g = SharedMutablePointer(rb)
                        let ps = SharedMutablePointer(pb), cs = SharedMutablePointer(cb)
                        CreditKernels.forEachRowChunkIndexed(rows: rows, tokens: n) { c, rr in
                            guard let v = v.base, let m = m.base, let off = off.base,
                                  let a = a.base, let g = g.base else { return }
                            var sum = 0.0, count = 0
                            for r in rr {
                                let lo = off[r], hi = off[r &+ 1]
                                let oi = rw.outcomeIndex(r, offsets: off, mask: m)
                                var nextV = 0.0, lastA = 0.0
                                var i = hi &- 1
                                while i >= lo {
                                    let vi = v[i]
                                    if m[i] != 0 {
                                        let delta = rw.at(i, row: r, outcomeIndex: oi) + gamma * nextV - vi
                                        lastA = delta + gl * lastA
                                        nextV = vi
                                        sum += lastA; count &+= 1
                                    }
                                    a[i] = lastA
                                    g[i] = lastA + vi
                                    i &-= 1
                                }
                            }
                            ps.base![c] = sum; cs.base![c] = count
                        }
                    } }
                } }
            }
        } }
        var sum = 0.0, count = 0
        for c in 0 ..< chunks { sum += part[c]; count &+= cnt[c] }
        return (adv, ret, (sum, count))
    }
}
