// GRPO as two other frameworks compute it. Decision: separate registry entries (`trl_grpo`,
// `openrlhf_group_norm`) rather than a `convention` parameter of `grpo`, because their parameters differ
// (TRL's `scale_rewards`) and so does their singleton handling; `grpo` itself stays exactly verl's.
// Groups are FineGrain's group ids (TRL and OpenRLHF assume contiguous blocks of `n`; the maths is the same).
// Both broadcast one scalar per response over its mask-1 tokens; `returns == advantages`.

/// GRPO advantages as Hugging Face TRL's `GRPOTrainer` computes them (`_generate_and_score_completions`).
///
/// Paper: "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models" (2024,
/// arXiv 2402.03300); `scale_rewards = "batch"` is the "PPO Lite" scaling and `"none"` Dr. GRPO
/// ("Understanding R1-Zero-Like Training: A Critical Perspective", 2025).
///
/// Formula: `a_i = R_i - mean_g`, divided by `std + epsilon` (TRL: `1e-4`) unless `scale_rewards = "none"`;
/// `std` is the unbiased (Bessel, TRL's `std` / `nanstd`) std of the response's group (`"group"`, default)
/// or of every score in the batch (`"batch"`). As TRL, a group (or batch) of one has std 0, so a singleton's
/// advantage is `0 / (0 + epsilon) = 0`. `A = a_i * m`.
public enum TRLGRPO {
    public static let info = MethodInfo(
        name: "trl_grpo", kind: .estimator,
        summary: "GRPO with TRL's conventions: group mean, group/batch/no std scaling, epsilon 1e-4",
        paper: Citation("DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models", 2024, arxiv: "2402.03300"),
        formula: "a_i = (R_i - mean_g) / (std + 1e-4), std = unbiased group std (group) or batch std (batch), none: R_i - mean_g; n = 1: std 0; A = a_i * m",
        params: [
            .string("scale_rewards", "group", "std used for scaling: group, batch or none (TRL's GRPOConfig.scale_rewards)",
                    choices: ["group", "batch", "none"]),
            .number("epsilon", 1e-4, "added to the std (TRL hard-codes 1e-4)"),
        ],
        requires: ["reward"])

    public static let estimator = AdvantageEstimator(info: info) { batch, params in
        let mode = try params.string("scale_rewards"), eps = try params.double("epsilon")
        var s = try batch.scores(method: params.method)
        let gi = batch.groupIndex()
        let (mean, groupStd) = CreditKernels.groupMeanStd(s, gi)
        var batchStd = 0.0
        if mode == "batch" && s.count > 1 {
            let mu = s.reduce(0, +) / Double(s.count)
            batchStd = (s.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / Double(s.count - 1)).squareRoot()
        }
        for r in 0 ..< s.count {
            let g = batch.group[r], single = gi.size(g) < 2
            let centred = s[r] - (single ? s[r] : mean[g])     // TRL's mean of one element is itself
            switch mode {
            case "none": s[r] = centred
            case "batch": s[r] = centred / (batchStd + eps)
            default: s[r] = centred / ((single ? 0 : groupStd[g]) + eps)
            }
        }
        return CreditKernels.outcome(s, batch)
    }
}

/// OpenRLHF's `group_norm` advantage estimator (`--advantage_estimator group_norm`, its GRPO).
///
/// Paper: "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models" (2024,
/// arXiv 2402.03300), as implemented in "OpenRLHF: An Easy-to-use, Scalable and High-performance RLHF
/// Framework" (2024, arXiv 2405.11143).
///
/// Formula: `a_i = (R_i - mean_g) / (std_g + epsilon)` with the unbiased (`Tensor.std`) group std and
/// `epsilon = 1e-9`; OpenRLHF then places `a_i` on the last token and takes the undiscounted return-to-go
/// (`gamma` forced to 1), which without KL shaping is `a_i` on every valid token: `A = a_i * m`.
/// Decision: a group of one, where OpenRLHF's unbiased std is NaN, throws `invalidField("group")`.
public enum OpenRLHFGroupNorm {
    public static let info = MethodInfo(
        name: "openrlhf_group_norm", kind: .estimator,
        summary: "GRPO with OpenRLHF's group_norm conventions: unbiased group std, epsilon 1e-9",
        paper: Citation("OpenRLHF: An Easy-to-use, Scalable and High-performance RLHF Framework", 2024, arxiv: "2405.11143"),
        formula: "a_i = (R_i - mean_g) / (std_g + 1e-9) (unbiased std; groups of one rejected); A = a_i * m",
        params: [.number("epsilon", 1e-9, "added to the group std (OpenRLHF: 1e-9)")],
        requires: ["reward"])

    public static let estimator = AdvantageEstimator(info: info) { batch, params in
        let eps = try params.double("epsilon")
        var s = try batch.scores(method: params.method)
        let gi = batch.groupIndex()
        for k in 0 ..< batch.groupCount where gi.size(k) < 2 {
            throw FineGrainError.invalidField(field: "group",
                reason: "openrlhf_group_norm needs at least 2 responses per group (unbiased std of one is undefined); group \(batch.groupIDs[k]) has 1")
        }
        let (mean, std) = CreditKernels.groupMeanStd(s, gi)
        for r in 0 ..< s.count { let g = batch.group[r]; s[r] = (s[r] - mean[g]) / (std[g] + eps) }
        return CreditKernels.outcome(s, batch)
    }
}
