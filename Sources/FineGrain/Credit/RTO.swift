/// RTO (Reinforced Token Optimization): PPO whose reward is the DPO-implied token reward
/// `beta1 * log(pi_dpo / pi_ref)` plus the sparse sequence reward-model score, with k1 KL shaping and GAE.
///
/// Paper: Zhong et al., "DPO Meets PPO: Reinforced Token Optimization for RLHF" (2024, arXiv 2404.18922).
/// Reference: zkshan2002/RTO @f2c1294 (`openrlhf/trainer/ppo_utils/experience_maker.py`, `openrlhf/models/utils.py`).
///
/// Formula, per response token t (mask m), `last` = the last mask-1 token:
///
///     d_t = clamp(beta1 * (log pi_dpo - log pi_ref)_t * m_t, -c, c)      (scale only if beta1 > 0, beta1 != 1; clip only if c > 0)
///     k_t = (log pi_old - log pi_ref)_t * m_t
///     r_t = [t = last] clamp(R, -10, 10) - max(beta_kl, 0) k_t + d_t
///     A, G = GAE(r, V; gamma, lam);  advantages = normalize_P5(A) (if normalize_advantages)
///
/// With pi_dpo = pi_ref it is PPO on the sequence reward; `sum_t d_t / beta1` (unclipped) is the DPO implicit
/// reward of the response. The reference places the score of an all-masked row on its last position; here such
/// a row gets no reward (`reference_compatible: true` reproduces the reference, including OpenRLHF's GAE
/// masking convention at interior holes).
public enum RTO {
    public static let info = MethodInfo(
        name: "rto", kind: .estimator,
        summary: "RTO: DPO token rewards beta1*log(pi_dpo/pi_ref) + sparse RM score - KL, then GAE (PPO)",
        paper: Citation("DPO Meets PPO: Reinforced Token Optimization for RLHF", 2024, arxiv: "2404.18922"),
        formula: "d_t = clamp(beta1*(logp_dpo - logp_ref)_t, ±c); r_t = [t=last]*clamp(R, ±10) - beta_kl*(logp_old - logp_ref)_t + d_t; A, G = GAE(r, V); advantages = (A - mean)/std",
        params: [
            .number("dpo_reward_scale", 0.05, "beta1 (applied only when > 0 and != 1)"),
            .number("dpo_reward_clip", 0.05, "clip of the DPO token reward (applied only when > 0)"),
            .number("kl_coef", 0.01, "beta of the k1 KL penalty (negative values count as 0)"),
            .number("reward_clip", 10.0, "the RM score is clamped to ±reward_clip"),
            .number("gamma", 1.0, "discount"), .number("lam", 0.95, "GAE lambda"),
            .bool("normalize_advantages", true, "OpenRLHF replay-buffer normalisation of the advantages (spec P5)"),
            .bool("reference_compatible", false, "reproduce the reference (empty rows, OpenRLHF hole masking)"),
        ],
        requires: ["dpo_logprobs", "ref_logprobs", "old_logprobs", "values", "reward"])

    public static let estimators = [AdvantageEstimator(info: info, compute: compute)]

