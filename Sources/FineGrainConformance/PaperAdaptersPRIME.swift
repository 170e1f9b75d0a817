import FineGrain

/// Conformance adapters for PRIME (PRIME-RL/PRIME @18ad596 = `reference_compatible: original`, and verl's
/// `recipe/prime` = `reference_compatible: recipe`). Groups are the references' contiguous blocks of `n_samples`.
let primeAdapters: [ConformanceAdapter] = [
    ConformanceAdapter("DataParallelPRIME.compute_implicit_reward + prime_norm",
                       tolerance: { key, _ in key == "q" ? .float64 : .float32Reference }) { c in
        let (batch, width) = try primeBatch(c, logprobs: "log_probs", groups: nil)
        var given = c.registryParams(only: ["prime_granularity", "prime_norm"])
        given["reference_compatible"] = .string("original")
        let ir = try PRIME.implicitRewards(batch, try Params.resolve(given, specs: PRIME.info.params, method: "prime"), acc: nil)
        let pad = { (x: [Double]) in JSONValue.matrix(VerlLayout.padded(x, like: batch, width: width)) }
        return ["q": pad(ir.q), "token_level_score": pad(ir.score), "normalized": pad(ir.normalized)]
    },
    ConformanceAdapter("DataParallelPRIMERewardModel._forward_micro_batch (reward part) + prime_norm") { c in
        var (batch, width) = try primeBatch(c, logprobs: "rm_log_probs", groups: nil)
        batch.outcome = try c.vector("acc")
        var given = c.registryParams(only: ["lambda", "prime_use_gt", "prime_granularity", "prime_norm"])
        if let b = c.param("beta_train")?.doubleValue { given["beta"] = .number(b) }
        given["reference_compatible"] = .string("recipe")
        let ir = try PRIME.implicitRewards(batch, try Params.resolve(given, specs: PRIME.info.params, method: "prime"), acc: batch.outcome)
        let pad = { (x: [Double]) in JSONValue.matrix(VerlLayout.padded(x, like: batch, width: width)) }
        return ["q": pad(ir.q), "token_level_score": pad(ir.score), "rm_scores": pad(ir.normalized)]
    },
    ConformanceAdapter("compute_rloo_returns", compareOnlyWhereMask: ["advantages": "response_mask"]) { c in
        try primeRLOO(c, reference: "original", outcomeKey: "gt_scores",
                      params: ["n_samples", "reward_model_gamma", "verifier_gamma"])
    },
    // Tolerance: the acc source is float32 in the recipe, and the stored dpo-source outputs differ from a float64
    // recomputation from the stored 6-decimal inputs by up to ~2.4e-6 absolute (returns, coef 5): atol 1e-5.
    ConformanceAdapter("compute_rloo_advantage_return", compareOnlyWhereMask: ["advantages": "response_mask"],
                       tolerance: { _, _ in Tolerance(rtol: 1e-5, atol: 1e-5) }) { c in
        try primeRLOO(c, reference: "recipe", outcomeKey: "acc", params: ["n_samples", "reward_dpo_coef", "reward_gt_coef"])
    },
    ConformanceAdapter("compute_ce_dpo_loss_rm") { c in
        let layout = try PaddedLayout(mask: try c.matrix("response_mask"))
        var input = layout.input
        input.logprob = try layout.column(c, "q")                                   // q = lp_φ − lp_ref with lp_ref = 0
        input.refLogprob = [Double](repeating: 0, count: layout.batch.tokenCount)
        let acc = try c.vector("acc")
        guard acc.count == layout.batch.count else { throw FineGrainError.invalidField(field: "acc", reason: "one label per row") }
        var label = [Double](repeating: 0, count: layout.batch.tokenCount)
        for r in 0 ..< acc.count { for t in layout.batch.range(r) { label[t] = acc[r] } }
        input.returns = label
        let out = try Registry.loss("prime_ce", input: input, params: c.registryParams(only: ["beta"]))
        return ["loss": .number(out.value), "grad_q": layout.padded(out.gradient)]
    },
]

/// Untrimmed batch with `prm_logprobs` / `prm_ref_logprobs` from the named inputs.
private func primeBatch(_ c: GoldenCase, logprobs: String, groups: [GroupID]?) throws -> (RolloutBatch, Int) {
    let mask = try c.matrix("response_mask")
    var batch = try VerlLayout.batch(responseMask: mask, groups: groups, trimTrailingPadding: false)
    batch.extraTokenColumns["prm_logprobs"] = try VerlLayout.ragged(try c.matrix(logprobs), like: batch, field: logprobs)
    batch.extraTokenColumns["prm_ref_logprobs"] = try VerlLayout.ragged(try c.matrix("ref_log_probs"), like: batch, field: "ref_log_probs")
    try batch.validate()
    return (batch, mask.first?.count ?? 0)
}

/// The leave-one-out stage from precomputed implicit token rewards `rm_scores` and an outcome source.
private func primeRLOO(_ c: GoldenCase, reference: String, outcomeKey: String, params: [String]) throws -> [String: JSONValue] {
    let mask = try c.matrix("response_mask")
    let n = max(1, Int(c.param("n_samples")?.doubleValue ?? 1))
    var batch = try VerlLayout.batch(responseMask: mask, groups: (0 ..< mask.count).map { .int($0 / n) }, trimTrailingPadding: false)
    let implicit = c.hasInput("rm_scores") ? try VerlLayout.ragged(try c.matrix("rm_scores"), like: batch, field: "rm_scores") : nil
    var outcome: [Double]?
    if c.hasInput(outcomeKey) {
        if outcomeKey == "acc" {
            outcome = try c.vector("acc")
        } else {                                 // gt_scores [B][L]: acc at the last valid token (last column if empty)
            let gt = try c.matrix(outcomeKey)
            outcome = try (0 ..< batch.count).map { r in
                guard let i = batch.outcomeTokenIndex(r), gt[r].count > i - batch.offsets[r] else {
                    throw FineGrainError.invalidField(field: outcomeKey, reason: "row \(r) is too short")
                }
                return gt[r][i - batch.offsets[r]]
            }
        }
    }
    batch.outcome = outcome
    var given = c.registryParams(only: params); given["reference_compatible"] = .string(reference)
    let out = try PRIME.advantages(batch, implicit: implicit, outcome: outcome, try Params.resolve(given, specs: PRIME.info.params, method: "prime"))
    let width = mask.first?.count ?? 0
    return ["advantages": .matrix(VerlLayout.padded(out.advantages, like: batch, width: width)),
            "returns": .matrix(VerlLayout.padded(out.returns ?? [], like: batch, width: width))]
}
