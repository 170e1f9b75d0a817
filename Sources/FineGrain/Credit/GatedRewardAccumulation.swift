import Foundation

// G-RA, Gated Reward Accumulation: a reward transform that counts immediate (step) rewards only when the
// higher-priority rewards of the trajectory meet their thresholds. Spec: credit_assignment.md §13 [recon].

/// Gated Reward Accumulation ("Stabilizing Long-term Multi-turn Reinforcement Learning with Gated Rewards",
/// Sun, Li, Chen, Qin, Hu, 2025, arXiv 2508.10548).
///
/// RECONSTRUCTION: no official code exists; the paper's abstract fixes only the principle, so every open choice
/// of spec §13 / §Z.4 is a parameter. Formula, with the priority chain R^(1) = `reward` (the sequence score),
/// R^(2) ... R^(K-1) = `rewards.<name>` for the names in `higher_levels` (highest first) and thresholds tau_j: `pass_j = R^(j) >= tau_j` (`comparator = gt`: `>`);
/// the gate of level k is `AND_{j<k} pass_j` (`gating_rule = all_higher_levels`), `pass_{k-1}`
/// (`immediate_higher_level`) or `pass_1` (`top_level`); the step rewards are level K.
/// G-RA total: `R^(1) + sum_{2<=k<K} gate_k R^(k) + gate_K sum_s r_s`; D-RA (`mode = direct`, the paper's
/// baseline): every gate is 1. Placement: each step reward on the last token of its step, R^(1) (the sequence
/// score: `reward` plus `token_rewards` in place) and the higher levels on the last valid token; the result
/// is handed as token rewards to `base_estimator` (run with its default parameters).
///
/// Spec note: §13(e) says a completed-but-failing trajectory keeps its step rewards under the immediate rule;
/// with the chain [completion, tests] the immediate higher level of the steps is `tests`, which fails, so the
/// literal rule drops them. `top_level` (gate on R^(1) only) gives the behaviour §13(e) describes.
public enum GatedRewardAccumulation {
    public static let baseEstimators = ["grpo", "dr_grpo", "rloo", "reinforce_plus_plus", "reinforce_plus_plus_baseline"]

    public static let info = MethodInfo(
        name: "g_ra", kind: .estimator,
        summary: "[recon] Gated reward accumulation: step rewards count only if higher-priority rewards pass their thresholds, then a base estimator",
        paper: Citation("Stabilizing Long-term Multi-turn Reinforcement Learning with Gated Rewards", 2025, arxiv: "2508.10548"),
        formula: "gate_k = AND_{j<k} [R^(j) >= tau_j]; total = R^(1) + sum_k gate_k R^(k) + gate_K sum_s r_s; token rewards -> base_estimator",
        params: [
            .string("higher_levels", "", "further priority levels after 'reward' (R^(1)), highest first: keys of the JSONL 'rewards' object, comma-separated"),
            .string("thresholds", "0.5", "one threshold per level (reward first), comma-separated"),
            .string("comparator", "ge", "pass test: ge (R >= tau) or gt (R > tau)", choices: ["ge", "gt"]),
            .string("gating_rule", "all_higher_levels", "which higher levels gate a level",
                    choices: ["all_higher_levels", "immediate_higher_level", "top_level"]),
            .string("mode", "gated", "gated (G-RA) or direct (D-RA baseline, no gate)", choices: ["gated", "direct"]),
            .string("base_estimator", "grpo", "outcome estimator run on the accumulated rewards", choices: baseEstimators),
        ],
        requires: ["reward", "step_ends", "step_rewards", "rewards.<higher_levels>"])

    public static let estimator = AdvantageEstimator(info: info, compute: compute)
    public static let estimators: [AdvantageEstimator] = [estimator]

    /// Per-response gates `[R][K]` (index 0 = level 2, ..., last = the step rewards) and the level values `[L][R]`.
    public static func gates(_ batch: RolloutBatch, _ params: Params) throws -> (gates: [[Bool]], levels: [[Double]]) {
        let method = params.method
        let extra = try params.string("higher_levels").split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        let names = ["reward"] + (extra == [""] ? [] : extra)
        let taus = try params.string("thresholds").split(separator: ",").map { s -> Double in
            let t = s.trimmingCharacters(in: .whitespaces)
            guard let d = Double(t), d.isFinite else {
                throw FineGrainError.invalidParameter(name: "thresholds", method: method, reason: "'\(t)' is not a finite number")
            }
            return d
        }
        try params.require("higher_levels", !names.dropFirst().contains(""), "has an empty level name")
        try params.require("thresholds", taus.count == names.count, "has \(taus.count) thresholds for \(names.count) levels (reward first)")
        let levels: [[Double]] = try names.enumerated().map { k, name in
            if k == 0 { return try batch.scores(method: method) }                    // R^(1): reward + token_rewards
            guard let v = batch.namedRewards[name] else { throw FineGrainError.missingField(field: "rewards.\(name)", method: method) }
            return v
        }
        let gt = try params.string("comparator") == "gt", rule = try params.string("gating_rule")
        let direct = try params.string("mode") == "direct"
        let gates: [[Bool]] = (0 ..< batch.count).map { r in
            let pass = (0 ..< names.count).map { j in gt ? levels[j][r] > taus[j] : levels[j][r] >= taus[j] }
            return (1 ... names.count).map { k in              // gate of level k+1 (k = names.count: the steps)
                if direct { return true }
                switch rule {
                case "immediate_higher_level": return pass[k - 1]
                case "top_level": return pass[0]
                default: return pass[0 ..< k].allSatisfy { $0 }
                }
            }
        }
        return (gates, levels)
    }

    /// Token rewards `[N]` after gating, in verl's layout (what the base estimator receives).
    public static func gatedTokenRewards(_ batch: RolloutBatch, _ params: Params) throws -> [Double] {
        guard let so = batch.stepOffsets, let ends = batch.stepEnds else {
            throw FineGrainError.missingField(field: "step_ends", method: params.method)
        }
        let steps = try batch.require(batch.stepReward, "step_rewards", method: params.method)   // [S]
        let (gates, levels) = try gates(batch, params)
        var out = try batch.tokenLevelRewards(method: params.method)                            // [N] R^(1) in place
        for r in 0 ..< batch.count {
            guard let last = batch.outcomeTokenIndex(r) else { continue }
            for k in 1 ..< levels.count where gates[r][k - 1] { out[last] += levels[k][r] }    // gated higher levels
            if gates[r][levels.count - 1] {                                                    // gated step rewards
                for s in so[r] ..< so[r + 1] { out[batch.offsets[r] + ends[s] - 1] += steps[s] }
            }
        }
        return out
    }

    public static func compute(_ batch: RolloutBatch, _ params: Params) throws -> AdvantageOutput {
        var b = batch
        b.tokenReward = try gatedTokenRewards(batch, params)
        b.outcome = nil
        return try Registry.advantages(try params.string("base_estimator"), batch: b)
    }
}
