// Two further group-baseline outcome estimators registered in verl: OPO (length-weighted group mean) and
// GPG (mean-centred, rescaled by the fraction of responses with a non-zero score). Both broadcast one
// scalar per response over its mask-1 tokens; `returns == advantages`.

/// On-Policy RL with Optimal reward baseline, verl's `compute_opo_outcome_advantage`.
///
/// Paper: Hao et al., "On-Policy RL with Optimal Reward Baseline" (2025, arXiv 2505.23585).
///
/// Formula: `b_g = sum_{j in g} L_j R_j / sum_{j in g} L_j` with `L_j` = number of mask-1 tokens of response
/// `j`; a group of one has `b = 0`; `a_i = R_i - b_g`, `A = a_i * m`. Decision: a group of two or more whose
/// responses are all empty (`sum L = 0`) gets `b = 0` where verl divides 0 by 0 (NaN rows).
public enum OPO {
    public static let info = MethodInfo(
        name: "opo", kind: .estimator,
        summary: "Outcome minus the length-weighted group mean (optimal reward baseline)",
        paper: Citation("On-Policy RL with Optimal Reward Baseline", 2025, arxiv: "2505.23585"),
        formula: "b_g = sum_j L_j R_j / sum_j L_j (L = valid tokens; singleton: 0); A = (R_i - b_g) * m",
        params: [], requires: ["reward"])

    public static let estimator = AdvantageEstimator(info: info) { batch, params in
        var s = try batch.scores(method: params.method)
        let g = batch.groupCount
        var num = [Double](repeating: 0, count: g), den = num, cnt = [Int](repeating: 0, count: g)
        for r in 0 ..< s.count {
            let k = batch.group[r], len = Double(batch.validCount(r))
            num[k] += len * s[r]; den[k] += len; cnt[k] += 1
        }
        for r in 0 ..< s.count {
            let k = batch.group[r]
            if cnt[k] > 1 && den[k] > 0 { s[r] -= num[k] / den[k] }
        }
        return CreditKernels.outcome(s, batch)
    }
}

/// Group Policy Gradient advantages, verl's `compute_gpg_outcome_advantage`.
///
/// Paper: Chu et al., "GPG: A Simple and Strong Reinforcement Learning Baseline for Model Reasoning"
/// (2025, arXiv 2504.02546).
///
/// Formula: `alpha = B / max(1, #{i : R_i != 0})` over the whole batch, `a_i = alpha * (R_i - mean_g) / f_norm`
/// (group of one: mean 0; no std), `A = a_i * m`.
public enum GPG {
    public static let info = MethodInfo(
        name: "gpg", kind: .estimator,
        summary: "Mean-centred outcome rescaled by batch size over the count of non-zero scores",
        paper: Citation("GPG: A Simple and Strong Reinforcement Learning Baseline for Model Reasoning", 2025, arxiv: "2504.02546"),
        formula: "alpha = B / max(1, count(R != 0)); a_i = alpha * (R_i - mean_g) / f_norm (singleton: mean 0); A = a_i * m",
        params: [.number("f_norm", 1.0, "divisor of the advantage")],
        requires: ["reward"])

    public static let estimator = AdvantageEstimator(info: info) { batch, params in
        let fNorm = try params.double("f_norm")
        try params.require("f_norm", fNorm != 0 && fNorm.isFinite, "must be finite and non-zero, got \(fNorm)")
        var s = try batch.scores(method: params.method)
        let nonzero = s.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }
        let alpha = Double(s.count) / Double(Swift.max(1, nonzero))
        let mean = CreditKernels.groupMean(s, batch.groupIndex())
        for r in 0 ..< s.count { s[r] = alpha * (s[r] - mean[batch.group[r]]) / fNorm }
        return CreditKernels.outcome(s, batch)
    }
}
