import FineGrain

/// Conformance adapter for HAPO's token-level group average (golden/papers/hapo_token_group_average.json,
/// starriver030515/HAPO `compute_hapo_outcome_advantage`). Full-width rows, `reference_compatible = true`
/// (padding holds `(0 - mu)/(sigma + eps)` and enters the `|A| >= 5` fallback test); every position is compared.
let hapoAdvantageAdapters: [ConformanceAdapter] = [
    ConformanceAdapter("compute_hapo_outcome_advantage") { c in
        let mask = try c.matrix("response_mask")
        var batch = try VerlLayout.batch(responseMask: mask, groups: c.hasInput("index") ? try c.groups("index") : nil,
                                         trimTrailingPadding: false)
        batch.tokenReward = try VerlLayout.ragged(try c.matrix("token_level_rewards"), like: batch, field: "token_level_rewards")
        var params = c.registryParams(only: ["epsilon", "norm_adv_by_std_in_grpo"])
        params["reference_compatible"] = .bool(true)
        let out = try Registry.advantages("hapo_token_group_average", batch: batch, params: params)
        let width = mask.first?.count ?? 0
        let adv = JSONValue.matrix(VerlLayout.padded(out.advantages, like: batch, width: width))
        return ["advantages": adv, "returns": out.returns.map { .matrix(VerlLayout.padded($0, like: batch, width: width)) } ?? adv]
    },
]
