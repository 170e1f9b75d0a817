import FineGrain

/// Conformance adapter for AdaptVision's DTPO advantages (golden/papers/dtpo_advantage.json,
/// `compute_DTPO_advantage`). `outcome_level_rewards` become `token_rewards` (summed per row),
/// `turn_level_rewards` are summed into `rewards.tool`, `turn_mask` becomes the `turn_ids` column and
/// `eos_mask` the mask; `turn_roles = "positional"` reproduces the reference's turn assignment.
let dtpoAdvantageAdapters: [ConformanceAdapter] = [
    ConformanceAdapter("compute_DTPO_advantage") { c in
        let mask = try c.matrix("eos_mask")
        var batch = try VerlLayout.batch(responseMask: mask, groups: c.hasInput("index") ? try c.groups("index") : nil,
                                         trimTrailingPadding: false)
        batch.tokenReward = try VerlLayout.ragged(try c.matrix("outcome_level_rewards"), like: batch, field: "outcome_level_rewards")
        let turnRewards = try c.matrix("turn_level_rewards")
        guard turnRewards.count == batch.count else {
            throw FineGrainError.invalidField(field: "turn_level_rewards", reason: "has \(turnRewards.count) rows, the batch has \(batch.count)")
        }
        batch.namedRewards["tool"] = VerlLayout.rowSums(turnRewards)
        batch.extraTokenColumns["turn_ids"] = try VerlLayout.ragged(try c.matrix("turn_mask"), like: batch, field: "turn_mask")
        var params = c.registryParams(only: ["lambda_coeff", "epsilon"])
        params["turn_roles"] = .string("positional")
        let out = try Registry.advantages("dtpo", batch: batch, params: params)
        let resolved = try Params.resolve(params, specs: DTPOAdvantage.info.params, method: "dtpo")
        let (tool, outcome) = try DTPOAdvantage.groupAdvantages(batch, resolved)
        let width = mask.first?.count ?? 0
        let adv = JSONValue.matrix(VerlLayout.padded(out.advantages, like: batch, width: width))
        return ["advantages": adv, "returns": out.returns.map { .matrix(VerlLayout.padded($0, like: batch, width: width)) } ?? adv,
                "adv_turn": .numbers(tool), "adv_outcome": .numbers(outcome)]
    },
]
