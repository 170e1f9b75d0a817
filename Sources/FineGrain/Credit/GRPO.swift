// GRPO and its verl relatives: Dr. GRPO (no std), the vectorised float32 variant and pass@k.
// All are outcome estimators: one scalar per response from its score `R_i = sum_t r[i,t]` (verl sums every
// token reward, unmasked), broadcast over the response's mask-1 tokens; `returns == advantages`.

/// Group Relative Policy Optimization advantages, verl's `compute_grpo_outcome_advantage` (loop version).
///
/// Paper: Shao et al., "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models"
/// (2024, arXiv 2402.03300). With `norm_adv_by_std_in_grpo = false` this is Dr. GRPO's advantage, from Liu et
/// al., "Understanding R1-Zero-Like Training: A Critical Perspective" (2025, arXiv 2503.20783).
///
/// Formula: `a_i = (R_i - mean_g) / (std_g + epsilon)` with the unbiased (n-1) group std, or
/// `a_i = R_i - mean_g` without std; `A[i,t] = a_i * m[i,t]`. A group of one uses mean 0 and std 1, so its
/// advantage is `R_i / (1 + epsilon)` (not 0), as in verl. `epsilon` is added to the std, not the variance.
public enum GRPO {
    public static let info = MethodInfo(
        name: "grpo", kind: .estimator,
        summary: "Group-normalised outcome advantage (verl loop version; singleton: mean 0, std 1)",
        paper: Citation("DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models", 2024, arxiv: "2402.03300"),
        formula: "a_i = (R_i - mean_g) / (std_g + epsilon) (unbiased std), or R_i - mean_g if not norm_adv_by_std_in_grpo; A = a_i * m",
        params: [
            .bool("norm_adv_by_std_in_grpo", true, "divide by the group std (false = Dr. GRPO)"),
            .number("epsilon", 1e-6, "added to the group std"),
        ],
        requires: ["reward"])

    public static let estimator = AdvantageEstimator(info: info, compute: compute)

    public static func compute(_ batch: RolloutBatch, _ params: Params) throws -> AdvantageOutput {
        let a = try scalars(batch, normByStd: try params.bool("norm_adv_by_std_in_grpo"),
                            epsilon: try params.double("epsilon"), method: params.method)
        return CreditKernels.outcome(a, batch)
    }

    /// The per-response GRPO scalars `[R]` (before broadcasting).
    static func scalars(_ batch: RolloutBatch, normByStd: Bool, epsilon: Double, method: String) throws -> [Double] {
        var s = try batch.scores(method: method)
        let gi = batch.groupIndex()
        let (mean, std) = CreditKernels.groupMeanStd(s, gi)
        for r in 0 ..< s.count {
            let g = batch.group[r]
            s[r] = normByStd ? (s[r] - mean[g]) / (std[g] + epsilon) : s[r] - mean[g]
        }
        return s
    }
}

/// Dr. GRPO advantages: GRPO without the std division, registered on its own as `dr_grpo`.
///
/// Paper: Liu et al., "Understanding R1-Zero-Like Training: A Critical Perspective" (2025, arXiv 2503.20783).
/// Formula: `a_i = R_i - mean_g` (group of one: mean 0), `A = a_i * m`; identical to `grpo` with
/// `norm_adv_by_std_in_grpo = false`. Dr. GRPO's other change, a constant loss normaliser, belongs to the loss
/// aggregation (`seq-mean-token-sum-norm`), not to the advantage.
public enum DrGRPO {
    public static let info = MethodInfo(
        name: "dr_grpo", kind: .estimator,
        summary: "GRPO without std normalisation (mean-centred group outcome)",
        paper: Citation("Understanding R1-Zero-Like Training: A Critical Perspective", 2025, arxiv: "2503.20783"),
        formula: "a_i = R_i - mean_g (singleton: mean 0); A = a_i * m",
        params: [], requires: ["reward"])

    public static let estimator = AdvantageEstimator(info: info) { batch, params in
        return CreditKernels.outcome(try GRPO.scalars(batch, normByStd: false, epsilon: 0, method: params.method), batch)
    }
}

