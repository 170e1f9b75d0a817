import Foundation

/// GSPO, sequence-level importance ratio in its "GSPO-token" form.
///
/// Paper: "Group Sequence Policy Optimization" (Zheng et al., Qwen team, 2025, arXiv 2507.18071).
///
/// Formula (verl `compute_policy_loss_gspo`): `s̄_i = Σ_t m(lp − old) / max(n_i, 1)`;
/// token log-ratio `λ_t = sg(s̄_i) + lp_t − sg(lp_t)`, `s_t = exp(min(λ_t, 10))` (value `e^{s̄_i}`, derivative
/// `s_t` w.r.t. `lp_t`); `ℓ = max(−A s, −A·clamp(s, 1−ε_low, 1+ε_high))` (no dual clip), times
/// `rollout_is_weights`, aggregated with the configured `loss_agg_mode` (verl 0.9.1 behaviour, checked against
/// the golden files). Metrics: `pg_clipfrac = masked_mean(ℓ2 > ℓ1)`, `ppo_kl = masked_mean(old − lp)`
/// (unclamped), `pg_clipfrac_lower = 0`.
/// Gradient: `−A·s` on the unclipped branch while `s̄_i <= 10`, else 0.
enum GSPO {
    static let info = MethodInfo(
        name: "gspo", kind: .policyLoss,
        summary: "GSPO: PPO clipping on the length-normalised sequence ratio, gradient per token",
        paper: Citation("Group Sequence Policy Optimization", 2025, arxiv: "2507.18071"),
        formula: "s̄_i=mean_t(lp−old); s=exp(min(sg(s̄_i)+lp−sg(lp),10)); ℓ=max(−As, −A·clip(s,1−ε_low,1+ε_high)); loss=agg(ℓ·w_IS)",
        params: ClipRange.specs + Aggregation.specs(defaultMode: .seqMeanTokenMean),
        requires: ["logprobs", "old_logprobs", "advantages"])

    static func compute(_ input: LossInput, _ p: Params) throws -> LossOutput {
        let cols = try PolicyColumns(input, method: p.method)
        let clip = try ClipRange(p)
        let agg = try Aggregation.from(p)
        let lo = 1 - clip.low, hi = 1 + clip.high
        // Per-response mean log-ratio (a stop-gradient constant).
        var sbar = [Double](repeating: 0, count: input.count)
        cols.logprob.withUnsafeBufferPointer { lp in cols.old!.withUnsafeBufferPointer { op in input.mask.withUnsafeBufferPointer { mp in
            for i in 0 ..< input.count {
                var s = 0.0, n = 0
                for t in input.offsets[i] ..< input.offsets[i + 1] where mp[t] != 0 { s += lp[t] - op[t]; n &+= 1 }
                sbar[i] = s / Double(Swift.max(n, 1))
            }
        } } }
        let r = sbar.withUnsafeBufferPointer { sb in
            LossKernel.elementwise(cols, input, agg) { lp, old, a, _, i in
                let lam = sb[i]
                let pass = lam <= 10 ? 1.0 : 0.0
                let s = Foundation.exp(Swift.min(lam, 10))
                let l1 = -a * s
                let l2 = -a * Swift.min(Swift.max(s, lo), hi)
                let clipped = l2 > l1
                return TokenTerm(clipped ? l2 : l1, clipped ? 0 : l1 * pass, Double(clipped), old - lp)
            }
        }
        return LossOutput(value: r.value,
                          metrics: ["pg_clipfrac": r.metrics.0, "ppo_kl": r.metrics.1, "pg_clipfrac_lower": 0],
                          gradient: r.gradient)
    }
}
