import Foundation

/// GMPO: geometric mean of sign-aware clipped token ratios, one ratio per sequence.
///
/// Paper: "Geometric-Mean Policy Optimization" (Zhao et al., 2025, arXiv 2507.20673).
///
/// Formula (verl `compute_policy_loss_geo_mean`): `x = lp − old` (no clamp), `σ = sign(A)`,
/// `x̃ = σ·min(σx, σ·clamp(x, −ε_low, ε_high))`; per response `n_i = Σ m`,
/// `r_i = exp(Σ_t m x̃ / (n_i + 1e-8))`, `Ā_i = Σ_t m A / (n_i + 1e-8)`,
/// `w_i = exp(Σ_t m log(w_IS + 1e-10) / (n_i + 1e-8))` (1 without IS weights);
/// `loss = mean over all R responses of −Ā_i r_i w_i` (`loss_agg_mode` is accepted and ignored, as in verl;
/// an empty response counts as 0 in the mean).
/// Gradient `∂loss/∂lp_t = −Ā_i r_i w_i / (R (n_i + 1e-8))` where the token's ratio is not clipped in the
/// restricting direction, else 0. Metrics: `pg_clipfrac = masked_mean(x ≠ clamp(x) ∧ A > 0)`,
/// `pg_clipfrac_lower = masked_mean(x ≠ clamp(x) ∧ A < 0)`, `ppo_kl = masked_mean(−x)`.
enum GeoMean {
    static let info = MethodInfo(
        name: "geo_mean", kind: .policyLoss,
        summary: "GMPO: sequence ratio = geometric mean of sign-aware clipped token ratios",
        paper: Citation("Geometric-Mean Policy Optimization", 2025, arxiv: "2507.20673"),
        formula: "x̃=sgn(A)·min(sgn(A)x, sgn(A)clip(x,−ε_low,ε_high)); r_i=exp(mean_t x̃); loss=mean_i(−Ā_i·r_i·w_i)",
        params: ClipRange.specs + [.string("loss_agg_mode", "token-mean", "accepted for compatibility and ignored (GMPO averages over responses)")],
        requires: ["logprobs", "old_logprobs", "advantages"])

    static func compute(_ input: LossInput, _ p: Params) throws -> LossOutput {
        let cols = try PolicyColumns(input, method: p.method)
        let clip = try ClipRange(p)
        let lp = cols.logprob, old = cols.old!, adv = cols.adv, mask = input.mask, isw = cols.isw
        let rows = input.count
        var grad = [Double](repeating: 0, count: input.tokenCount)
        var total = 0.0, clipHi = 0.0, clipLo = 0.0, kl = 0.0
        var valid = 0
        for i in 0 ..< rows {
            let range = input.offsets[i] ..< input.offsets[i + 1]
            var n = 0, sx = 0.0, sa = 0.0, sw = 0.0
            for t in range where mask[t] != 0 {
                let x = lp[t] - old[t]
                let sg: Double = adv[t] > 0 ? 1 : (adv[t] < 0 ? -1 : 0)
                let xc = Swift.min(Swift.max(x, -clip.low), clip.high)
                sx += sg * Swift.min(sg * x, sg * xc)
                sa += adv[t]
                if let isw { sw += Foundation.log(isw[t] + 1e-10) }
                n &+= 1
                kl -= x
                if x != xc { if adv[t] > 0 { clipHi += 1 } else if adv[t] < 0 { clipLo += 1 } }
            }
            valid += n
            let den = Double(n) + MaskedStats.meanEpsilon
            let ratio = Foundation.exp(sx / den)
            let abar = sa / den
            let w = isw == nil ? 1.0 : Foundation.exp(sw / den)
            let li = -abar * ratio * w
            total += li
            let g = li / (Double(rows) * den)
            for t in range where mask[t] != 0 {
                let x = lp[t] - old[t]
                let sg: Double = adv[t] > 0 ? 1 : (adv[t] < 0 ? -1 : 0)
                let xc = Swift.min(Swift.max(x, -clip.low), clip.high)
                grad[t] = (sg == 0 || sg * xc < sg * x) ? 0 : g
            }
        }
        let value = total / Double(rows)
        return LossOutput(value: value,
                          metrics: ["pg_clipfrac": LossKernel.mean(clipHi, valid), "ppo_kl": LossKernel.mean(kl, valid),
                                    "pg_clipfrac_lower": LossKernel.mean(clipLo, valid)],
                          gradient: grad)
    }
}
