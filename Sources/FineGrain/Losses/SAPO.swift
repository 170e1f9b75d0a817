import Foundation

/// SAPO: a smooth sigmoid gate on the token ratio replaces the hard clip.
///
/// Paper: "Soft Adaptive Policy Optimization" (Gao et al., Qwen team, 2025, arXiv 2511.20347).
///
/// Formula (verl `compute_policy_loss_sapo`): `ρ = exp(clamp(lp − old, ±20))`, `τ = A > 0 ? τ_pos : τ_neg`,
/// `ℓ = −A·σ(τ(ρ − 1))·4/τ`, times `rollout_is_weights`; **always** aggregated with `seq-mean-token-mean`
/// whatever `loss_agg_mode` says (as verl). Gradient `∂ℓ/∂lp = −A·4σ(1−σ)·ρ` inside the ±20 clamp.
/// Metrics: `ppo_kl = masked_mean(−clamped log-ratio)`, `pg_clipfrac = pg_clipfrac_lower = 0`.
enum SAPO {
    static let info = MethodInfo(
        name: "sapo", kind: .policyLoss,
        summary: "SAPO: sigmoid-gated token ratio with separate temperatures for positive/negative advantages",
        paper: Citation("Soft Adaptive Policy Optimization", 2025, arxiv: "2511.20347"),
        formula: "ρ=exp(clamp(lp−old,±20)); τ=A>0?τ_pos:τ_neg; ℓ=−A·σ(τ(ρ−1))·4/τ; loss=seq-mean-token-mean(ℓ·w_IS)",
        params: [.number("tau_pos", 1.0, "gate temperature where A > 0 (> 0)"),
                 .number("tau_neg", 1.05, "gate temperature where A <= 0 (> 0)")]
            + Aggregation.specs(defaultMode: .seqMeanTokenMean),
        requires: ["logprobs", "old_logprobs", "advantages"])

    static func compute(_ input: LossInput, _ p: Params) throws -> LossOutput {
        let cols = try PolicyColumns(input, method: p.method)
        let tp = try p.double("tau_pos"), tn = try p.double("tau_neg")
        try p.require("tau_pos", tp > 0 && tp.isFinite, "must be positive, got \(tp)")
        try p.require("tau_neg", tn > 0 && tn.isFinite, "must be positive, got \(tn)")
        let agg = try Aggregation.from(p, forcedMode: .seqMeanTokenMean)
        let r = LossKernel.elementwise(cols, input, agg) { lp, old, a, _, _ in
            let (d, pass) = clampedLogRatio(lp - old)
            let rho = Foundation.exp(d)
            let tau = a > 0 ? tp : tn
            let sig = 1 / (1 + Foundation.exp(-tau * (rho - 1)))
            let gate = sig * (4 / tau)
            return TokenTerm(-gate * a, -a * 4 * sig * (1 - sig) * rho * pass, -d)
        }
        return LossOutput(value: r.value, metrics: ["pg_clipfrac": 0, "ppo_kl": r.metrics.0, "pg_clipfrac_lower": 0],
                          gradient: r.gradient)
    }
}
