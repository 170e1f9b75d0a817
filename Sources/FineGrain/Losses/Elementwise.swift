import Foundation

/// One token's contribution in a fused elementwise loss pass.
@usableFromInline
struct TokenTerm {
    /// Loss element ℓ_t (before rollout-IS weight and aggregation).
    @usableFromInline var loss: Double
    /// dℓ_t / dlogprob_t.
    @usableFromInline var grad: Double
    /// Up to three 0/1 (or real) metric counters, averaged with `masked_mean` afterwards.
    @usableFromInline var c0: Double
    @usableFromInline var c1: Double
    @usableFromInline var c2: Double
    @inlinable init(_ loss: Double, _ grad: Double, _ c0: Double = 0, _ c1: Double = 0, _ c2: Double = 0) {
        self.loss = loss; self.grad = grad; self.c0 = c0; self.c1 = c1; self.c2 = c2
    }
}

/// Columns of a policy loss, checked once.
struct PolicyColumns {
    let logprob: [Double]
    let old: [Double]?
    let adv: [Double]
    let isw: [Double]?

    /// Arbitrary three columns through the same kernel (the value loss: vpreds, values, returns).
    init(columns a: [Double], _ b: [Double], _ c: [Double]) { logprob = a; old = b; adv = c; isw = nil }

    /// `needsOld`: whether the loss reads `old_logprobs` (the name a missing column is reported under).
    init(_ input: LossInput, method: String, needsOld: Bool = true, oldField: String = "old_logprobs") throws {
        try LossKernel.checkLayout(input, method: method)
        logprob = try input.require(input.logprob, "logprobs", method: method)
        old = needsOld ? try input.require(input.oldLogprob, oldField, method: method) : nil
        adv = try input.require(input.advantages, "advantages", method: method)
        isw = try input.rolloutISWeights.map { try input.require($0, "rollout_is_weights", method: method) }
    }
}

extension LossKernel {
    /// A fused elementwise policy loss: one pass computes ℓ_t, the metric counters and the scaled gradient
    /// `∂agg/∂ℓ_t · w_IS,t · dℓ_t/dlogprob_t`. Masked positions get gradient 0 and are not visited.
    /// Returns the aggregated value, the three metric means (`masked_mean` over the local batch) and the gradient.
    @inline(__always)
    static func elementwise(_ cols: PolicyColumns, _ input: LossInput, _ agg: Aggregation,
                            _ term: (_ lp: Double, _ old: Double, _ adv: Double, _ t: Int, _ row: Int) -> TokenTerm)
        -> (value: Double, metrics: (Double, Double, Double), gradient: [Double]) {
        let n = input.tokenCount
        let w = agg.weights(offsets: input.offsets, mask: input.mask)
        var grad = [Double](repeating: 0, count: n)
        let offsets = input.offsets
        let acc: LossAccumulator = cols.logprob.withUnsafeBufferPointer { lpp in
            (cols.old ?? cols.logprob).withUnsafeBufferPointer { oldp in
                cols.adv.withUnsafeBufferPointer { ap in
                    input.mask.withUnsafeBufferPointer { mp in
                        grad.withUnsafeMutableBufferPointer { gbuf in
                            let gp = gbuf.baseAddress!
                            return withOptionalPointer(cols.isw) { iswp in
                                LossKernel.run(offsets: offsets, tokenCount: n) { rows in
                                    var a = LossAccumulator()
                                    for i in rows {
                                        let f = w.rowFactor[i], rw = w.rowWeight[i]
                                        var s = 0.0
                                        for t in offsets[i] ..< offsets[i + 1] where mp[t] != 0 {
                                            let e = term(lpp[t], oldp[t], ap[t], t, i)
                                            if let iw = iswp {
                                                s += e.loss * iw[t]; gp[t] = e.grad * iw[t] * rw
                                            } else {
                                                s += e.loss; gp[t] = e.grad * rw
                                            }
                                            a.m0 += e.c0; a.m1 += e.c1; a.m2 += e.c2
                                        }
                                        a.value += f * s
                                    }
                                    return a
                                }
                            }
                        }
                    }
                }
            }
        }
        let v = w.validTokens
        return (acc.value * w.scale, (mean(acc.m0, v), mean(acc.m1, v), mean(acc.m2, v)), grad)
    }
}

/// Clip ranges with verl's fallbacks: `clip_ratio_low ?? clip_ratio`, `clip_ratio_high ?? clip_ratio`.
struct ClipRange {
    let low: Double
    let high: Double
    static let specs: [ParamSpec] = [
        .number("clip_ratio", 0.2, "PPO clip range ε (used for low/high when those are not given)"),
        .number("clip_ratio_low", nil, "lower clip range ε_low (ratio >= 1 - ε_low); default clip_ratio"),
        .number("clip_ratio_high", nil, "upper clip range ε_high (ratio <= 1 + ε_high; DAPO clip-higher 0.28); default clip_ratio"),
    ]
    init(_ p: Params) throws {
        let base = p.optionalDouble("clip_ratio")
        guard let lo = p.optionalDouble("clip_ratio_low") ?? base else {
            throw FineGrainError.invalidParameter(name: "clip_ratio_low", method: p.method, reason: "neither clip_ratio_low nor clip_ratio is set")
        }
        guard let hi = p.optionalDouble("clip_ratio_high") ?? base else {
            throw FineGrainError.invalidParameter(name: "clip_ratio_high", method: p.method, reason: "neither clip_ratio_high nor clip_ratio is set")
        }
        try p.require("clip_ratio_low", lo >= 0 && lo.isFinite, "must be finite and >= 0, got \(lo)")
        try p.require("clip_ratio_high", hi >= 0 && hi.isFinite, "must be finite and >= 0, got \(hi)")
        low = lo; high = hi
    }
}

/// Log-ratio clamp shared by vanilla, SAPO, CISPO and DPPO: `d = clamp(x, -20, 20)`; the derivative passes
/// where `-20 <= x <= 20` (torch `clamp` backward is inclusive).
@inline(__always) func clampedLogRatio(_ x: Double) -> (d: Double, pass: Double) {
    if x < -20 { return (-20, 0) }
    if x > 20 { return (20, 0) }
    if x.isNaN { return (x, 1) }
    return (x, 1)
}

/// Runs `body` with a pointer to `a`'s storage, or nil.
@inline(__always) func withOptionalPointer<R>(_ a: [Double]?, _ body: (UnsafePointer<Double>?) -> R) -> R {
    guard let a else { return body(nil) }
    return a.withUnsafeBufferPointer { body($0.baseAddress) }
}

extension Double {
    /// `1` if the condition holds, else `0`.
    @inline(__always) init(_ b: Bool) { self = b ? 1 : 0 }
}