/// verl's vectorised GRPO, `compute_grpo_vectorized_outcome_advantage` (group statistics from
/// `verl.utils.groupwise.group_mean_std`, spec P2).
///
/// Paper: "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models" (2024).
///
/// Formula, in float32 as verl: per group `c = n`, `s1 = sum R`, `s2 = sum R^2`, `mean = s1 / c`,
/// `var = (s2 - s1^2 / c) / max(c - 1, 1)`, `std = sqrt(max(var, epsilon))` (so std >= sqrt(epsilon));
/// singleton: mean 0, std 1. Then, in Double, `a_i = (R_i - mean_g) / (std_g + epsilon)` (or `R_i - mean_g`),
/// `A = a_i * m`. Differs from `grpo` only when a group's spread is tiny (the variance floor) and by float32
/// rounding (about 1e-7 relative).
public enum GRPOVectorized {
    public static let info = MethodInfo(
        name: "grpo_vectorized", kind: .estimator,
        summary: "GRPO with verl's vectorised float32 group statistics (variance floored at epsilon)",
        paper: Citation("DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models", 2024, arxiv: "2402.03300"),
        formula: "float32: mean = s1/c, std = sqrt(max((s2 - s1^2/c)/max(c-1,1), epsilon)); a_i = (R_i - mean_g)/(std_g + epsilon); A = a_i * m",
        params: [
            .bool("norm_adv_by_std_in_grpo", true, "divide by the group std (false = Dr. GRPO)"),
            .number("epsilon", 1e-6, "variance floor inside the sqrt and addend to the std"),
        ],
        requires: ["reward"])

    public static let estimator = AdvantageEstimator(info: info, compute: compute)

    public static func compute(_ batch: RolloutBatch, _ params: Params) throws -> AdvantageOutput {
        let norm = try params.bool("norm_adv_by_std_in_grpo"), eps = try params.double("epsilon")
        var s = try batch.scores(method: params.method)
        let g = batch.groupCount
        var c = [Float](repeating: 0, count: g), s1 = c, s2 = c
        for r in 0 ..< s.count {           // index_add_ in row order, float32
            let k = batch.group[r], x = Float(s[r])
            c[k] += 1; s1[k] += x; s2[k] += x * x
        }
        var mean = [Double](repeating: 0, count: g), std = [Double](repeating: 1, count: g)
        let floor = Float(eps)
        for k in 0 ..< g where c[k] > 1 {
            let m = s1[k] / c[k]
            let v = (s2[k] - s1[k] * s1[k] / c[k]) / Swift.max(c[k] - 1, 1)
            mean[k] = Double(m)
            std[k] = Double(Swift.max(v, floor).squareRoot())
        }
        for r in 0 ..< s.count {
            let k = batch.group[r]
            s[r] = norm ? (s[r] - mean[k]) / (std[k] + eps) : s[r] - mean[k]
        }
        return CreditKernels.outcome(s, batch)
    }
}

/// Pass@k advantages, verl's `compute_grpo_passk_outcome_advantage`.
///
/// Paper: Tang et al., "Optimizing Language Models for Inference Time Objectives using Reinforcement
/// Learning" (2025, arXiv 2503.19595).
///
/// Formula: in each group only the best response gets a non-zero advantage, `R_max - R_second_max`, divided
/// by `std_g + epsilon` (unbiased std) if `norm_adv_by_std_in_grpo`; every other response gets 0; a tie at
/// the top gives 0. `A = a_i * m`. Every group needs at least 2 responses (verl raises otherwise).
public enum GRPOPassK {
    public static let info = MethodInfo(
        name: "grpo_passk", kind: .estimator,
        summary: "Pass@k outcome advantage: only each group's best response is credited, by its margin over the runner-up",
        paper: Citation("Optimizing Language Models for Inference Time Objectives using Reinforcement Learning", 2025, arxiv: "2503.19595"),
        formula: "a_best = (R_max - R_second) / (std_g + epsilon) (or without std); others 0; A = a_i * m",
        params: [
            .bool("norm_adv_by_std_in_grpo", true, "divide the margin by the group std"),
            .number("epsilon", 1e-6, "added to the group std"),
        ],
        requires: ["reward"])

    public static let estimator = AdvantageEstimator(info: info, compute: compute)

    public static func compute(_ batch: RolloutBatch, _ params: Params) throws -> AdvantageOutput {
        let norm = try params.bool("norm_adv_by_std_in_grpo"), eps = try params.double("epsilon")
        let s = try batch.scores(method: params.method)
        let gi = batch.groupIndex()
        let (_, std) = CreditKernels.groupMeanStd(s, gi)
        var a = [Double](repeating: 0, count: s.count)
        for k in 0 ..< batch.groupCount {
            let lo = gi.start[k], hi = gi.start[k + 1]
            guard hi - lo >= 2 else {
                throw FineGrainError.invalidField(field: "group",
                    reason: "pass@k needs at least 2 responses per group; group \(batch.groupIDs[k]) has \(hi - lo)")
            }
            // Top two scores; the first of equal maxima is the best (its margin is 0 anyway).
            var best = gi.members[lo], second = -Double.infinity
            for j in (lo + 1) ..< hi {
                let r = gi.members[j]
                if s[r] > s[best] { second = s[best]; best = r } else if s[r] > second { second = s[r] }
            }
            let margin = s[best] - second
            a[best] = norm ? margin / (std[k] + eps) : margin
        }
        return CreditKernels.outcome(a, batch)
    }
}
