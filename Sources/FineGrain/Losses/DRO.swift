/// DRO (Direct Reward Optimisation) policy loss: quadratic proximal penalty instead of clipping.
///
/// Paper: "Offline Regularised Reinforcement Learning for Large Language Models Alignment" (Richemond et al.,
/// 2024, arXiv 2405.19107), as adopted by verl's `dro` loss.
///
/// Formula: `ℓ = −(lp·A − ½β(lp − old)²)`, times `rollout_is_weights`, then `agg_loss`.
/// Gradient `∂ℓ/∂lp = −A + β(lp − old)`. Metric `ppo_kl = masked_mean(old − lp)`. `dro_beta` must be > 0.
enum DRO {
    static let info = MethodInfo(
        name: "dro", kind: .policyLoss,
        summary: "DRO: −(lp·A − β/2 (lp−old)²), a quadratic trust region",
        paper: Citation("Offline Regularised Reinforcement Learning for Large Language Models Alignment", 2024, arxiv: "2405.19107"),
        formula: "ℓ = −(lp·A − 0.5·β·(lp−old)²); loss = agg(ℓ·w_IS)",
        params: [.number("dro_beta", 0.1, "quadratic penalty strength β (> 0)")] + Aggregation.specs(defaultMode: .tokenMean),
        requires: ["logprobs", "old_logprobs", "advantages"])

    static func compute(_ input: LossInput, _ p: Params) throws -> LossOutput {
        let cols = try PolicyColumns(input, method: p.method)
        let beta = try p.double("dro_beta")
        try p.require("dro_beta", beta > 0 && beta.isFinite, "must be positive, got \(beta)")
        let agg = try Aggregation.from(p)
        let r = LossKernel.elementwise(cols, input, agg) { lp, old, a, _, _ in
            let d = lp - old
            return TokenTerm(-(lp * a - 0.5 * beta * d * d), -a + beta * d, -d)
        }
        return LossOutput(value: r.value, metrics: ["ppo_kl": r.metrics.0], gradient: r.gradient)
    }
}
