import FineGrain
import FineGrainTrainer
import Foundation

/// Helpers for the model tests: random arrays, central differences, error metrics.
enum FD {
    static func randn(_ n: Int, _ rng: inout SplitMix64, scale: Double = 1) -> [Float] {
        (0 ..< n).map { _ in Float(scale * rng.normal()) }
    }

    /// Central differences of `loss` w.r.t. every element of `x`: `(L(x + h e_i) - L(x - h e_i)) / 2h`.
    static func numericGradient(_ x: [Float], h: Float, _ loss: ([Float]) -> Double) -> [Double] {
        var x = x
        var g = [Double](repeating: 0, count: x.count)
        for i in 0 ..< x.count {
            let orig = x[i]
            x[i] = orig + h; let lp = loss(x)
            x[i] = orig - h; let lm = loss(x)
            x[i] = orig
            // use the actually representable step
            let step = Double(orig + h) - Double(orig - h)
            g[i] = (lp - lm) / step
        }
        return g
    }

    /// max_i |a_i - n_i| / max(|a_i|, |n_i|, floor * max_j |n_j|): relative error, with a floor so that
    /// entries near zero compare on the scale of the whole gradient.
    static func maxRelativeError(_ a: [Float], _ n: [Double], floor: Double = 0.05) -> Double {
        let scale = max(n.map { abs($0) }.max() ?? 0, 1e-12)
        var worst = 0.0
        for i in 0 ..< a.count {
            let d = abs(Double(a[i]) - n[i])
            let den = max(abs(Double(a[i])), abs(n[i]), floor * scale)
            worst = max(worst, d / den)
        }
        return worst
    }

    static func dot(_ a: [Float], _ w: [Float]) -> Double {
        var s = 0.0
        for i in 0 ..< a.count { s += Double(a[i]) * Double(w[i]) }
        return s
    }
}

/// A plain Double-precision forward of the same architecture, straight from the formulas (no shared code
/// with the Float kernels), used as the finite-difference oracle for the whole model.
enum ReferenceGPT {
    /// `sum_t w_t log p(targets_t) + sum_t u_t H_t` for `tokens [B, T]`.
    static func loss(config c: GPTConfig, params pf: [Float], tokens: [Int32], targets: [Int32],
                     weights: [Float], entropyWeights: [Float]?, B: Int, T: Int) -> Double {
        let p = pf.map(Double.init)
        let lay = ParameterLayout(config: c)
        let C = c.dModel, V = c.vocabSize, NH = c.nHeads, hs = C / NH, H = c.mlpHidden
        func layerNorm(_ x: [Double], _ w: Int, _ b: Int) -> [Double] {
            let m = x.reduce(0, +) / Double(C)
            let v = x.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(C)
            let r = 1 / (v + 1e-5).squareRoot()
            return (0 ..< C).map { (x[$0] - m) * r * p[w + $0] + p[b + $0] }
        }
        func linear(_ x: [Double], _ w: Int, _ b: Int?, _ inC: Int, _ outC: Int) -> [Double] {
            (0 ..< outC).map { o in
                var s = b.map { p[$0 + o] } ?? 0
                for i in 0 ..< inC { s += x[i] * p[w + o * inC + i] }
                return s
            }
        }
        func gelu(_ x: Double) -> Double { 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x))) }
        var total = 0.0
        for b in 0 ..< B {
            var xs: [[Double]] = (0 ..< T).map { t in
                let tok = Int(tokens[b * T + t])
                return (0 ..< C).map { p[lay.wte + tok * C + $0] + p[lay.wpe + t * C + $0] }
            }
            for o in lay.blocks {
                let qkv = xs.map { linear(layerNorm($0, o.ln1W, o.ln1B), o.qkvW, o.qkvB, C, 3 * C) }
                var y = [[Double]](repeating: [Double](repeating: 0, count: C), count: T)
                for h in 0 ..< NH {
                    for t in 0 ... (T - 1) {
                        var s = [Double](repeating: 0, count: t + 1)
                        let scale = 1 / Double(hs).squareRoot()
                        for t2 in 0 ... t {
                            var d = 0.0
                            for i in 0 ..< hs {
                                let qi: Double = qkv[t][h * hs + i]
                                let ki: Double = qkv[t2][C + h * hs + i]
                                d += qi * ki
                            }
                            s[t2] = d * scale
                        }
                        let m = s.max()!
                        s = s.map { exp($0 - m) }
                        let z = s.reduce(0, +)
                        for t2 in 0 ... t {
                            let a: Double = s[t2] / z
                            for i in 0 ..< hs {
                                let vi: Double = qkv[t2][2 * C + h * hs + i]
                                y[t][h * hs + i] += a * vi
                            }
                        }
                    }
                }
                for t in 0 ..< T {
                    let a = linear(y[t], o.projW, o.projB, C, C)
                    for i in 0 ..< C { xs[t][i] += a[i] }
                    let f = linear(layerNorm(xs[t], o.ln2W, o.ln2B), o.fcW, o.fcB, C, H).map(gelu)
                    let m = linear(f, o.fcProjW, o.fcProjB, H, C)
                    for i in 0 ..< C { xs[t][i] += m[i] }
                }
            }
            for t in 0 ..< T {
                let z = linear(layerNorm(xs[t], lay.lnfW, lay.lnfB), lay.wte, nil, C, V)
                let m = z.max()!
                let lse = m + log(z.map { exp($0 - m) }.reduce(0, +))
                let n = b * T + t
                total += Double(weights[n]) * (z[Int(targets[n])] - lse)
                if let u = entropyWeights {
                    let ent = -z.map { ($0 - lse) * exp($0 - lse) }.reduce(0, +)
                    total += Double(u[n]) * ent
                }
            }
        }
        return total
    }
}
