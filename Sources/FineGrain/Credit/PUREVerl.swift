import Foundation

// PURE, verl branch (CJReinforce/PURE @83f9869): the PRM worker writes the (min-form weighted) step scores on
// the step-end tokens, the trainer adds the verifiable reward on the last valid token, and a modified verl
// `compute_rloo_outcome_advantage` turns token rewards into returns — a sum ('sum', the approximate min-form)
// or a suffix minimum ('min', PURE's strict min-form) — minus a per-token leave-one-out baseline.

/// PURE on verl's RLOO (CJReinforce/PURE branch `verl`), registered as `pure_verl`.
///
/// Paper: "Stop Summation: Min-Form Credit Assignment Is All Process Reward Model Needs for Reasoning" (2025,
/// arXiv 2504.15275). Formula: token rewards `r_t = token_rewards_t + [t = step end k]·w_k·PR_k + [t = last]·coef·v`
/// (`w = softmax(−PR/T)` for `credit_assignment = approx_min_form`, `w = 1` for `gamma_decay` / `strict_min_form`);
/// returns `G_t = Σ_{t'≥t} r_t' m_t'` (sum) or `G_t = min_{p ≥ t} r_p` over reward positions (strict min-form);
/// `b_i = Σ_{j≠i} Σ_t G_{j,t} / Σ_{j≠i} L_j`; `returns = (G − b_i)·m`; advantages = masked whitening (adv_norm).
///
/// Paper vs reference (`reference_compatible`, default false = the intent):
/// * strict min-form: the reference takes the suffix minimum over ALL token rewards, so the zeros between steps
///   enter the minimum; the default takes it over reward positions only (step ends, the last valid token when
///   `reward` is given, every valid token when `token_rewards` is given);
/// * baseline: the reference divides by `(n − 1)·L` with L the padded width (here: the longest response of the
///   batch); the default divides by the others' valid-token count;
/// * whitening: the reference's `masked_whiten` has no 1e-8 in the mean; a group of one gives NaN (default: throws).
public enum PUREVerl {
    public static let info = MethodInfo(
        name: "pure_verl", kind: .estimator,
        summary: "PURE (verl branch): min-form PRM step rewards + verifiable reward, sum or strict-min returns, per-token RLOO baseline",
        paper: PURE.paper,
        formula: "r_t = tr_t + w_k·PR_k [t = end_k] + coef·v [t = last]; G_t = Σ_{t'≥t} r m (sum) | min_{p≥t} r_p (min); "
            + "b_i = Σ_{j≠i}Σ_t G_j / Σ_{j≠i} L_j; returns = (G − b_i)·m; A = whiten(returns)·m",
        params: [
            .string("credit_assignment", "approx_min_form", "step weights: softmax(−PR/T) ('approx_min_form'), raw PR ('gamma_decay', 'strict_min_form')",
                    choices: ["approx_min_form", "gamma_decay", "strict_min_form"]),
            .number("temperature", 0.1, "T of the approximate min-form weights"),
            .string("return_aggregate_method", nil, "'sum' or 'min' (default: 'min' for strict_min_form, else 'sum')", choices: ["sum", "min"]),
            .number("verifiable_reward_coef", 1.0, "weight of the verifiable reward `reward` on the last valid token"),
            .bool("adv_norm", true, "whiten the advantages over the batch's valid tokens"),
            .bool("reference_compatible", false, "reproduce the verl branch: min over all token rewards, padded-width baseline, no 1e-8 in the whitening mean, NaN for groups of one"),
        ],
        requires: ["step_ends", "step_rewards", "reward", "token_rewards"])

    public static let estimator = AdvantageEstimator(info: info) { batch, p in try compute(batch, p) }

    /// The verl branch's step split of one padded row: every separator position (anywhere in the row), then the
    /// last valid position (the reference's `score_ids`; a separator on the last valid token appears twice).
    public static func scoreIDs(tokens: [Int32], mask: [UInt8], separators: Set<Int32>) -> [Int] {
        var ids = tokens.indices.filter { separators.contains(tokens[$0]) }
        ids.append(mask.lastIndex(where: { $0 != 0 }) ?? max(0, mask.count - 1))
        return ids
    }

    /// The verl PRM worker's `rm_score` row: `PR` at the step-end positions `ids` (each once, in position order),
    /// re-weighted by the min-form softmax when `temperature` is given; 0 elsewhere. `scores[t]` is PR at t.
    public static func rmScores(scores: [Double], ids: [Int], temperature: Double?) -> [Double] {
        let pos = Array(Set(ids.filter { $0 >= 0 && $0 < scores.count })).sorted()
        var packed = pos.map { scores[$0] }
        if let t = temperature, !packed.isEmpty {
            _ = packed.withUnsafeMutableBufferPointer { PURE.minFormInPlace($0.baseAddress!, $0.count, temperature: t, uniform: false) }
        }
        var out = [Double](repeating: 0, count: scores.count)
        for (i, p) in pos.enumerated() { out[p] = packed[i] }
        return out
    }

