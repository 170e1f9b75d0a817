import Foundation

/// KL-Cov: add a |log-ratio| penalty on the tokens with the largest advantage/log-prob covariance.
///
/// Paper: "The Entropy Mechanism of Reinforcement Learning for Reasoning Language Models" (Cui et al., 2025,
/// arXiv 2505.22617).
///
/// Formula (verl `compute_policy_loss_kl_cov`): over the valid tokens (flattened, constants),
/// `cov = (A − mean A)(lp − mean lp)` (plain means); the `k = max(1, ⌊N·r⌋)` tokens with the largest cov
/// (ties: lower token index first) get `ℓ = −Aρ + κ|lp − old|`, all others `ℓ = −Aρ`, `ρ = exp(lp − old)`
/// (no clamp, no clipping); times `rollout_is_weights`, then `agg_loss`.
/// Gradient `−Aρ + κ·sign(lp − old)` on selected tokens (0 for the penalty at lp == old), `−Aρ` elsewhere.
/// Metric `ppo_kl = masked_mean(|lp − old|)`. `ppo_kl_coef` κ is required (verl's yaml says 0.1, its code
/// falls back to 1.0); `kl_cov_ratio` must lie in (0, 1].
enum KLCov {
    static let info = MethodInfo(
        name: "kl_cov", kind: .policyLoss,
        summary: "KL-Cov: |lp−old| penalty on the top-k covariance tokens, no clipping",
        paper: Citation("The Entropy Mechanism of Reinforcement Learning for Reasoning Language Models", 2025, arxiv: "2505.22617"),
        formula: "cov=(A−mean A)(lp−mean lp); top max(1,⌊N·r⌋) tokens: ℓ=−Aρ+κ|lp−old|, others ℓ=−Aρ; loss=agg(ℓ·w_IS)",
        params: [.number("kl_cov_ratio", 0.0002, "fraction r of valid tokens penalised, in (0, 1]"),
                 .number("ppo_kl_coef", nil, "penalty coefficient κ (required; verl yaml 0.1)")]
            + Aggregation.specs(defaultMode: .tokenMean),
        requires: ["logprobs", "old_logprobs", "advantages"])

    static func compute(_ input: LossInput, _ p: Params) throws -> LossOutput {
        let cols = try PolicyColumns(input, method: p.method)
        let ratio = try p.double("kl_cov_ratio")
        try p.require("kl_cov_ratio", ratio > 0 && ratio <= 1, "kl_cov_ratio must lie in (0, 1], got \(ratio)")
        let kappa = try p.double("ppo_kl_coef")
        let agg = try Aggregation.from(p)
        let n = input.tokenCount
        let lp = cols.logprob, adv = cols.adv, mask = input.mask
        var idx = [Int]()
        var sa = 0.0, sl = 0.0
        for t in 0 ..< n where mask[t] != 0 { idx.append(t); sa += adv[t]; sl += lp[t] }
        var selected = [UInt8](repeating: 0, count: n)
        if !idx.isEmpty {
            let ma = sa / Double(idx.count), ml = sl / Double(idx.count)
            let k = Swift.max(1, Int(Double(idx.count) * ratio))
            let cov = idx.map { (adv[$0] - ma) * (lp[$0] - ml) }
            let order = (0 ..< idx.count).sorted { cov[$0] != cov[$1] ? cov[$0] > cov[$1] : $0 < $1 }
            for j in order.prefix(k) { selected[idx[j]] = 1 }
        }
        let r = selected.withUnsafeBufferPointer { sp in
            LossKernel.elementwise(cols, input, agg) { lp, old, a, t, _ in
                let x = lp - old
                let rho = Foundation.exp(x)
                let ax = Swift.abs(x)
                if sp[t] != 0 {
                    let sgn: Double = x > 0 ? 1 : (x < 0 ? -1 : 0)
                    return TokenTerm(-a * rho + kappa * ax, -a * rho + kappa * sgn, ax)
                }
                return TokenTerm(-a * rho, -a * rho, ax)
            }
        }
        return LossOutput(value: r.value, metrics: ["ppo_kl": r.metrics.0], gradient: r.gradient)
    }
}
