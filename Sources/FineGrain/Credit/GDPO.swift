/// Group reward-Decoupled normalization Policy Optimization, verl's `compute_gdpo_outcome_advantage`
/// (single-reward path).
///
/// Paper: Liu et al., "GDPO: Group reward-Decoupled Normalization Policy Optimization for Multi-reward RL
/// Optimization" (2026, arXiv 2601.05242).
///
/// Formula: GDPO normalises each reward component per group (GRPO), sums the weighted results and whitens
/// the sum over the batch. With one reward (the path verl takes when no `gdpo_reward_keys` are configured,
/// and the only one implemented here): `A = masked_whiten(GRPO(R) * m, m) * m`, with GRPO's loop-version
/// statistics (singleton: mean 0, std 1; unbiased std; `epsilon` added to the std). `returns == advantages`.
/// Needs at least 2 valid tokens in the batch.
public enum GDPO {
    public static let info = MethodInfo(
        name: "gdpo", kind: .estimator,
        summary: "Group-normalised outcome (GRPO), then whitened over the batch's tokens (single-reward GDPO)",
        paper: Citation("GDPO: Group reward-Decoupled Normalization Policy Optimization for Multi-reward RL Optimization", 2026, arxiv: "2601.05242"),
        formula: "a_i = (R_i - mean_g)/(std_g + epsilon) (or R_i - mean_g); A = masked_whiten(a_i * m) * m",
        params: [
            .bool("norm_adv_by_std_in_grpo", true, "divide by the group std in the GRPO step"),
            .number("epsilon", 1e-6, "added to the group std"),
        ],
        requires: ["reward"])

    public static let estimator = AdvantageEstimator(info: info) { batch, params in
        let a = try GRPO.scalars(batch, normByStd: try params.bool("norm_adv_by_std_in_grpo"),
                                 epsilon: try params.double("epsilon"), method: params.method)
        var adv = CreditKernels.broadcast(a, batch)
        try CreditKernels.whiten(&adv, mask: batch.mask, zeroMasked: true, method: params.method)
        return AdvantageOutput(advantages: adv, returns: adv)
    }
}
