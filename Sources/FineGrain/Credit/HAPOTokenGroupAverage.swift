// HAPO's Token-Level Group Average advantage: GRPO statistics computed over the group's tokens instead of its
// responses. Spec: credit_assignment.md §11, token_losses.md §B.2.

/// Token-level group average advantage of HAPO ("From Uniform to Heterogeneous: Tailoring Policy Optimization
/// to Every Token's Nature", 2025, arXiv 2509.16591). Reference: starriver030515/HAPO
/// `compute_hapo_outcome_advantage`.
///
/// The trick: every valid token of response i carries its score R_i, and the group mean and std are taken over
/// the pooled tokens, so a long response weighs as much as its length:
/// `mu_g = sum_i n_i R_i / sum_i n_i`, `sigma_g = sqrt(sum_i n_i (R_i - mu_g)^2 / sum_i n_i)` (population),
/// `a_i = (R_i - mu_g) / (sigma_g + epsilon)` (or `R_i - mu_g`), `A = a_i * m`, `returns == advantages`, with
/// `n_i` the mask-1 token count. Smoothing fallback: if any `|a| >= 5` in the group, the whole group takes the
/// plain GRPO advantages (unbiased std, group of one: mean 0 / std 1). A group of one has `sigma = 0`, so
/// `a = 0` on its tokens (not GRPO's `R/(1+eps)`); a group without valid tokens gets 0.
///
/// Paper default vs reference (`reference_compatible`, default false): the reference also writes
/// `(0 - mu_g)/(sigma_g + epsilon)` at mask-0 positions instead of 0 and includes those positions in the
/// `|a| >= 5` test (so a singleton with a hole or padding falls back to GRPO), and a group without valid tokens
/// gets NaN. With `true` this is reproduced over the rows as given (pass padded full-width rows for bit-exactness).
public enum HAPOTokenGroupAverage {
    public static let info = MethodInfo(
        name: "hapo_token_group_average", kind: .estimator,
        summary: "Outcome advantage normalised by token-pooled group statistics (HAPO), GRPO fallback when |A| >= 5",
        paper: Citation("From Uniform to Heterogeneous: Tailoring Policy Optimization to Every Token's Nature", 2025, arxiv: "2509.16591"),
        formula: "mu_g = sum n_i R_i / sum n_i, sigma_g = population std over pooled tokens; a_i = (R_i - mu_g)/(sigma_g + epsilon); GRPO for the group if any |a| >= fallback_threshold; A = a_i * m",
        params: [
            .bool("norm_adv_by_std_in_grpo", true, "divide by the pooled std"),
            .number("epsilon", 1e-6, "added to the std"),
            .number("fallback_threshold", 5, "a group with any |a| >= this uses GRPO advantages"),
            .bool("reference_compatible", false, "mask-0 positions hold (0-mu)/(sigma+eps) and enter the fallback test, as the reference"),
        ],
        requires: ["reward"])

    public static let estimator = AdvantageEstimator(info: info, compute: compute)
    public static let estimators: [AdvantageEstimator] = [estimator]

    public static func compute(_ batch: RolloutBatch, _ params: Params) throws -> AdvantageOutput {
        let norm = try params.bool("norm_adv_by_std_in_grpo"), eps = try params.double("epsilon")
        let limit = try params.double("fallback_threshold"), reference = try params.bool("reference_compatible")
        try params.require("epsilon", eps.isFinite && eps >= 0, "must be finite and >= 0")
        try params.require("fallback_threshold", limit > 0, "must be > 0")
        let s = try batch.scores(method: params.method)                          // [R]
        let gi = batch.groupIndex()
        let (grpoMean, grpoStd) = CreditKernels.groupMeanStd(s, gi)              // [G] fallback statistics
        var valid = [Int](repeating: 0, count: batch.count)                    // [R] n_i
        batch.mask.withUnsafeBufferPointer { m in batch.offsets.withUnsafeBufferPointer { off in
            for r in 0 ..< batch.count {
                var c = 0
                for i in off[r] ..< off[r &+ 1] { c &+= Int(m[i]) }
                valid[r] = c
            }
        } }
        var rowValue = [Double](repeating: 0, count: batch.count)             // [R] value at mask-1 tokens
        var padValue = [Double](repeating: 0, count: batch.count)             // [R] value at mask-0 tokens
        var fallbacks = 0
        for g in 0 ..< batch.groupCount {
            let members = gi.members[gi.start[g] ..< gi.start[g + 1]]
            var tokens = 0, sum = 0.0
            for r in members { tokens += valid[r]; sum += Double(valid[r]) * s[r] }
            guard tokens > 0 else {
                if reference { for r in members { rowValue[r] = .nan; padValue[r] = .nan } }   // mean of nothing
                continue
            }
            let mu = sum / Double(tokens)
            var ss = 0.0
            for r in members { let d = s[r] - mu; ss += Double(valid[r]) * d * d }
            let denom = norm ? (ss / Double(tokens)).squareRoot() + eps : 1
            var fallback = false
            for r in members {
                rowValue[r] = (s[r] - mu) / denom
                padValue[r] = reference ? (0 - mu) / denom : 0
                if valid[r] > 0 && abs(rowValue[r]) >= limit { fallback = true }
                if reference && valid[r] < batch.length(r) && abs(padValue[r]) >= limit { fallback = true }
            }
            if fallback {
                fallbacks += 1
                for r in members {                                             // plain GRPO (loop version)
                    rowValue[r] = norm ? (s[r] - grpoMean[g]) / (grpoStd[g] + eps) : s[r] - grpoMean[g]
                    padValue[r] = 0
                }
            }
        }
        var out = [Double](repeating: 0, count: batch.tokenCount)              // [N]
        batch.mask.withUnsafeBufferPointer { m in batch.offsets.withUnsafeBufferPointer { off in
            out.withUnsafeMutableBufferPointer { o in
                for r in 0 ..< batch.count {
                    let v = rowValue[r], p = padValue[r]
                    for i in off[r] ..< off[r &+ 1] { o[i] = m[i] != 0 ? v : p }
                }
            }
        } }
        return AdvantageOutput(advantages: out, returns: out, diagnostics: ["fallback_groups": Double(fallbacks)])
    }
}
