import FineGrain

/// Conformance adapters for PURE (CJReinforce/PURE: `main` = OpenRLHF, branch `verl`). Every adapter runs the
/// library with `reference_compatible` so the reference's quirks are reproduced (see `PURE`, `PUREVerl`).
let pureAdapters: [ConformanceAdapter] = [
    // turn_process_reward_logits_to_reward: the min-form weights on step slots.
    ConformanceAdapter("turn_process_reward_logits_to_reward") { c in
        let logits = try cube(c, "logits"), valid = try c.matrix("reward_mask")
        let t = c.param("temperature")?.doubleValue ?? 0.1, uniform = c.param("disable_weighted_reward")?.boolValue ?? false
        guard t > 0 else { throw FineGrainError.invalidParameter(name: "temperature", method: "pure", reason: "must be positive") }
        guard logits.count == valid.count else { throw FineGrainError.invalidField(field: "reward_mask", reason: "row count differs from logits") }
        var rows = [[Double]](), sums = [Double]()
        for (z, m) in zip(logits, valid) {
            let row = PURE.minFormRewards(scores: try z.map { try score($0) }, valid: m.map { $0 != 0 }, temperature: t, uniform: uniform)
            rows.append(row); sums.append(row.reduce(0, +))
        }
        return ["process_reward": .matrix(rows), "outcome_reward": .numbers(sums)]
    },
    // The OpenRLHF pipeline: step split, PRM placement, process_experiences, returns, replay-buffer normalisation.
    ConformanceAdapter("step split + turn_process_reward_logits_to_reward + process_experiences + returns",
                       tolerance: { key, _ in key == "normalized_advantages" ? .float32Reference : nil }) { c in
        let mask = try c.matrix("action_mask"), responses = try c.matrix("responses"), logits = try cube(c, "prm_step_logits")
        let width = mask.first?.count ?? 0
        let n = Int(c.param("n_samples_per_prompt")?.doubleValue ?? 1)
        guard n >= 1 else { throw FineGrainError.invalidParameter(name: "n_samples_per_prompt", method: "pure", reason: "must be >= 1") }
        var batch = try VerlLayout.batch(responseMask: mask, groups: (0 ..< mask.count).map { .int($0 / n) }, trimTrailingPadding: true)
        batch.tokens = try VerlLayout.ragged(responses, like: batch, field: "responses").map { Int32($0) }
        let seps = Set(try c.vector("step_separator_ids").map { Int32($0) })
        var so = [0], ends = [Int](), pr = [Double]()
        for r in 0 ..< batch.count {
            let e = try PURE.stepEnds(tokens: batch.tokens[batch.range(r)], mask: batch.mask[batch.range(r)], separators: seps, response: r)
            guard r < logits.count, logits[r].count >= e.count else {
                throw FineGrainError.invalidField(field: "prm_step_logits", reason: "row \(r) has fewer slots than its \(e.count) steps")
            }
            ends += e; pr += try logits[r][0 ..< e.count].map { try score($0) }; so.append(ends.count)
        }
        batch.stepOffsets = so; batch.stepEnds = ends; batch.stepReward = pr
        let solved = try c.vector("solved"), have = try c.vector("have_answers")
        batch.outcome = zip(solved, have).map { $1 != 0 ? $0 : 1 }                  // no answer: solved, VR 0
        batch.oldLogprob = try VerlLayout.ragged(try c.matrix("kl"), like: batch, field: "kl")   // k1 with ref 0 = kl
        batch.refLogprob = [Double](repeating: 0, count: batch.tokenCount)
        var params = c.registryParams(); params["reference_compatible"] = .bool(true)
        let out = try Registry.advantages("pure", batch: batch, params: params)
        let shaped = try PURE.shapedRewards(batch, try Params.resolve(params, specs: PURE.info.params, method: "pure"))

        let smax = (0 ..< batch.count).map { so[$0 + 1] - so[$0] }.max() ?? 0
        var scoreIDs = [[Double]](), scoreMask = [[Double]](), tokensPer = [[Double]](), rewardMask = [[Double]](), prm = [[Double]]()
        for r in 0 ..< batch.count {
            let k = so[r + 1] - so[r]
            scoreIDs.append(ends[so[r] ..< so[r + 1]].map(Double.init) + Array(repeating: -1, count: smax - k))
            scoreMask.append(Array(repeating: 1, count: k) + Array(repeating: 0, count: smax - k))
            tokensPer.append(shaped.stepTokens[so[r] ..< so[r + 1]].map(Double.init) + Array(repeating: 0, count: smax - k))
            var rm = [Double](repeating: 0, count: width), pm = rm
            for j in so[r] ..< so[r + 1] { rm[ends[j] - 1] = 1; pm[ends[j] - 1] = shaped.minForm[j] }
            rewardMask.append(rm); prm.append(pm)
        }
        // match: sign(O_i) (−1 → 0) against solved, −1 where the prompt has no answer (a logging metric)
        let match = (0 ..< batch.count).map { r -> Double in
            have[r] == 0 ? -1 : ((shaped.outcome[r] > 0 ? 1.0 : 0.0) == solved[r] ? 1 : 0)
        }
        let pad = { (x: [Double]) in JSONValue.matrix(VerlLayout.padded(x, like: batch, width: width)) }
        return [
            "score_ids": .matrix(scoreIDs), "score_mask": .matrix(scoreMask), "reward_mask": .matrix(rewardMask),
            "num_steps": .numbers((0 ..< batch.count).map { Double(so[$0 + 1] - so[$0]) }),
            "response_length": .numbers((0 ..< batch.count).map { Double(batch.validCount($0)) }),
            "num_tokens_per_step": .matrix(tokensPer), "process_reward_matrix": .matrix(prm),
            "outcome_reward": .numbers(shaped.outcome), "match": .numbers(match),
            "rewards": pad(PURE.tokenRewards(batch, shaped)), "returns": pad(out.returns ?? out.advantages),
            "normalized_advantages": .array((0 ..< batch.count).map { .numbers(Array(out.advantages[batch.range($0)])) }),
        ]
    },
    // The verl branch's PRM worker: step split and rm_score.
    ConformanceAdapter("ProcessRewardModelWorker._split_steps + ProcessRewardModelWorker._forward_micro_batch (rm_score part)") { c in
        let tokens = try c.matrix("responses"), mask = try c.matrix("response_attention_mask"), logits = try cube(c, "prm_logits")
        let seps = Set(try c.vector("split_step_token_ids").map { Int32($0) })
        let temperature: Double?
        switch c.param("credit_assignment") {
        case let .some(.number(t)) where t > 0: temperature = t
        case .some(.string("gamma-decay")), .some(.string("strict min-form")): temperature = nil
        default: throw FineGrainError.invalidParameter(name: "credit_assignment", method: "pure_verl", reason: "expected a positive temperature, 'gamma-decay' or 'strict min-form'")
        }
        var ids = [[Int]](), scores = [[Double]](), rmask = [[Double]]()
        for r in 0 ..< tokens.count {
            let m = mask[r].map { UInt8($0 != 0 ? 1 : 0) }
            let row = PUREVerl.scoreIDs(tokens: tokens[r].map { Int32($0) }, mask: m, separators: seps)
            ids.append(row)
            scores.append(PUREVerl.rmScores(scores: try logits[r].map { try score($0) }, ids: row, temperature: temperature))
            var rm = [Double](repeating: 0, count: tokens[r].count)
            for i in row { rm[i] = 1 }
            rmask.append(rm)
        }
        let smax = ids.map(\.count).max() ?? 0
        return [
            "score_ids": .matrix(ids.map { $0.map(Double.init) + Array(repeating: -1, count: smax - $0.count) }),
            "score_mask": .matrix(ids.map { Array(repeating: 1, count: $0.count) + Array(repeating: 0, count: smax - $0.count) }),
            "reward_mask": .matrix(rmask), "num_steps": .numbers(ids.map { Double($0.count) }), "rm_score": .matrix(scores),
        ]
    },
    // The verl branch's compute_rloo_outcome_advantage (sum / strict-min returns, padded-width baseline).
    ConformanceAdapter("verl.trainer.ppo.core_algos (PURE verl branch)::compute_rloo_outcome_advantage", compareOnlyWhereMask: ["advantages": "eos_mask", "returns": "eos_mask"]) { c in
        let mask = try c.matrix("eos_mask")
        var batch = try VerlLayout.batch(responseMask: mask, groups: try c.groups("index"), trimTrailingPadding: false)
        batch.tokenReward = try VerlLayout.ragged(try c.matrix("token_level_rewards"), like: batch, field: "token_level_rewards")
        var params = c.registryParams(only: ["adv_norm", "return_aggregate_method"]); params["reference_compatible"] = .bool(true)
        let out = try Registry.advantages("pure_verl", batch: batch, params: params)
        let width = mask.first?.count ?? 0
        return ["advantages": .matrix(VerlLayout.padded(out.advantages, like: batch, width: width)),
                "returns": .matrix(VerlLayout.padded(out.returns ?? [], like: batch, width: width))]
    },
]

/// `[B][S][2]` (or `[B][L][2]`) logits.
func cube(_ c: GoldenCase, _ key: String) throws -> [[[Double]]] {
    guard let rows = try c.input(key).arrayValue else { throw FineGrainError.invalidField(field: key, reason: "expected [B][S][2]") }
    return try rows.map { try $0.doubleMatrix(field: key) }
}

/// PR = softmax(z)[1] − softmax(z)[0] of one 2-class logit pair.
private func score(_ z: [Double]) throws -> Double {
    guard z.count == 2 else { throw FineGrainError.invalidField(field: "logits", reason: "expected 2 logits per step, got \(z.count)") }
    return PURE.stepScore(z[0], z[1])
}
