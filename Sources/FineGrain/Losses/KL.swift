import Foundation

/// Per-token KL estimators of verl's `kl_penalty`, each with its exact derivative w.r.t. the log-prob.
///
/// Reference: J. Schulman, "Approximating KL Divergence" (blog post, 2020, http://joschu.net/blog/kl-approx.html),
/// with `δ = lp − ref`:
///
/// | name | value | `∂/∂lp` |
/// |---|---|---|
/// | `kl`, `k1` | `δ` | 1 |
/// | `abs` | `|δ|` | `sign δ` (0 at 0) |
/// | `mse`, `k2` | `½δ²` | `δ` |
/// | `low_var_kl`, `k3` | `u = clamp(ref − lp, ±20)`, `clamp(e^u − u − 1, −10, 10)` | `1 − e^u`, 0 where a clamp is active |
///
/// A `+` suffix (`k1+`, `k3+`, ...) is the straight-through form: the value of the base estimator, the k2
/// gradient `δ` (unbiased KL gradient). `full` (whole-vocabulary KL) needs full distributions and is not
/// supported: `KLPenalty.estimator("full")` throws, like verl's `NotImplementedError`.
public enum KLPenalty {
    enum Base: String { case k1, abs, k2, k3 }

    static let baseOf: [String: Base] = ["kl": .k1, "k1": .k1, "abs": .abs, "mse": .k2, "k2": .k2, "low_var_kl": .k3, "k3": .k3]

    /// Every registered name, base and `+` forms.
    static let names: [String] = ["kl", "k1", "abs", "mse", "k2", "low_var_kl", "k3"].flatMap { [$0, $0 + "+"] }

    /// Looks up an estimator by verl name; `full` and unknown names throw.
    public static func estimator(_ name: String) throws -> KLEstimator {
        if name == "full" || name == "full+" {
            throw FineGrainError.unsupported(method: name,
                reason: "the full-vocabulary KL needs whole log-distributions, not per-token log-probs (verl raises NotImplementedError)")
        }
        return try Registry.kl(name)
    }

    /// Per-token KL and its derivative; throws on length mismatch or an unknown estimator.
    public static func compute(_ name: String, logprob: [Double], ref: [Double]) throws -> KLOutput {
        let e = try estimator(name)
        guard logprob.count == ref.count else {
            throw FineGrainError.invalidField(field: "ref_logprobs", reason: "has \(ref.count) entries but logprobs has \(logprob.count)")
        }
        return e.compute(logprob, ref)
    }

    static func info(_ name: String) -> MethodInfo {
        let st = name.hasSuffix("+")
        let base = baseOf[st ? String(name.dropLast()) : name]!
        let formula: String
        switch base {
        case .k1: formula = "kl = lp − ref"
        case .abs: formula = "kl = |lp − ref|"
        case .k2: formula = "kl = ½(lp − ref)²"
        case .k3: formula = "u = clamp(ref − lp, ±20); kl = clamp(e^u − u − 1, −10, 10)"
        }
        return MethodInfo(
            name: name, kind: .kl,
            summary: (st ? "straight-through " : "") + "\(base.rawValue) KL estimator" + (st ? " (value of \(base.rawValue), gradient of k2)" : ""),
            paper: Citation("Approximating KL Divergence (J. Schulman, blog post)", 2020),
            formula: formula + (st ? "; ∂/∂lp = lp − ref (straight-through k2)" : ""),
            requires: ["logprobs", "ref_logprobs"])
    }

