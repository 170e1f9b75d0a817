// TP-GRPO: thought-level process rewards with capability-adaptive shaping on top of GRPO.
// Spec: credit_assignment.md §10 [recon].

/// TP-GRPO advantages ("Good Learners Think Their Thinking: Generative PRM Makes Large Reasoning Model More
/// Efficient Math Learner", He, Mu, Liao, Cao, Liu, Qin, 2025, arXiv 2507.23317).
///
/// RECONSTRUCTION: the paper's code is not available; only the thought aggregation is specified reliably. This
/// implements the spec's reconstruction (§10(c)) and exposes every open choice as a parameter; do not treat it
/// as the paper's exact method.
///
/// Inputs: the outcome `reward`, steps `step_ends` and per-step labels `step_labels` (1 = correct, 0 =
/// incorrect, from a generative PRM). Formula:
/// 1. thoughts = maximal runs of consecutive steps with the same label (`thoughts(labels:)`);
/// 2. `a_i = GRPO(R)_i` (unbiased std, group of one: mean 0 / std 1);
/// 3. group proficiency `p_g` = fraction of responses with `R >= correct_threshold`;
/// 4. thought reward `rho = +kappa_plus` (correct thought) or `-kappa_minus` (incorrect), with
///    `kappa_plus = eta (1 - p_g)`, `kappa_minus = eta p_g` (`kappa = capability_adaptive`: weak penalties on hard
///    prompts, strong on easy ones) or `kappa_plus = kappa_minus = eta` (`constant`);
/// 5. `A[i,t] = a_i + rho_{thought(t)}` on the tokens of each thought (tokens after the last step end: `a_i`);
///    with `preserve_outcome_sign` a token whose sign differs from a non-zero `a_i` gets 0 (shaping may weaken
///    but never reverse the outcome signal); where `a_i = 0`, `zero_outcome = process_only` keeps `rho` and
///    `zero` gives 0. `A = 0` at mask-0 tokens; `returns == advantages`. A response without steps gets `a_i`.
public enum TPGRPO {
    public static let info = MethodInfo(
        name: "tp_grpo", kind: .estimator,
        summary: "[recon] GRPO plus thought-level process rewards (runs of equally-labelled steps) with capability-adaptive magnitude",
        paper: Citation("Good Learners Think Their Thinking: Generative PRM Makes Large Reasoning Model More Efficient Math Learner", 2025, arxiv: "2507.23317"),
        formula: "A[i,t] = a_i + rho_j(t), rho = +eta(1-p_g) for correct thoughts, -eta p_g for incorrect; 0 if sign(A) != sign(a_i) != 0",
        params: [
            .bool("norm_adv_by_std_in_grpo", true, "divide the outcome advantage by the group std"),
            .number("epsilon", 1e-6, "added to the group std"),
            .number("eta", 0.5, "scale of the thought rewards"),
            .string("kappa", "capability_adaptive", "thought reward magnitudes: capability_adaptive or constant",
                    choices: ["capability_adaptive", "constant"]),
            .number("correct_threshold", 0.5, "a response is correct (for p_g) when R >= this"),
            .bool("preserve_outcome_sign", true, "zero tokens whose shaped advantage reverses the outcome sign"),
            .string("zero_outcome", "process_only", "where a_i = 0: keep the process signal or give 0", choices: ["process_only", "zero"]),
        ],
        requires: ["reward", "step_ends", "step_labels"])

    public static let estimator = AdvantageEstimator(info: info, compute: compute)
    public static let estimators: [AdvantageEstimator] = [estimator]

    /// Thoughts of one response: `(first step, end step exclusive, label)` for each maximal run of equal labels.
    public static func thoughts(labels: ArraySlice<Double>) -> [(start: Int, end: Int, label: Double)] {
        var out = [(start: Int, end: Int, label: Double)]()
        var k = labels.startIndex
        while k < labels.endIndex {
            var e = k + 1
            while e < labels.endIndex && labels[e] == labels[k] { e += 1 }
            out.append((k, e, labels[k])); k = e
        }
        return out
    }

    public static func compute(_ batch: RolloutBatch, _ params: Params) throws -> AdvantageOutput {
        let eta = try params.double("eta"), threshold = try params.double("correct_threshold")
        let adaptive = try params.string("kappa") == "capability_adaptive"
        let keepSign = try params.bool("preserve_outcome_sign"), processOnly = try params.string("zero_outcome") == "process_only"
        try params.require("eta", eta.isFinite && eta >= 0, "must be finite and >= 0")
        guard let so = batch.stepOffsets, let ends = batch.stepEnds else {
            throw FineGrainError.missingField(field: "step_ends", method: params.method)
        }
        guard let labels = batch.extraStepColumns["step_labels"] else {
            throw FineGrainError.missingField(field: "step_labels", method: params.method)
        }
        if let s = labels.firstIndex(where: { $0 != 0 && $0 != 1 }) {
            throw FineGrainError.invalidField(field: "step_labels", reason: "step \(s) is \(labels[s]); must be 1 (correct) or 0 (incorrect)")
        }
        let scores = try batch.scores(method: params.method)                                  // [R]
        let a = try GRPO.scalars(batch, normByStd: try params.bool("norm_adv_by_std_in_grpo"),
                                 epsilon: try params.double("epsilon"), method: params.method) // [R]
        let gi = batch.groupIndex()
        var proficiency = [Double](repeating: 0, count: batch.groupCount)                      // [G] p_g
        for g in 0 ..< batch.groupCount {
            let ms = gi.members[gi.start[g] ..< gi.start[g + 1]]
            proficiency[g] = Double(ms.filter { scores[$0] >= threshold }.count) / Double(Swift.max(ms.count, 1))
        }
        var out = [Double](repeating: 0, count: batch.tokenCount)                              // [N]
        var thoughtCount = 0
        for r in 0 ..< batch.count {
            let p = proficiency[batch.group[r]], ai = a[r], base = batch.offsets[r]
            let plus = adaptive ? eta * (1 - p) : eta, minus = adaptive ? eta * p : eta
            @inline(__always) func shaped(_ rho: Double) -> Double {
                if ai == 0 { return processOnly ? rho : 0 }
                let v = ai + rho
                return keepSign && v * ai <= 0 ? 0 : v                                         // keep the outcome's sign
            }
            for i in batch.range(r) where batch.mask[i] != 0 { out[i] = shaped(0) }
            for th in thoughts(labels: labels[so[r] ..< so[r + 1]]) {                           // thought-level reward
                thoughtCount += 1
                let v = shaped(th.label == 1 ? plus : -minus)
                let lo = th.start == so[r] ? 0 : ends[th.start - 1], hi = ends[th.end - 1]
                for t in lo ..< hi where batch.mask[base + t] != 0 { out[base + t] = v }
            }
        }
        return AdvantageOutput(advantages: out, returns: out, diagnostics: ["thoughts": Double(thoughtCount)])
    }
}
