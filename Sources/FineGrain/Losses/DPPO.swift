import Foundation

/// DPPO: a divergence-based trust-region mask with truncated importance sampling (Binary-TV and Binary-KL).
///
/// Paper: "Rethinking the Trust Region in LLM Reinforcement Learning" (Qi et al., 2026, arXiv 2602.04879).
///
/// Formula (verl `compute_policy_loss_dppo_tv` / `_dppo_kl`): `ρ = exp(clamp(lp − old, ±20))`,
/// `w = sg(min(ρ, c))` (`c = clip_ratio_c`, default 20), `p = e^lp`, `q = e^old`, and a stop-gradient validity
/// mask `v`:
/// * `dppo_tv`: `v = A > 0 ? (p − q <= δ_high) : (p − q >= −δ_low)`;
/// * `dppo_kl`: `D = q(old − lp) + (1−q)·log((1 − q + 1e-8)/(1 − p + 1e-8))`,
///   `v = A > 0 ? (D <= δ_high ∨ p <= q) : (D <= δ_low ∨ p >= q)`;
/// `ℓ = −A·w·lp·v`, times `rollout_is_weights`, then `agg_loss`. Here `δ_low/δ_high` are read from
/// `clip_ratio_low/high` (falling back to `clip_ratio`): divergence thresholds, not ratio ranges.
/// Gradient `−A·w·v`. Metrics: `pg_clipfrac = masked_mean(1 − v)`, `pg_clipfrac_lower = masked_mean((ρ > c)·v)`,
/// `ppo_kl = masked_mean(−clamped log-ratio)`.
enum DPPO {
    enum Divergence { case tv, kl }

    static func info(_ d: Divergence) -> MethodInfo {
        MethodInfo(
            name: d == .tv ? "dppo_tv" : "dppo_kl", kind: .policyLoss,
            summary: d == .tv ? "DPPO-Binary-TV: probability-difference trust region + truncated IS"
                              : "DPPO-Binary-KL: binary-KL trust region + truncated IS",
            paper: Citation("Rethinking the Trust Region in LLM Reinforcement Learning", 2026, arxiv: "2602.04879"),
            formula: d == .tv ? "v = A>0 ? p−q<=δ_high : p−q>=−δ_low; ℓ = −A·sg(min(ρ,c))·lp·v; loss=agg(ℓ·w_IS)"
                              : "D=q(old−lp)+(1−q)log((1−q+1e-8)/(1−p+1e-8)); v = A>0 ? D<=δ_high∨p<=q : D<=δ_low∨p>=q; ℓ = −A·sg(min(ρ,c))·lp·v",
            params: ClipRange.specs + [.number("clip_ratio_c", 20.0, "truncation c of the importance weight min(ρ, c)")]
                + Aggregation.specs(defaultMode: .tokenMean),
            requires: ["logprobs", "old_logprobs", "advantages"])
    }

    static func compute(_ d: Divergence, _ input: LossInput, _ p: Params) throws -> LossOutput {
        let cols = try PolicyColumns(input, method: p.method)
        let clip = try ClipRange(p)
        let c = p.optionalDouble("clip_ratio_c") ?? 20.0
        try p.require("clip_ratio_c", c > 0, "must be positive, got \(c)")
        let agg = try Aggregation.from(p)
        let dl = clip.low, dh = clip.high
        let r = LossKernel.elementwise(cols, input, agg) { lp, old, a, _, _ in
            let (x, _) = clampedLogRatio(lp - old)
            let rho = Foundation.exp(x)
            let w = Swift.min(rho, c)
            let pr = Foundation.exp(lp), q = Foundation.exp(old)
            let valid: Bool
            switch d {
            case .tv:
                valid = a > 0 ? (pr - q <= dh) : (pr - q >= -dl)
            case .kl:
                let bkl = q * (old - lp) + (1 - q) * Foundation.log((1.0 - q + 1e-8) / (1.0 - pr + 1e-8))
                valid = a > 0 ? (bkl <= dh || pr <= q) : (bkl <= dl || pr >= q)
            }
            let v = Double(valid)
            return TokenTerm(-a * w * lp * v, -a * w * v, 1 - v, -x, Double(rho > c) * v)
        }
        return LossOutput(value: r.value,
                          metrics: ["pg_clipfrac": r.metrics.0, "ppo_kl": r.metrics.1, "pg_clipfrac_lower": r.metrics.2],
                          gradient: r.gradient)
    }
}
