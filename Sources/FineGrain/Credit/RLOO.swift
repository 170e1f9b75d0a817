// REINFORCE Leave-One-Out: each response's baseline is the mean score of the other members of its group.
// verl has two implementations that agree except on groups of one, so both are registered:
//   `rloo`            (loop version)       a singleton keeps its raw score R_i,
//   `rloo_vectorized` (bincount version)   a singleton gets 0 (spec §1.3 recommends 0).

/// RLOO advantages, verl's `compute_rloo_outcome_advantage` (loop version).
///
/// Paper: Ahmadian et al., "Back to Basics: Revisiting REINFORCE Style Optimization for Learning from Human
/// Feedback in LLMs" (2024, arXiv 2402.14740).
///
/// Formula: `a_i = R_i * n/(n-1) - mean_g * n/(n-1) = R_i - mean_{j != i} R_j` for a group of `n >= 2`;
/// a group of one keeps `a_i = R_i` (verl's loop quirk); `A = a_i * m`, `returns == advantages`.
public enum RLOO {
    public static let info = MethodInfo(
        name: "rloo", kind: .estimator,
        summary: "Leave-one-out group baseline (verl loop version: a singleton keeps its raw score)",
        paper: Citation("Back to Basics: Revisiting REINFORCE Style Optimization for Learning from Human Feedback in LLMs", 2024, arxiv: "2402.14740"),
        formula: "a_i = n/(n-1) * (R_i - mean_g) = R_i - mean_{j != i} R_j (n >= 2); singleton: a_i = R_i; A = a_i * m",
        params: [], requires: ["reward"])

    public static let estimator = AdvantageEstimator(info: info) { batch, params in
        var s = try batch.scores(method: params.method)
        let gi = batch.groupIndex()
        let mean = CreditKernels.groupMean(s, gi)
        for r in 0 ..< s.count {
            let g = batch.group[r], n = Double(gi.size(g))
            if gi.size(g) > 1 { s[r] = s[r] * n / (n - 1) - mean[g] * n / (n - 1) }
        }
        return CreditKernels.outcome(s, batch)
    }
}

/// RLOO advantages, verl's `compute_rloo_vectorized_outcome_advantage`.
///
/// Paper: "Back to Basics: Revisiting REINFORCE Style Optimization for Learning from Human Feedback in LLMs"
/// (2024, arXiv 2402.14740).
///
/// Formula: `a_i = (n * R_i - sum_g R) / max(n - 1, 1) * [n > 1]`, so a group of one gets 0 (unlike `rloo`);
/// `A = a_i * m`, `returns == advantages`.
public enum RLOOVectorized {
    public static let info = MethodInfo(
        name: "rloo_vectorized", kind: .estimator,
        summary: "Leave-one-out group baseline (verl vectorised version: a singleton gets 0)",
        paper: Citation("Back to Basics: Revisiting REINFORCE Style Optimization for Learning from Human Feedback in LLMs", 2024, arxiv: "2402.14740"),
        formula: "a_i = (n*R_i - sum_g R) / max(n-1, 1) if n > 1 else 0; A = a_i * m",
        params: [], requires: ["reward"])

    public static let estimator = AdvantageEstimator(info: info) { batch, params in
        var s = try batch.scores(method: params.method)
        var sum = [Double](repeating: 0, count: batch.groupCount), cnt = [Int](repeating: 0, count: batch.groupCount)
        for r in 0 ..< s.count { sum[batch.group[r]] += s[r]; cnt[batch.group[r]] += 1 }
        for r in 0 ..< s.count {
            let g = batch.group[r], c = Double(cnt[g])
            s[r] = cnt[g] > 1 ? (c * s[r] - sum[g]) / Swift.max(c - 1, 1) : 0
        }
        return CreditKernels.outcome(s, batch)
    }
}
