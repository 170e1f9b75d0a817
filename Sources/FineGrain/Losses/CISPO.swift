import Foundation

/// CISPO: clipped, stop-gradient importance-sampling weight times the REINFORCE term.
///
/// Paper: "MiniMax-M1: Scaling Test-Time Compute Efficiently with Lightning Attention" (MiniMax, 2025,
/// arXiv 2506.13585).
///
/// Formula (verl `compute_policy_loss_cispo`): `ρ = exp(clamp(lp − old, ±20))`,
/// `ℓ = −sg(clamp(ρ, 1−ε_low, 1+ε_high))·A·lp`, times `rollout_is_weights`, then `agg_loss`.
/// Gradient `−clamp(ρ)·A` (every token keeps a gradient). Metrics: `pg_clipfrac = masked_mean(ρ ≠ clamp(ρ))`,
/// `ppo_kl = masked_mean(−clamped log-ratio)`, `pg_clipfrac_lower = 0`.
enum CISPO {
    static let info = MethodInfo(
        name: "cispo", kind: .policyLoss,
        summary: "CISPO: clip the (stop-gradient) IS weight, not the update",
        paper: Citation("MiniMax-M1: Scaling Test-Time Compute Efficiently with Lightning Attention", 2025, arxiv: "2506.13585"),
        formula: "ρ=exp(clamp(lp−old,±20)); ℓ=−sg(clip(ρ,1−ε_low,1+ε_high))·A·lp; loss=agg(ℓ·w_IS)",
        params: ClipRange.specs + Aggregation.specs(defaultMode: .tokenMean),
        requires: ["logprobs", "old_logprobs", "advantages"])

    static func compute(_ input: LossInput, _ p: Params) throws -> LossOutput {
        let cols = try PolicyColumns(input, method: p.method)
        let clip = try ClipRange(p)
        let agg = try Aggregation.from(p)
        let lo = 1 - clip.low, hi = 1 + clip.high
        let r = LossKernel.elementwise(cols, input, agg) { lp, old, a, _, _ in
            let (d, _) = clampedLogRatio(lp - old)
            let rho = Foundation.exp(d)
            let rc = Swift.min(Swift.max(rho, lo), hi)
            return TokenTerm(-rc * a * lp, -rc * a, Double(rho != rc), -d)
        }
        return LossOutput(value: r.value, metrics: ["pg_clipfrac": r.metrics.0, "ppo_kl": r.metrics.1, "pg_clipfrac_lower": 0],
                          gradient: r.gradient)
    }
}
