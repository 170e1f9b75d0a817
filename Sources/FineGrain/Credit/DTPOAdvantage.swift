// AdaptVision's Decoupled Turn Policy Optimization (DTPO) advantages: a tool-turn advantage and an outcome
// advantage, each group-normalised, assigned to the tokens of different turns. Spec: credit_assignment.md §12.

/// DTPO advantages ("AdaptVision: Efficient Vision-Language Models via Adaptive Visual Acquisition", Lin et al.,
/// 2025, arXiv 2512.03794). Reference: AdaptVision/AdaptVision `compute_DTPO_advantage`.
///
/// Inputs (JSONL): the outcome-level reward `reward` (plus `token_rewards`, summed as everywhere), the
/// tool-level reward `rewards.<tool_reward>` (default `rewards.tool`: bounding-box reward minus area penalty),
/// and per-token turn ids `turn_ids` (0 = prompt / tool output / padding, 1 = first model turn, 2 = second, ...).
///
/// Formula: `a_out = GRPO(R_out)`, `a_tool = GRPO(R_tool)` (unbiased std, group of one: mean 0 / std 1,
/// `epsilon` added to the std, always std-normalised); tool-turn tokens get `lambda_coeff * a_tool + a_out`,
/// answer-turn tokens get `a_out`, turn-0 and mask-0 tokens get 0; `returns == advantages`.
///
/// Paper default vs reference (`turn_roles`): the paper credits the tool-level reward to the tool-call turn and
/// the outcome to the answer. `"last_is_answer"` (default) makes each response's last model turn (its largest
/// turn id) the answer turn and every earlier model turn a tool turn, so a direct answer (one turn) gets `a_out`.
/// `"positional"` reproduces the reference: turn id 1 is always the tool turn (a direct answer gets
/// `lambda * a_tool + a_out`), id 2 the answer, ids >= 3 get 0.
public enum DTPOAdvantage {
    public static let info = MethodInfo(
        name: "dtpo", kind: .estimator,
        summary: "Decoupled turn advantages: lambda*a_tool + a_out on tool-call turns, a_out on the answer turn (AdaptVision)",
        paper: Citation("AdaptVision: Efficient Vision-Language Models via Adaptive Visual Acquisition", 2025, arxiv: "2512.03794"),
        formula: "a = (R - mean_g)/(std_g + epsilon) for R_out and R_tool; A = (lambda*a_tool + a_out) on tool turns, a_out on the answer turn, 0 on turn 0; A *= m",
        params: [
            .number("lambda_coeff", 0.3, "weight of the tool-level advantage on tool turns (run script: 0.3)"),
            .number("epsilon", 1e-6, "added to the group std"),
            .string("tool_reward", "tool", "key of the tool-level reward in the JSONL 'rewards' object"),
            .string("turn_roles", "last_is_answer", "which turns are tool turns: last_is_answer (paper) or positional (reference: id 1 tool, id 2 answer)",
                    choices: ["last_is_answer", "positional"]),
        ],
        requires: ["reward", "rewards.tool", "turn_ids"])

    public static let estimator = AdvantageEstimator(info: info, compute: compute)
    public static let estimators: [AdvantageEstimator] = [estimator]

    /// The per-response group-relative advantages `(tool [R], outcome [R])` (the reference's `adv_turn`, `adv_outcome`).
    public static func groupAdvantages(_ batch: RolloutBatch, _ params: Params) throws -> (tool: [Double], outcome: [Double]) {
        let eps = try params.double("epsilon"), key = try params.string("tool_reward")
        try params.require("epsilon", eps.isFinite && eps >= 0, "must be finite and >= 0")
        guard let tool = batch.namedRewards[key] else { throw FineGrainError.missingField(field: "rewards.\(key)", method: params.method) }
        guard tool.count == batch.count else {
            throw FineGrainError.invalidField(field: "rewards.\(key)", reason: "has \(tool.count) entries for \(batch.count) responses")
        }
        let gi = batch.groupIndex()
        func relative(_ x: [Double]) -> [Double] {
            let (mean, std) = CreditKernels.groupMeanStd(x, gi)                  // loop-GRPO statistics (P1)
            return x.indices.map { (x[$0] - mean[batch.group[$0]]) / (std[batch.group[$0]] + eps) }
        }
        return (relative(tool), relative(try batch.scores(method: params.method)))
    }

    public static func compute(_ batch: RolloutBatch, _ params: Params) throws -> AdvantageOutput {
        let lambda = try params.double("lambda_coeff"), positional = try params.string("turn_roles") == "positional"
        try params.require("lambda_coeff", lambda.isFinite, "must be finite")
        let turns = try batch.extra("turn_ids", method: params.method)           // [N]
        guard turns.count == batch.tokenCount else {
            throw FineGrainError.invalidField(field: "turn_ids", reason: "has \(turns.count) entries but tokens has \(batch.tokenCount)")
        }
        if let i = turns.firstIndex(where: { $0 < 0 || $0 != $0.rounded() }) {
            let r = batch.responseOf(token: i)
            throw FineGrainError.invalidField(field: "turn_ids", reason: "token \(i - batch.offsets[r]) of response \(r) is \(turns[i]); must be an integer >= 0")
        }
        let (aTool, aOut) = try groupAdvantages(batch, params)                  // [R], [R]
        var out = [Double](repeating: 0, count: batch.tokenCount)              // [N]
        turns.withUnsafeBufferPointer { tp in batch.mask.withUnsafeBufferPointer { m in out.withUnsafeMutableBufferPointer { o in
            for r in 0 ..< batch.count {
                let lo = batch.offsets[r], hi = batch.offsets[r + 1]
                let toolTurn = lambda * aTool[r] + aOut[r], answer = aOut[r]
                var last = 0.0                                                 // the row's answer turn id
                if !positional { for i in lo ..< hi { last = Swift.max(last, tp[i]) } }
                for i in lo ..< hi where m[i] != 0 && tp[i] > 0 {
                    if positional {
                        o[i] = tp[i] == 1 ? toolTurn : tp[i] == 2 ? answer : 0
                    } else {
                        o[i] = tp[i] == last ? answer : toolTurn
                    }
                }
            }
        } } }
        return AdvantageOutput(advantages: out, returns: out)
    }
}
