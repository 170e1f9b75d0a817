import Foundation

/// Clip-Cov: detach the gradient of a few random high-covariance tokens.
///
/// Paper: "The Entropy Mechanism of Reinforcement Learning for Reasoning Language Models" (Cui et al., 2025,
/// arXiv 2505.22617).
///
/// Formula (verl `compute_policy_loss_clip_cov`): `ρ = exp(lp − old)` (no log-ratio clamp),
/// `ℓ1 = −Aρ`, `ℓ2 = −A·clamp(ρ, 1−ε_low, 1+ε_high)`; centred covariance
/// `cov_t = (A − masked_mean(A))·(lp − masked_mean(lp))`; candidates are valid tokens not clipped by PPO
/// (`ℓ2 > ℓ1`) with `lb < cov < ub`; `k = max(1, ⌊r·N⌋)` of them (`N` valid tokens) are drawn uniformly at
/// random without replacement and get `corr = 0`; `ℓ = max(ℓ1, ℓ2)·corr` (no dual clip), times
/// `rollout_is_weights`, then `agg_loss` (zeroed tokens still count in the denominators).
/// Gradient: `corr·(ℓ2 > ℓ1 ? 0 : −Aρ)`. Metrics: `pg_clipfrac = masked_mean(corr == 0)`,
/// `ppo_kl = masked_mean(old − lp)`.
///
/// Randomness: verl uses `torch.randperm`; FineGrain draws with a SplitMix64 generator seeded by the `seed`
/// parameter (a partial Fisher–Yates shuffle of the candidate list in token order), so a call is
/// reproducible. When `k >= #candidates` every candidate is taken and the result does not depend on the seed
/// (these are the cases the golden files check).
enum ClipCov {
    static let info = MethodInfo(
        name: "clip_cov", kind: .policyLoss,
        summary: "Clip-Cov: PPO clip plus gradient detachment of random tokens whose advantage/log-prob covariance lies in (lb, ub)",
        paper: Citation("The Entropy Mechanism of Reinforcement Learning for Reasoning Language Models", 2025, arxiv: "2505.22617"),
        formula: "cov=(A−mean A)(lp−mean lp); pick ≤max(1,⌊r·N⌋) unclipped tokens with lb<cov<ub at random → corr=0; ℓ=max(−Aρ, −A·clip(ρ))·corr",
        params: ClipRange.specs + [
            .number("clip_cov_ratio", 0.0002, "fraction r of valid tokens to detach (> 0)"),
            .number("clip_cov_lb", 1.0, "lower covariance bound (exclusive)"),
            .number("clip_cov_ub", 5.0, "upper covariance bound (exclusive)"),
            .integer("seed", 0, "seed of the random choice among candidates (irrelevant when all candidates are taken)"),
        ] + Aggregation.specs(defaultMode: .tokenMean),
        requires: ["logprobs", "old_logprobs", "advantages"])

    static func compute(_ input: LossInput, _ p: Params) throws -> LossOutput {
        let cols = try PolicyColumns(input, method: p.method)
        let clip = try ClipRange(p)
        let ratio = try p.double("clip_cov_ratio"), lb = try p.double("clip_cov_lb"), ub = try p.double("clip_cov_ub")
        try p.require("clip_cov_ratio", ratio > 0, "clip_cov_ratio should be larger than 0, got \(ratio)")
        let seed = UInt64(truncatingIfNeeded: p.optionalInt("seed") ?? 0)
        let agg = try Aggregation.from(p)
        let lo = 1 - clip.low, hi = 1 + clip.high
        let n = input.tokenCount
        let lp = cols.logprob, old = cols.old!, adv = cols.adv, mask = input.mask
        let meanA = MaskedStats.maskedMean(adv, mask), meanLp = MaskedStats.maskedMean(lp, mask)
        var valid = 0
        var candidates = [Int]()
        for t in 0 ..< n where mask[t] != 0 {
            valid += 1
            let rho = Foundation.exp(lp[t] - old[t])
            let l1 = -adv[t] * rho, l2 = -adv[t] * Swift.min(Swift.max(rho, lo), hi)
            if l2 > l1 { continue }
            let cov = (adv[t] - meanA) * (lp[t] - meanLp)
            if cov > lb && cov < ub { candidates.append(t) }
        }
        let k = Swift.max(Int(ratio * Double(valid)), 1)
        var detached = [UInt8](repeating: 0, count: n)
        if k >= candidates.count {
            for t in candidates { detached[t] = 1 }
        } else {
            var rng = SplitMix64(seed: seed)
            for j in 0 ..< k {
                let pick = j + Int(rng.next() % UInt64(candidates.count - j))
                candidates.swapAt(j, pick)
                detached[candidates[j]] = 1
            }
        }
        let r = detached.withUnsafeBufferPointer { dp in
            LossKernel.elementwise(cols, input, agg) { lp, old, a, t, _ in
                let rho = Foundation.exp(lp - old)
                let l1 = -a * rho, l2 = -a * Swift.min(Swift.max(rho, lo), hi)
                let clipped = l2 > l1
                let corr = dp[t] != 0 ? 0.0 : 1.0
                return TokenTerm((clipped ? l2 : l1) * corr, clipped ? 0 : l1 * corr, 1 - corr, old - lp)
            }
        }
        return LossOutput(value: r.value, metrics: ["pg_clipfrac": r.metrics.0, "ppo_kl": r.metrics.1], gradient: r.gradient)
    }
}
