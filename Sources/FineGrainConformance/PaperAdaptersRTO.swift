import FineGrain

/// Conformance adapter for RTO (golden/papers/rto_rewards.json, reference zkshan2002/RTO): full-width batch,
/// the estimator through the registry with `reference_compatible` and raw (unnormalised) advantages.
let rtoAdapters: [ConformanceAdapter] = [
    ConformanceAdapter("_compute_dpo_rewards + compute_reward + get_advantages_and_returns") { c in
        let mask = try c.matrix("action_mask")
        var batch = try VerlLayout.batch(responseMask: mask, groups: nil, trimTrailingPadding: false)
        let width = mask.first?.count ?? 0
        batch.extraTokenColumns["dpo_logprobs"] = try VerlLayout.ragged(try c.matrix("dpo_log_probs"), like: batch, field: "dpo_log_probs")
        batch.refLogprob = try VerlLayout.ragged(try c.matrix("base_log_probs"), like: batch, field: "base_log_probs")
        batch.oldLogprob = try VerlLayout.ragged(try c.matrix("action_log_probs"), like: batch, field: "action_log_probs")
        batch.value = try VerlLayout.ragged(try c.matrix("values"), like: batch, field: "values")
        batch.outcome = try c.vector("r")
        var given = c.registryParams(rename: ["lambd": "lam"])
        given["reference_compatible"] = .bool(true)
        given["normalize_advantages"] = .bool(false)
        let out = try Registry.advantages(RTO.info.name, batch: batch, params: given)
        let s = try RTO.rewards(batch, try Params.resolve(given, specs: RTO.info.params, method: RTO.info.name))
        func pad(_ x: [Double]) -> JSONValue { .matrix(VerlLayout.padded(x, like: batch, width: width)) }
        return ["dpo_rewards": pad(s.dpo), "kl": pad(s.kl), "reward": pad(s.reward),
                "advantages": pad(out.advantages), "returns": pad(out.returns ?? [])]
    },
]
