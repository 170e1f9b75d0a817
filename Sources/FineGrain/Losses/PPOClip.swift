import Foundation

/// PPO clipped surrogate ("vanilla", alias `ppo_clip`) with asymmetric clip ranges and dual clip.
///
/// Papers: PPO — "Proximal Policy Optimization Algorithms" (Schulman et al., 2017, arXiv 1707.06347);
/// dual clip — "Mastering Complex Control in MOBA Games with Deep Reinforcement Learning" (Ye et al., 2020,
/// arXiv 1912.09729); asymmetric "clip-higher" — "DAPO: An Open-Source LLM Reinforcement Learning System at
/// Scale" (Yu et al., 2025, arXiv 2503.14476).
///
/// Formula (verl `compute_policy_loss_vanilla`), per valid token:
/// `d = clamp(lp − old, −20, 20)`, `ρ = e^d`, `ℓ1 = −Aρ`, `ℓ2 = −A·clamp(ρ, 1−ε_low, 1+ε_high)`,
/// `ℓc = max(ℓ1, ℓ2)`, `ℓ = A < 0 ? min(ℓc, −A·c) : ℓc`, times `rollout_is_weights`, then `agg_loss`.
/// Metrics: `pg_clipfrac = masked_mean(ℓ2 > ℓ1)`, `ppo_kl = masked_mean(−d)`,
/// `pg_clipfrac_lower = masked_mean(ℓc > −A·c ∧ A < 0)`.
///
/// Gradient (autograd semantics): `∂ℓ/∂lp = −Aρ` on the unclipped branch inside the ±20 clamp, 0 when
/// `ℓ2 > ℓ1` (clipped) or the dual clip is active. Ties: where `ℓ1 == ℓ2` (ρ inside the range) both branches
/// have the same derivative, so the unclipped gradient is used; an exact dual-clip tie `ℓc == −A·c` gets half
/// the gradient (torch's `min` splits it), as in the golden files. `clip_ratio_c` must be > 1.
enum PPOClip {
    static func info(_ name: String) -> MethodInfo {
        MethodInfo(
            name: name, kind: .policyLoss,
            summary: "PPO clipped surrogate with asymmetric (clip-higher) ranges and dual clip" + (name == "vanilla" ? "" : " (alias of vanilla)"),
            paper: Citation("Proximal Policy Optimization Algorithms", 2017, arxiv: "1707.06347"),
            formula: "ρ=exp(clamp(lp−old,±20)); ℓ=max(−Aρ, −A·clip(ρ,1−ε_low,1+ε_high)); A<0: ℓ=min(ℓ, −A·c); loss=agg(ℓ·w_IS)",
            params: ClipRange.specs + [.number("clip_ratio_c", 3.0, "dual-clip constant c (> 1), Ye et al. 2020")]
                + Aggregation.specs(defaultMode: .tokenMean),
            requires: ["logprobs", "old_logprobs", "advantages"])
    }

    static func compute(_ input: LossInput, _ p: Params) throws -> LossOutput {
        let cols = try PolicyColumns(input, method: p.method)
        let clip = try ClipRange(p)
        let c = p.optionalDouble("clip_ratio_c") ?? 3.0
        try p.require("clip_ratio_c", c > 1.0,
                      "the lower bound of the clip_ratio_c for dual-clip PPO should be greater than 1.0, got \(c)")
        let agg = try Aggregation.from(p)
        let lo = 1 - clip.low, hi = 1 + clip.high
        let r = LossKernel.elementwise(cols, input, agg) { lp, old, a, _, _ in
            let (d, pass) = clampedLogRatio(lp - old)
            let rho = d.exp
            let l1 = -a * rho
            let l2 = -a * Swift.min(Swift.max(rho, lo), hi)
            let clipped = l2 > l1
            let lc = clipped ? l2 : l1
            var g = clipped ? 0 : l1 * pass   // −Aρ · dd/dx
            var loss = lc, lower = 0.0
            if a < 0 {
                let l3 = -a * c
                if lc > l3 { loss = l3; g = 0; lower = 1 } else if lc == l3 { g *= 0.5 }
            }
            return TokenTerm(loss, g, Double(clipped), -d, lower)
        }
        return LossOutput(value: r.value,
                          metrics: ["pg_clipfrac": r.metrics.0, "ppo_kl": r.metrics.1, "pg_clipfrac_lower": r.metrics.2],
                          gradient: r.gradient)
    }
}

extension Double {
    @inline(__always) var exp: Double { Foundation.exp(self) }
}
