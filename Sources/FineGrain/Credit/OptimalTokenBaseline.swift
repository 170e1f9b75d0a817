import Numerics

// Optimal Token Baseline: a per-position baseline shared by the responses of a group, weighted by each
// response's cumulative path-variance proxy. verl registers a single-turn version (positions aligned by
// their index in the padded row) and a tool-integrated multi-turn version (each response's valid tokens
// packed to the left before the group statistics, so the k-th policy token is compared with the k-th).

/// Optimal Token Baseline advantages, verl's `compute_optimal_token_baseline_advantage`.
///
/// Paper: Li et al., "The Optimal Token Baseline: Variance Reduction for Long-Horizon LLM-RL" (2026).
///
/// Formula, with `G_t = sum_{t' >= t} r_t' m_t'` (reverse cumsum of masked rewards) and the proxy
/// `w_t = (1 - 2 exp(old_logprob_t) + sum_pi_squared_t) * rho_t^2` (`rho` = `rollout_is_weights`, 1 if absent),
/// `W_t = sum_{j <= t} w_j m_j`:
///
///     B_t = sum_{i in g} G_{i,t} W_{i,t} m_{i,t} / (sum_{i in g} W_{i,t} m_{i,t} + epsilon)   (t = position in row)
///     A_t = (G_t - B_t) * m_t;   returns = G   (non-zero at interior mask-0 positions, as in verl)
///
/// A group of one has `B = 0`. With `handle_zero_tail`, if one response of the group is strictly the longest
/// (by valid-token count), its baseline is 0 from position `second-longest count` on.
public enum OptimalTokenBaseline {
    public static let info = MethodInfo(
        name: "optimal_token_baseline", kind: .estimator,
        summary: "Per-position group baseline weighted by the cumulative logit-gradient-norm proxy",
        paper: Citation("The Optimal Token Baseline: Variance Reduction for Long-Horizon LLM-RL", 2026),
        formula: "W_t = cumsum((1 - 2 pi_t + sum pi^2) * rho_t^2 * m_t); B_t = sum_g G_t W_t m_t / (sum_g W_t m_t + eps); A = (G - B) * m; returns = G",
        params: [
            .bool("handle_zero_tail", false, "zero the baseline on the unique longest response past the second-longest length"),
            .number("epsilon", 1e-8, "added to the baseline denominator"),
        ],
        requires: ["reward", "old_logprobs", "sum_pi_squared"])

    public static let estimator = AdvantageEstimator(info: info) { batch, params in
        try OTBKernel.run(batch, params, packed: false)
    }
}

/// Multi-turn (tool-integrated reasoning) Optimal Token Baseline, verl's
/// `compute_multi_turn_optimal_token_baseline_advantage`.
///
/// Paper: "The Optimal Token Baseline: Variance Reduction for Long-Horizon LLM-RL" (2026).
///
/// Formula: as `optimal_token_baseline`, but every response's valid (mask-1) tokens are packed to the left
/// first, so `B_k` is taken over the k-th valid token of each member; empty responses are left out of their
/// group (and get 0). The advantage is scattered back to the valid positions, 0 elsewhere; `returns = G`.
/// verl's default here is `handle_zero_tail = true`.
public enum TIROptimalTokenBaseline {
    public static let info = MethodInfo(
        name: "tir_optimal_token_baseline", kind: .estimator,
        summary: "Optimal Token Baseline over each response's valid tokens packed left (multi-turn / tool use)",
        paper: Citation("The Optimal Token Baseline: Variance Reduction for Long-Horizon LLM-RL", 2026),
        formula: "pack valid tokens; B_k = sum_g G_k W_k / (sum_g W_k + eps) over the k-th valid token; A = G - B at valid tokens, 0 elsewhere; returns = G",
        params: [
            .bool("handle_zero_tail", true, "zero the baseline on the unique longest response past the second-longest length"),
            .number("epsilon", 1e-8, "added to the baseline denominator"),
        ],
        requires: ["reward", "old_logprobs", "sum_pi_squared"])

    public static let estimator = AdvantageEstimator(info: info) { batch, params in
        try OTBKernel.run(batch, params, packed: true)
    }
}

