/// GPG: plain policy gradient without ratio or clipping.
///
/// Paper: "GPG: A Simple and Strong Reinforcement Learning Baseline for Model Reasoning" (Chu et al., 2025,
/// arXiv 2504.02546).
///
/// Formula (verl `compute_policy_loss_gpg`): `ℓ = −lp·A`, times `rollout_is_weights`, then `agg_loss`.
/// Gradient `∂ℓ/∂lp = −A`. No metrics. `old_logprobs` is not read.
enum GPGLoss {
    static let info = MethodInfo(
        name: "gpg", kind: .policyLoss,
        summary: "GPG: −logπ·A with no ratio and no clipping",
        paper: Citation("GPG: A Simple and Strong Reinforcement Learning Baseline for Model Reasoning", 2025, arxiv: "2504.02546"),
        formula: "ℓ = −lp·A; loss = agg(ℓ·w_IS)",
        params: Aggregation.specs(defaultMode: .tokenMean),
        requires: ["logprobs", "advantages"])

    static func compute(_ input: LossInput, _ p: Params) throws -> LossOutput {
        let cols = try PolicyColumns(input, method: p.method, needsOld: false)
        let agg = try Aggregation.from(p)
        let r = LossKernel.elementwise(cols, input, agg) { lp, _, a, _, _ in TokenTerm(-lp * a, -a) }
        return LossOutput(value: r.value, metrics: [:], gradient: r.gradient)
    }
}
