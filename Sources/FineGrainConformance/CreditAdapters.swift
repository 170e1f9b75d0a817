import FineGrain

/// Conformance adapters for advantage estimators (golden/verl).
///
/// Each adapter decodes verl's padded inputs, builds a full-width `RolloutBatch` (no trimming, so every
/// padded position is compared), puts `token_level_rewards` in the `token_rewards` column, calls the
/// estimator through `Registry.advantages` (which validates batch and params) and pads the outputs back.
/// Every position is compared: the estimators reproduce verl's values at masked positions too.
let creditAdapters: [ConformanceAdapter] = [
    verlAdapter("compute_gae_advantage_return", "gae", extra: ["values"]),
    verlAdapter("compute_grpo_outcome_advantage", "grpo"),
    verlAdapter("compute_grpo_vectorized_outcome_advantage", "grpo_vectorized"),
    verlAdapter("compute_rloo_outcome_advantage", "rloo"),
    verlAdapter("compute_rloo_vectorized_outcome_advantage", "rloo_vectorized"),
    verlAdapter("compute_reinforce_plus_plus_outcome_advantage", "reinforce_plus_plus"),
    verlAdapter("compute_reinforce_plus_plus_baseline_outcome_advantage", "reinforce_plus_plus_baseline"),
    verlAdapter("compute_remax_outcome_advantage", "remax", extra: ["reward_baselines"]),
    verlAdapter("compute_opo_outcome_advantage", "opo"),
    verlAdapter("compute_gpg_outcome_advantage", "gpg"),
    verlAdapter("compute_grpo_passk_outcome_advantage", "grpo_passk"),
    verlAdapter("compute_gdpo_outcome_advantage", "gdpo"),
    verlAdapter("compute_optimal_token_baseline_advantage", "optimal_token_baseline",
                extra: ["old_log_probs", "sum_pi_squared", "rollout_is_weights"]),
    verlAdapter("compute_multi_turn_optimal_token_baseline_advantage", "tir_optimal_token_baseline",
                extra: ["old_log_probs", "sum_pi_squared", "rollout_is_weights"]),
]

/// An adapter for a verl advantage function with the inputs `token_level_rewards`, `response_mask`, optional
/// `index`, and the named extra inputs (absent or `null` ones are left out of the batch).
private func verlAdapter(_ function: String, _ method: String, extra: [String] = []) -> ConformanceAdapter {
    ConformanceAdapter(function) { c in
        let mask = try c.matrix("response_mask")
        let groups = c.hasInput("index") ? try c.groups("index") : nil
        var batch = try VerlLayout.batch(responseMask: mask, groups: groups, trimTrailingPadding: false)
        batch.tokenReward = try VerlLayout.ragged(try c.matrix("token_level_rewards"), like: batch, field: "token_level_rewards")
        for key in extra where c.hasInput(key) {
            switch key {
            case "values": batch.value = try VerlLayout.ragged(try c.matrix(key), like: batch, field: key)
            case "old_log_probs": batch.oldLogprob = try VerlLayout.ragged(try c.matrix(key), like: batch, field: key)
            case "reward_baselines": batch.rewardBaseline = try c.vector(key)
            default: batch.extraTokenColumns[key] = try VerlLayout.ragged(try c.matrix(key), like: batch, field: key)
            }
        }
        let out = try Registry.advantages(method, batch: batch, params: c.registryParams())
        let width = mask.first?.count ?? 0
        let adv = JSONValue.matrix(VerlLayout.padded(out.advantages, like: batch, width: width))
        let ret = out.returns.map { JSONValue.matrix(VerlLayout.padded($0, like: batch, width: width)) } ?? adv
        return ["advantages": adv, "returns": ret]
    }
}