enum OTBKernel {
    static func run(_ batch: RolloutBatch, _ params: Params, packed: Bool) throws -> AdvantageOutput {
        let method = params.method
        let zeroTail = try params.bool("handle_zero_tail"), eps = try params.double("epsilon")
        let olp = try batch.require(batch.oldLogprob, "old_logprobs", method: method)
        let spp = try batch.extra("sum_pi_squared", method: method)
        let isw = batch.extraTokenColumns["rollout_is_weights"]
        let n = batch.tokenCount, rows = batch.count
        var ret = [Double](repeating: 0, count: n)
        var adv = [Double](repeating: 0, count: n)   // holds W until overwritten by the advantage
        var lengths = [Int](repeating: 0, count: rows)

        // Pass 1, per row: G (reverse cumsum of masked rewards) and W (forward cumsum of masked w).
        try CreditKernels.withRewards(batch, method: method) { rw in
            olp.withUnsafeBufferPointer { lp in spp.withUnsafeBufferPointer { sp in (isw ?? []).withUnsafeBufferPointer { ip in
                batch.mask.withUnsafeBufferPointer { m in batch.offsets.withUnsafeBufferPointer { off in
                    ret.withUnsafeMutableBufferPointer { g in adv.withUnsafeMutableBufferPointer { w in
                        let rho = isw == nil ? nil : ip.baseAddress
                        for r in 0 ..< rows {
                            let lo = off[r], hi = off[r + 1]
                            let oi = rw.outcomeIndex(r, offsets: off.baseAddress!, mask: m.baseAddress!)
                            var run = 0.0
                            var i = hi &- 1
                            while i >= lo {
                                if m[i] != 0 { run += rw.at(i, row: r, outcomeIndex: oi) }
                                g[i] = run
                                i &-= 1
                            }
                            var cum = 0.0, count = 0
                            for i in lo ..< hi {
                                if m[i] != 0 {
                                    var x = 1 - 2 * Double.exp(lp[i]) + sp[i]
                                    if let rho { x *= rho[i] * rho[i] }
                                    cum += x; count &+= 1
                                    w[i] = cum
                                } else {
                                    w[i] = 0
                                }
                            }
                            lengths[r] = count
                        }
                    } }
                } }
            } } }
        }

        // Pass 2, per group: the shared baseline over positions (or packed valid-token ranks), then A.
        // Scratch: the group's member list and one baseline row (O(group size + row length)).
        let gi = batch.groupIndex()
        var baseline = [Double](), den = [Double](), members = [Int]()
        ret.withUnsafeBufferPointer { g in adv.withUnsafeMutableBufferPointer { a in
            batch.mask.withUnsafeBufferPointer { m in batch.offsets.withUnsafeBufferPointer { off in
                for k in 0 ..< batch.groupCount {
                    members.removeAll(keepingCapacity: true)
                    for j in gi.start[k] ..< gi.start[k + 1] where !packed || lengths[gi.members[j]] > 0 {
                        members.append(gi.members[j])
                    }
                    var width = 0
                    for r in members { width = Swift.max(width, packed ? lengths[r] : off[r + 1] - off[r]) }
                    let shared = members.count > 1
                    if shared {
                        baseline.removeAll(keepingCapacity: true); baseline.append(contentsOf: repeatElement(0, count: width))
                        den.removeAll(keepingCapacity: true); den.append(contentsOf: repeatElement(0, count: width))
                        for r in members {   // a[i] still holds W here
                            var t = 0
                            for i in off[r] ..< off[r + 1] {
                                if m[i] != 0 { baseline[t] += g[i] * a[i]; den[t] += a[i]; t &+= 1 } else if !packed { t &+= 1 }
                            }
                        }
                        for t in 0 ..< width { baseline[t] /= den[t] + eps }
                    }
                    // handle_zero_tail: the unique longest member gets B = 0 from the second-longest length on.
                    var tailRow = -1, tailFrom = Int.max
                    if shared && zeroTail {
                        var top = -1, second = -1
                        for r in members {
                            let l = lengths[r]
                            if l > top { second = top; top = l; tailRow = r } else if l > second { second = l }
                        }
                        if top > second { tailFrom = second } else { tailRow = -1 }
                    }
                    for r in members {
                        var t = 0
                        let cut = r == tailRow ? tailFrom : Int.max
                        for i in off[r] ..< off[r + 1] {
                            if m[i] != 0 {
                                a[i] = g[i] - (shared && t < cut ? baseline[t] : 0)
                                t &+= 1
                            } else {
                                a[i] = 0
                                if !packed { t &+= 1 }
                            }
                        }
                    }
                }
            } }
        } }
        // Rows left out of every group (packed mode: empty rows) hold W = 0 already: A = 0 there.
        return AdvantageOutput(advantages: adv, returns: ret)
    }
}
