import FineGrain

/// Conformance adapter for TEMPO (golden/papers/tempo.json, fatebreaker/tempo
/// `compute_tempo_outcome_advantage`).
///
/// Rows are kept at full padded width with their raw pad ids in `tokens`, so FineGrain's prefix tree over the
/// rows is exactly the reference's column-by-column comparison of padded `responses`. The reference's
/// behaviour is selected with `stop_at_first_hole = true` and `singleton_policy = "reference"` (NaN for a
/// group of one); every position, padding included, is compared.
let tempoAdapters: [ConformanceAdapter] = [
    ConformanceAdapter("compute_tempo_outcome_advantage") { c in
        let mask = try c.matrix("response_mask")
        var batch = try VerlLayout.batch(responseMask: mask, groups: c.hasInput("index") ? try c.groups("index") : nil,
                                         trimTrailingPadding: false)
        let ids = try c.matrix("responses")
        let flat = try VerlLayout.ragged(ids, like: batch, field: "responses")
        batch.tokens = try flat.map { x in
            guard x == x.rounded(), let v = Int32(exactly: x) else {
                throw FineGrainError.invalidField(field: "responses", reason: "token id \(x) is not a 32-bit integer")
            }
            return v
        }
        batch.tokenReward = try VerlLayout.ragged(try c.matrix("token_level_rewards"), like: batch, field: "token_level_rewards")
        var params = c.registryParams(only: ["epsilon", "norm_adv_by_std_in_grpo"])
        params["stop_at_first_hole"] = .bool(true)
        params["singleton_policy"] = .string("reference")
        let out = try Registry.advantages("tempo", batch: batch, params: params)
        let width = mask.first?.count ?? 0
        let adv = JSONValue.matrix(VerlLayout.padded(out.advantages, like: batch, width: width))
        return ["advantages": adv, "returns": out.returns.map { .matrix(VerlLayout.padded($0, like: batch, width: width)) } ?? adv]
    },
]