    /// The reward stage: DPO token rewards `[N]`, k1 KL `[N]` and the shaped reward `[N]`.
    public static func rewards(_ b: RolloutBatch, _ p: Params) throws -> (dpo: [Double], kl: [Double], reward: [Double]) {
        let m = info.name
        let dpo = try b.extra("dpo_logprobs", method: m)
        let ref = try b.require(b.refLogprob, "ref_logprobs", method: m)
        let old = try RewardModelPPO.behaviourLogprobs(b, method: m)
        let score = try b.require(b.outcome, "reward", method: m)
        let scale = try p.double("dpo_reward_scale"), clip = try p.double("dpo_reward_clip")
        let beta = Swift.max(try p.double("kl_coef"), 0), rclip = try p.double("reward_clip")
        let refMode = try p.bool("reference_compatible")
        let n = b.tokenCount
        var d = RewardModelPPO.k1(dpo, ref, mask: b.mask)   // [N] log(pi_dpo / pi_ref) * m
        let kl = RewardModelPPO.k1(old, ref, mask: b.mask)  // [N]
        var reward = [Double](repeating: 0, count: n)       // [N]
        d.withUnsafeMutableBufferPointer { dp in kl.withUnsafeBufferPointer { kp in reward.withUnsafeMutableBufferPointer { rp in
            for i in 0 ..< n {
                var x = dp[i]
                if scale > 0 && scale != 1 { x *= scale }        // the paper's beta1
                if clip > 0 { x = Swift.min(Swift.max(x, -clip), clip) }
                dp[i] = x
                rp[i] = x - beta * kp[i]
            }
        } } }
        for r in 0 ..< b.count {
            // The sparse RM reward on the last valid token (reference: the last position of an all-masked row).
            let last = RewardModelPPO.lastValid(b.offsets, b.mask, r) ?? (refMode && b.length(r) > 0 ? b.offsets[r + 1] - 1 : nil)
            if let t = last { reward[t] += Swift.min(Swift.max(score[r], -rclip), rclip) }
        }
        return (d, kl, reward)
    }

    public static func compute(_ b: RolloutBatch, _ p: Params) throws -> AdvantageOutput {
        let m = info.name
        let values = try b.require(b.value, "values", method: m)
        let dpo = try b.extra("dpo_logprobs", method: m)
        let ref = try b.require(b.refLogprob, "ref_logprobs", method: m)
        let old = try RewardModelPPO.behaviourLogprobs(b, method: m)
        let score = try b.require(b.outcome, "reward", method: m)
        let scale = try p.double("dpo_reward_scale"), clip = try p.double("dpo_reward_clip")
        let beta = Swift.max(try p.double("kl_coef"), 0), rclip = try p.double("reward_clip")
        let openRLHF = try p.bool("reference_compatible")
        let gamma = try p.double("gamma"), lam = try p.double("lam")
        // `rewards`' per-token formula with its optional steps made unconditional and exact (x * 1, clamp to ±inf).
        let s = scale > 0 && scale != 1 ? scale : 1.0
        let c = clip > 0 ? clip : Double.infinity
        // One fused backward scan per row: the shaped reward of `rewards` (an all-masked row's reference score is
        // masked out by OpenRLHF's `r * m`), GAE and the advantage moments for the normalisation.
        var (adv, ret, moments) = dpo.withUnsafeBufferPointer { dp in ref.withUnsafeBufferPointer { rp in
            old.withUnsafeBufferPointer { op in score.withUnsafeBufferPointer { sp in b.offsets.withUnsafeBufferPointer { fp in
                let d = SharedPointer(dp), rf = SharedPointer(rp), o = SharedPointer(op), sc = SharedPointer(sp), off = SharedPointer(fp)
                return RewardModelPPO.fusedScan(offsets: b.offsets, mask: b.mask, values: values, gamma: gamma, lam: lam) { rows, gae in
                    guard let d = d.base, let rf = rf.base, let o = o.base, let sc = sc.base, let off = off.base else { return ShiftedMoments() }
                    let mk = gae.m, a = gae.a
                    var mom = ShiftedMoments()
                    for r in rows {
                        let lo = off[r], hi = off[r &+ 1]
                        for i in lo ..< hi {
                            let valid = mk[i] != 0
                            let x = Swift.min(Swift.max((valid ? d[i] - rf[i] : 0) * s, -c), c)
                            a[i] = x - beta * (valid ? o[i] - rf[i] : 0)
                        }
                        let last = RewardModelPPO.lastValid(mk, lo, hi)
                        if last >= 0 { a[last] += Swift.min(Swift.max(sc[r], -rclip), rclip) }
                        if openRLHF { gae.scanOpenRLHF(lo, hi, &mom) } else { gae.scan(lo, hi, &mom) }
                    }
                    return mom
                }
            } } }
        } }
        if try p.bool("normalize_advantages") { try RewardModelPPO.normalize(&adv, mask: b.mask, moments: moments, method: m) }
        return AdvantageOutput(advantages: adv, returns: ret)
    }
}