    static func compute(_ batch: RolloutBatch, _ p: Params) throws -> AdvantageOutput {
        let method = p.method, compat = try p.bool("reference_compatible")
        let credit = try p.string("credit_assignment"), temperature = try p.double("temperature")
        let useMin = (p.optionalString("return_aggregate_method") ?? (credit == "strict_min_form" ? "min" : "sum")) == "min"
        try p.require("temperature", temperature > 0 && temperature.isFinite, "must be a positive finite number, got \(temperature)")
        guard batch.stepReward != nil || batch.outcome != nil || batch.tokenReward != nil else {
            throw FineGrainError.missingField(field: "step_rewards", method: method)
        }
        let gi = batch.groupIndex()
        try PURE.checkGroups(batch, gi, n: nil, allowSingletons: compat, method: method)
        let rows = batch.count, n = batch.tokenCount
        let so = batch.stepOffsets ?? [Int](repeating: 0, count: rows + 1), ends = batch.stepEnds ?? []

        // Token rewards [N] and reward positions [N] (1 = a reward sits here; only used by the intended min).
        var r = batch.tokenReward ?? [Double](repeating: 0, count: n)
        var at = [UInt8](repeating: batch.tokenReward == nil ? 0 : 1, count: useMin && !compat ? n : 0)
        if var steps = batch.stepReward {
            for row in 0 ..< rows where so[row + 1] > so[row] {
                if credit == "approx_min_form" {   // PURE's trick: softmax(−PR/T) re-weighting before summation
                    _ = steps.withUnsafeMutableBufferPointer {
                        PURE.minFormInPlace($0.baseAddress! + so[row], so[row + 1] - so[row], temperature: temperature, uniform: false)
                    }
                }
                for k in so[row] ..< so[row + 1] {
                    let t = batch.offsets[row] + ends[k] - 1
                    r[t] += steps[k]
                    if !at.isEmpty { at[t] = 1 }
                }
            }
        }
        if let v = batch.outcome {
            let coef = try p.double("verifiable_reward_coef")
            for row in 0 ..< rows {
                if let t = batch.outcomeTokenIndex(row) { r[t] += coef * v[row]; if !at.isEmpty { at[t] = 1 } }
            }
        }

        // Returns per row (sum or suffix min) and their row sums [R].
        var ret = [Double](repeating: 0, count: n)
        var rowSum = [Double](repeating: 0, count: rows), valid = [Double](repeating: 0, count: rows)
        for row in 0 ..< rows {
            let lo = batch.offsets[row], hi = batch.offsets[row + 1]
            var g = 0.0, seen = false, s = 0.0, c = 0
            var t = hi - 1
            while t >= lo {
                let x = batch.mask[t] != 0 ? r[t] : 0
                if !useMin {
                    g += x
                } else if compat {
                    g = t == hi - 1 ? x : min(x, g)             // suffix min over every token reward
                } else if at[t] != 0 && batch.mask[t] != 0 {
                    g = seen ? min(x, g) : x; seen = true        // suffix min over reward positions only
                }
                let out = batch.mask[t] != 0 ? g : 0
                ret[t] = out; s += out
                if batch.mask[t] != 0 { c &+= 1 }
                t -= 1
            }
            rowSum[row] = s; valid[row] = Double(c)
        }

        // Per-token leave-one-out baseline: O(G) scratch.
        var sumG = [Double](repeating: 0, count: batch.groupCount), sumL = sumG
        for row in 0 ..< rows { sumG[batch.group[row]] += rowSum[row]; sumL[batch.group[row]] += valid[row] }
        let width = Double((0 ..< rows).map { batch.length($0) }.max() ?? 0)
        for row in 0 ..< rows {
            let g = batch.group[row], others = sumG[g] - rowSum[row]
            let b: Double
            if compat {
                b = others / (Double(gi.size(g) - 1) * width)
            } else {
                let l = sumL[g] - valid[row]
                b = l > 0 ? others / l : 0
            }
            for t in batch.range(row) { ret[t] = batch.mask[t] != 0 ? ret[t] - b : 0 }
        }
        var adv = ret
        if try p.bool("adv_norm") {
            if compat {
                try whitenNoMeanEpsilon(&adv, mask: batch.mask, method: method)
            } else {
                try CreditKernels.whiten(&adv, mask: batch.mask, zeroMasked: true, method: method)
            }
        }
        return AdvantageOutput(advantages: adv, returns: ret)
    }

    /// Early verl's `masked_whiten` (used by the PURE verl branch and PRIME-RL/PRIME): `μ = Σ m x / Σ m` (no 1e-8),
    /// unbiased variance, `x ← (x − μ)/sqrt(var + 1e-8)`, then 0 at mask-0 positions. Throws for fewer than 2 valid tokens.
    static func whitenNoMeanEpsilon(_ x: inout [Double], mask: [UInt8], method: String) throws {
        var s = 0.0, c = 0
        for i in 0 ..< x.count where mask[i] != 0 { s += x[i]; c &+= 1 }
        guard c > 1 else {
            throw FineGrainError.unsupported(method: method, reason: "whitening needs at least 2 valid (mask-1) tokens in the batch, got \(c)")
        }
        let mu = s / Double(c)
        var ss = 0.0
        for i in 0 ..< x.count where mask[i] != 0 { let d = x[i] - mu; ss += d * d }
        let inv = 1 / (ss / Double(c) * Double(c) / Double(c - 1) + MaskedStats.whitenEpsilon).squareRoot()
        for i in 0 ..< x.count { x[i] = mask[i] != 0 ? (x[i] - mu) * inv : 0 }
    }
}