    static func make(_ name: String) -> KLEstimator {
        let st = name.hasSuffix("+")
        let base = baseOf[st ? String(name.dropLast()) : name]!
        return KLEstimator(info: info(name)) { lp, ref in
            switch (base, st) {
            case (.k1, false): return run(lp, ref) { l, r in (l - r, 1) }
            case (.k1, true): return run(lp, ref) { l, r in (l - r, l - r) }
            case (.abs, false): return run(lp, ref) { l, r in let d = l - r; return (Swift.abs(d), d > 0 ? 1 : (d < 0 ? -1 : 0)) }
            case (.abs, true): return run(lp, ref) { l, r in let d = l - r; return (Swift.abs(d), d) }
            case (.k2, _): return run(lp, ref) { l, r in let d = l - r; return (0.5 * d * d, d) }
            case (.k3, false): return run(lp, ref) { l, r in let (v, g) = k3(l, r); return (v, g) }
            case (.k3, true): return run(lp, ref) { l, r in (k3(l, r).0, l - r) }
            }
        }
    }

    /// k3 value and derivative with both clamps (torch `clamp` passes the gradient at the bounds).
    @inline(__always) static func k3(_ lp: Double, _ ref: Double) -> (Double, Double) {
        let x = ref - lp
        let u = Swift.min(Swift.max(x, -20), 20)
        let eu = fastExp(u)   // |u| <= 20: inside fastExp's range; vectorisable, < 1e-15 relative error
        let k = eu - u - 1
        let pass = (x >= -20 && x <= 20 && k >= -10 && k <= 10) ? 1.0 : 0.0
        return (Swift.min(Swift.max(k, -10), 10), (1 - eu) * pass)
    }

    /// k3 value only (verl's `kl_penalty` returns no gradient): one read of each input, one write.
    public static func k3Values(_ lp: [Double], _ ref: [Double]) throws -> [Double] {
        let n = lp.count
        guard ref.count == n else {
            throw FineGrainError.invalidField(field: "ref_logprobs", reason: "has \(ref.count) entries but logprobs has \(n)")
        }
        var v = overwrittenDoubles(n)   // [N]
        lp.withUnsafeBufferPointer { lpp in ref.withUnsafeBufferPointer { rp in v.withUnsafeMutableBufferPointer { vb in
            let vp = vb.baseAddress!
            let cores = ProcessInfo.processInfo.activeProcessorCount
            let chunks = n > LossKernel.parallelThreshold && cores > 1 ? cores * 2 : 1
            func body(_ k: Int) {
                let lo = n * k / chunks, hi = n * (k + 1) / chunks
                var t = lo
                while t < hi {
                    let u = Swift.min(Swift.max(rp[t] - lpp[t], -20), 20)
                    vp[t] = Swift.min(Swift.max(fastExp(u) - u - 1, -10), 10)
                    t &+= 1
                }
            }
            if chunks == 1 { body(0) } else { parallelFor(chunks, body) }
        } } }
        return v
    }

    /// Fused elementwise pass, split over cores for large inputs. A length mismatch gives NaN everywhere
    /// (the throwing entry point is `compute`).
    @inline(__always)
    static func run(_ lp: [Double], _ ref: [Double], _ f: (Double, Double) -> (Double, Double)) -> KLOutput {
        let n = lp.count
        guard ref.count == n else {
            return KLOutput(values: [Double](repeating: .nan, count: n), gradient: [Double](repeating: .nan, count: n))
        }
        var v = overwrittenDoubles(n), g = overwrittenDoubles(n)   // [N] each, fully written below
        lp.withUnsafeBufferPointer { lpp in ref.withUnsafeBufferPointer { rp in
            v.withUnsafeMutableBufferPointer { vb in g.withUnsafeMutableBufferPointer { gb in
                let vp = vb.baseAddress!, gp = gb.baseAddress!
                let cores = ProcessInfo.processInfo.activeProcessorCount
                let chunks = n > LossKernel.parallelThreshold && cores > 1 ? cores * 2 : 1
                func body(_ k: Int) {
                    let lo = n * k / chunks, hi = n * (k + 1) / chunks
                    var t = lo
                    while t < hi {
                        let (a, b) = f(lpp[t], rp[t])
                        vp[t] = a; gp[t] = b
                        t &+= 1
                    }
                }
                if chunks == 1 { body(0) } else { parallelFor(chunks, body) }
            } }
        } }
        return KLOutput(values: v, gradient: g)
    }
}
