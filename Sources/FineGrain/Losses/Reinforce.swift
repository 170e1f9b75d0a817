/// REINFORCE policy gradient with optional rollout importance-sampling weights.
///
/// Paper: "Simple Statistical Gradient-Following Algorithms for Connectionist Reinforcement Learning"
/// (Williams, 1992).
///
/// Formula (verl `compute_policy_loss_reinforce`): `ℓ = −A·lp·w_IS` (w_IS constant, 1 if absent), then
/// `agg_loss` (default mode `seq-mean-token-sum`, as verl). Gradient `−A·w_IS`.
/// Metric: `ppo_kl = masked_mean(rollout_lp − lp)`; the rollout log-probs are read from `old_logprobs`.
enum Reinforce {
    static let info = MethodInfo(
        name: "reinforce", kind: .policyLoss,
        summary: "REINFORCE: −A·logπ·w_IS, no ratio, no clipping",
        paper: Citation("Simple Statistical Gradient-Following Algorithms for Connectionist Reinforcement Learning", 1992),
        formula: "ℓ = −A·lp·w_IS; loss = agg(ℓ); ppo_kl = masked_mean(rollout_lp − lp)",
        params: Aggregation.specs(defaultMode: .seqMeanTokenSum),
        requires: ["logprobs", "old_logprobs", "advantages"])

    static func compute(_ input: LossInput, _ p: Params) throws -> LossOutput {
        let cols = try PolicyColumns(input, method: p.method)
        let agg = try Aggregation.from(p)
        let r = LossKernel.elementwise(cols, input, agg) { lp, old, a, _, _ in TokenTerm(-a * lp, -a, old - lp) }
        return LossOutput(value: r.value, metrics: ["ppo_kl": r.metrics.0], gradient: r.gradient)
    }
}
