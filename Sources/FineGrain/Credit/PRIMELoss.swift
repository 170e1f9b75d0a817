import Foundation

// PRIME's online update of the implicit PRM and its data filter.
//
// Paper: "Process Reinforcement through Implicit Rewards" (Cui et al., 2025, arXiv 2502.01456). The implicit PRM
// π_φ is trained on outcome labels only, with a cross-entropy loss on its sequence-level implicit reward
// β·Σ_t log(π_φ/π_ref) (reference: `compute_ce_dpo_loss_rm`, identical in PRIME-RL/PRIME and verl recipe/prime).

/// The implicit PRM's cross-entropy loss, registered as the loss `prime_ce`.
///
/// Paper: "Process Reinforcement through Implicit Rewards" (2025, arXiv 2502.01456). Formula:
/// `s_i = Σ_t m_t (lp_φ − lp_ref)`, `p_i = σ(β s_i)`, `ℓ = mean_i −[a_i log p_i + (1 − a_i) log(1 − p_i)]` with each log
/// clamped at −100 (torch's `binary_cross_entropy`); gradient w.r.t. the PRM log-probs
/// `∂ℓ/∂lp_φ,t = m_t·β·(p_i − a_i)/max(p_i(1−p_i), 1e-12)·p_i(1−p_i)/B` (= `m_t β (p_i − a_i)/B` unless saturated).
///
/// Inputs: `logprob` = the PRM's log-probs of the response tokens (differentiated), `refLogprob` = the frozen
/// reference's, `returns` = the verifier label `acc_i ∈ [0, 1]` repeated on every token of response i.
public enum PRIMELoss {
    public static let info = MethodInfo(
        name: "prime_ce", kind: .policyLoss,
        summary: "PRIME implicit-PRM update: BCE(σ(β·Σ_t log π_φ/π_ref), acc), gradient w.r.t. the PRM log-probs",
        paper: PRIME.paper,
        formula: "p_i = σ(β Σ_t m_t (lp_φ − lp_ref)); ℓ = mean_i −[a_i log p_i + (1−a_i) log(1−p_i)] (logs ≥ −100); ∂ℓ/∂lp_φ,t = m_t β (p_i − a_i)/B",
        params: [.number("beta", 0.05, "β of the implicit reward (PRIME's beta_train)")],
        requires: ["prm_logprobs (as logprobs)", "prm_ref_logprobs (as ref_logprobs)", "reward (as returns, repeated per token)"])

    public static let losses: [Loss] = [Loss(info: info, compute: compute)]

    static func compute(_ input: LossInput, _ p: Params) throws -> LossOutput {
        let lp = try input.require(input.logprob, "logprobs", method: p.method)
        let ref = try input.require(input.refLogprob, "ref_logprobs", method: p.method)
        let label = try input.require(input.returns, "returns", method: p.method)
        var acc = [Double](repeating: 0, count: input.count)                         // [R]
        for r in 0 ..< input.count {
            let lo = input.offsets[r], hi = input.offsets[r + 1]
            guard hi > lo else { continue }
            acc[r] = label[lo]
            for t in lo ..< hi where label[t] != acc[r] {
                throw FineGrainError.invalidField(field: "returns", reason: "response \(r): the label must be the same on every token (token \(t - lo) has \(label[t]), token 0 has \(acc[r]))")
            }
            guard acc[r] >= 0 && acc[r] <= 1 else {
                throw FineGrainError.invalidField(field: "returns", reason: "response \(r): the label acc must lie in [0, 1], got \(acc[r])")
            }
        }
        return try ceLoss(logprob: lp, ref: ref, acc: acc, offsets: input.offsets, mask: input.mask, beta: try p.double("beta"))
    }

    /// The loss value and `∂ℓ/∂logprob` `[N]` for explicit per-response labels `acc` `[R]`.
    public static func ceLoss(logprob: [Double], ref: [Double], acc: [Double], offsets: [Int], mask: [UInt8], beta: Double) throws -> LossOutput {
        let rows = offsets.count - 1
        guard acc.count == rows else { throw FineGrainError.invalidField(field: "reward", reason: "has \(acc.count) entries for \(rows) responses") }
        guard rows > 0 else { throw FineGrainError.invalidField(field: "rollouts", reason: "the batch is empty (0 responses)") }
        var grad = [Double](repeating: 0, count: logprob.count)                      // [N]
        var loss = 0.0, correct = 0.0
        let b = Double(rows)
        for r in 0 ..< rows {
            var s = 0.0
            for t in offsets[r] ..< offsets[r + 1] where mask[t] != 0 { s += logprob[t] - ref[t] }
            let x = beta * s
            let pr = x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))             // σ(β s_i)
            let a = acc[r]
            loss -= (a * max(log(pr), -100) + (1 - a) * max(log(1 - pr), -100)) / b
            let v = pr * (1 - pr)
            let d = beta * (pr - a) / max(v, 1e-12) * v / b                          // torch's clamped BCE backward
            for t in offsets[r] ..< offsets[r + 1] where mask[t] != 0 { grad[t] = d }
            if (pr > 0.5) == (a > 0.5) { correct += 1 }
        }
        return LossOutput(value: loss, metrics: ["prm_outcome_accuracy": correct / b], gradient: grad)
    }
}

extension PRIME {
    /// PRIME's online-filter (paper §"data filtering", reference `accuracy_lower_bound/upper_bound`): keep the
    /// responses of prompts whose group accuracy lies in `[lower, upper]`. Returns one flag per response `[R]`.
    public static func accuracyFilter(_ batch: RolloutBatch, lower: Double = 0.2, upper: Double = 0.8) throws -> [Bool] {
        guard let acc = batch.outcome else { throw FineGrainError.missingField(field: "reward", method: "prime accuracy filter") }
        var sum = [Double](repeating: 0, count: batch.groupCount), cnt = sum
        for r in 0 ..< batch.count { sum[batch.group[r]] += acc[r]; cnt[batch.group[r]] += 1 }
        return (0 ..< batch.count).map { r in
            let m = sum[batch.group[r]] / cnt[batch.group[r]]
            return m >= lower && m <= upper
        }
    }
}
