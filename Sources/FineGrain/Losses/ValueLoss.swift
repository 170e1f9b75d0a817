/// PPO clipped value-function loss.
///
/// Paper: "Proximal Policy Optimization Algorithms" (Schulman et al., 2017, arXiv 1707.06347), value clipping
/// as in the OpenAI baselines implementation it describes and verl's `compute_value_loss`.
///
/// Formula: `v̂ = clip(vpred, v − c, v + c)`, `ℓ = max((vpred − R)², (v̂ − R)²)`, `vf_loss = ½·agg_loss(ℓ)`.
/// Gradient w.r.t. `vpreds`: `½·w_t·2(vpred − R)` on the unclipped branch, 0 where `(v̂ − R)² > (vpred − R)²`;
/// exact ties follow torch (`max`/`min` split the gradient in halves). Metric
/// `vf_clipfrac = masked_mean((v̂ − R)² > (vpred − R)²)`.
enum ValueLoss {
    static let info = MethodInfo(
        name: "value_loss", kind: .valueLoss,
        summary: "PPO clipped value loss (gradient w.r.t. vpreds)",
        paper: Citation("Proximal Policy Optimization Algorithms", 2017, arxiv: "1707.06347"),
        formula: "v̂=clip(vpred, v−c, v+c); ℓ=max((vpred−R)², (v̂−R)²); vf_loss = 0.5·agg(ℓ)",
        params: [.number("cliprange_value", 0.5, "value clip range c (>= 0)")] + Aggregation.specs(defaultMode: .tokenMean),
        requires: ["vpreds", "values", "returns"])

    static func compute(_ input: LossInput, _ p: Params) throws -> LossOutput {
        try LossKernel.checkLayout(input, method: p.method)
        let vp = try input.require(input.vpreds, "vpreds", method: p.method)
        let v = try input.require(input.values, "values", method: p.method)
        let ret = try input.require(input.returns, "returns", method: p.method)
        let c = try p.double("cliprange_value")
        try p.require("cliprange_value", c >= 0, "must be >= 0, got \(c)")
        let agg = try Aggregation.from(p)
        let cols = PolicyColumns(columns: vp, v, ret)
        let r = LossKernel.elementwise(cols, input, agg) { x, old, rt, _, _ in
            let hi = old + c, lo = old - c
            // verl clip_by_value = max(min(x, hi), lo); torch splits the gradient at exact ties.
            let d1 = x < hi ? 1.0 : (x == hi ? 0.5 : 0)
            let y = Swift.min(x, hi)
            let d2 = y > lo ? 1.0 : (y == lo ? 0.5 : 0)
            let xc = Swift.max(y, lo)
            let e1 = x - rt, e2 = xc - rt
            let l1 = e1 * e1, l2 = e2 * e2
            let g: Double
            if l1 > l2 { g = 2 * e1 } else if l2 > l1 { g = 2 * e2 * d1 * d2 } else { g = e1 + e2 * d1 * d2 }
            return TokenTerm(Swift.max(l1, l2), 0.5 * g, Double(l2 > l1))
        }
        return LossOutput(value: 0.5 * r.value, metrics: ["vf_clipfrac": r.metrics.0], gradient: r.gradient)
    }
}
