/// Shared steps of the reward-model PPO pipelines in this folder (segment-level RM, Fine-Grained RLHF, RTO):
/// the behaviour-policy KL (k1) that shapes the reward, GAE on explicit token rewards through verl's kernel
/// (`GAE.scan`), and OpenRLHF's replay-buffer advantage normalisation (spec P5).
///
/// Paper: Schulman et al., "Proximal Policy Optimization Algorithms" (2017, arXiv 1707.06347), with GAE from
/// "High-Dimensional Continuous Control Using Generalized Advantage Estimation" (2015, arXiv 1506.02438).
enum RewardModelPPO {
    /// Log-probs of the policy that sampled the rollout: `old_logprobs`, or `logprobs` when only those are
    /// given (at experience-making time the two are the same model). Throws `missingField("old_logprobs")`.
    static func behaviourLogprobs(_ batch: RolloutBatch, method: String) throws -> [Double] {
        if let o = batch.oldLogprob { return o }
        if let l = batch.logprob { return l }
        throw FineGrainError.missingField(field: "old_logprobs", method: method)
    }

    /// k1 KL per token, `(log pi_old - log pi_ref) * m` `[N]`. With `float32` the difference is taken in
    /// Float, as OpenRLHF's `compute_approx_kl` does (`.float()`).
    static func k1(_ logp: [Double], _ ref: [Double], mask: [UInt8], float32: Bool = false) -> [Double] {
        let n = mask.count
        var out = [Double](repeating: 0, count: n)   // [N]
        logp.withUnsafeBufferPointer { lp in ref.withUnsafeBufferPointer { rp in mask.withUnsafeBufferPointer { mp in
            out.withUnsafeMutableBufferPointer { o in
                if float32 {
                    for i in 0 ..< n where mp[i] != 0 { o[i] = Double(Float(lp[i]) - Float(rp[i])) }
                } else {
                    for i in 0 ..< n where mp[i] != 0 { o[i] = lp[i] - rp[i] }
                }
            }
        } } }
        return out
    }

    /// GAE on explicit token rewards `[N]` with verl's kernel. Two hole conventions:
    ///
    /// * default (`openRLHFMasking == false`): verl's — mask-0 tokens are skipped (the value and advantage
    ///   carry over them); both outputs are then zeroed at mask-0 positions.
    /// * `openRLHFMasking`: OpenRLHF's `get_advantages_and_returns` — values and rewards are multiplied by
    ///   the mask and every position is a step (no carry). Reproduced by running the same kernel on `V * m`
    ///   with an all-ones mask. Identical to the default on right-padded rows; differs only at interior holes.
    static func gae(offsets: [Int], mask: [UInt8], values: [Double], rewards: [Double], gamma: Double, lam: Double,
                    openRLHFMasking: Bool) -> (advantages: [Double], returns: [Double]) {
        if openRLHFMasking {
            var vm = values, rm = rewards                                // [N] V * m, r * m
            let ones = [UInt8](repeating: 1, count: mask.count)          // [N]
            for i in 0 ..< vm.count where mask[i] == 0 { vm[i] = 0; rm[i] = 0 }
            return rm.withUnsafeBufferPointer { rp in
                GAE.scan(offsets: offsets, mask: ones, values: vm, rewards: CreditKernels.Rewards(token: rp.baseAddress, outcome: nil),
                         gamma: gamma, lam: lam)
            }
        }
        return rewards.withUnsafeBufferPointer { rp in
            let rw = CreditKernels.Rewards(token: rp.baseAddress, outcome: nil)
            var (a, g) = GAE.scan(offsets: offsets, mask: mask, values: values, rewards: rw, gamma: gamma, lam: lam)
            for i in 0 ..< a.count where mask[i] == 0 { a[i] = 0; g[i] = 0 }
            return (a, g)
        }
    }

    /// OpenRLHF's replay-buffer `normalize` (spec P5), batch-global: `mu = sum x / n`, `var = sum_m (x - mu)^2 / n`
    /// (population), `x <- (x - mu) / sqrt(max(var, 1e-8))`; mask-0 positions are set to 0 (the replay buffer
    /// drops them). Throws when no token is masked in.
    static func normalize(_ x: inout [Double], mask: [UInt8], method: String) throws {
        var s = 0.0, n = 0
        x.withUnsafeBufferPointer { xp in mask.withUnsafeBufferPointer { mp in
            for i in 0 ..< xp.count where mp[i] != 0 { s += xp[i]; n &+= 1 }
        } }
        guard n > 0 else {
            throw FineGrainError.unsupported(method: method, reason: "advantage normalisation needs at least 1 valid (mask-1) token, got none")
        }
        let mu = s / Double(n)
        var ss = 0.0
        x.withUnsafeBufferPointer { xp in mask.withUnsafeBufferPointer { mp in
            for i in 0 ..< xp.count where mp[i] != 0 { let d = xp[i] - mu; ss += d * d }
        } }
        let rstd = 1 / Swift.max(ss / Double(n), 1e-8).squareRoot()
        x.withUnsafeMutableBufferPointer { xp in mask.withUnsafeBufferPointer { mp in
            for i in 0 ..< xp.count { xp[i] = mp[i] != 0 ? (xp[i] - mu) * rstd : 0 }
        } }
    }

    /// Index of the last mask-1 token of response `r` (absolute), or nil if it has none.
    static func lastValid(_ offsets: [Int], _ mask: [UInt8], _ r: Int) -> Int? {
        var i = offsets[r + 1] - 1
        while i >= offsets[r] { if mask[i] != 0 { return i }; i -= 1 }
        return nil
    }
}
