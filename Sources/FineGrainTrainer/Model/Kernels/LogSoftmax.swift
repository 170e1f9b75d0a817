import Foundation

/// Outputs of the LM head, per position, from logits `z [N, V]` at temperature `tau` (`z' = z / tau`):
/// stable log-softmax `log p_j = z'_j - logsumexp(z')` (max-shifted, exp-sum in Double),
/// the log-probability of a target `log p_y`, and the entropy `H = -sum_j p_j log p_j = lse - sum_j p_j z'_j`.
///
/// Backward, for a scalar loss with `g_t = dL/d log p_{y_t}` and `e_t = dL/dH_t`:
/// `dL/dz_j = [g (1[j = y] - p_j) - e p_j (log p_j + H)] / tau`.
public enum LogSoftmax {
    /// logprobs [N] (optional) = log p(targets [N]); entropies [N] (optional). logits [N, V]. Eight lanes
    /// of Float per step (`exp8`) when `V` is a multiple of 8, else `forwardReference`.
    public static func forward(logprobs: UnsafeMutablePointer<Float>?, entropies: UnsafeMutablePointer<Float>?,
                               logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                               N: Int, V: Int, temperature: Float = 1) {
        guard V % 8 == 0 else {
            return forwardReference(logprobs: logprobs, entropies: entropies, logits: logits, targets: targets,
                                    N: N, V: V, temperature: temperature)
        }
        let invTau = 1 / temperature
        Parallel.forEach(N, costPerItem: 8 &* V) { n in
            let z = logits + n &* V
            let lse = logSumExp8(z, V, invTau)
            if let logprobs { logprobs[n] = z[Int(targets[n])] * invTau - lse }
            if let entropies {
                let rz = UnsafeRawPointer(z), it = SIMD8<Float>(repeating: invTau), lv = SIMD8<Float>(repeating: lse)
                var acc = SIMD8<Float>()
                var j = 0
                while j < V {
                    let zj = rz.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self) * it
                    acc += exp8(zj - lv) * zj
                    j &+= 8
                }
                entropies[n] = lse - acc.sum()
            }
        }
    }

    /// Writes (does not accumulate) `dlogits [N, V]` from `dLogprob [N]` and optional `dEntropy [N]`.
    /// Rows with both coefficients zero (padding) get exact zeros. Float, eight lanes per step, when `V` is a
    /// multiple of 8; else `backwardReference`.
    public static func backward(dlogits: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>,
                                targets: UnsafePointer<Int32>, dLogprob: UnsafePointer<Float>,
                                dEntropy: UnsafePointer<Float>?, N: Int, V: Int, temperature: Float = 1) {
        guard V % 8 == 0 else {
            return backwardReference(dlogits: dlogits, logits: logits, targets: targets, dLogprob: dLogprob,
                                     dEntropy: dEntropy, N: N, V: V, temperature: temperature)
        }
        let invTau = 1 / temperature
        let it = SIMD8<Float>(repeating: invTau)
        Parallel.forEach(N, costPerItem: 10 &* V) { n in
            let z = logits + n &* V, dz = dlogits + n &* V
            let g = dLogprob[n], e = dEntropy?[n] ?? 0
            if g == 0 && e == 0 {
                dz.update(repeating: 0, count: V)
                return
            }
            let rz = UnsafeRawPointer(z), rd = UnsafeMutableRawPointer(dz)
            let lse = logSumExp8(z, V, invTau)
            let lv = SIMD8<Float>(repeating: lse)
            var h: Float = 0
            if e != 0 {
                var acc = SIMD8<Float>()
                var j = 0
                while j < V {
                    let zj = rz.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self) * it
                    acc += exp8(zj - lv) * zj
                    j &+= 8
                }
                h = lse - acc.sum()
            }
            let gv = SIMD8<Float>(repeating: -g * invTau), ev = SIMD8<Float>(repeating: -e * invTau), hv = SIMD8<Float>(repeating: h)
            var j = 0
            while j < V {
                let lp = rz.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self) * it - lv
                let p = exp8(lp)
                var d = gv * p
                if e != 0 { d += ev * p * (lp + hv) }
                rd.storeBytes(of: d, toByteOffset: j &* 4, as: SIMD8<Float>.self)
                j &+= 8
            }
            dz[Int(targets[n])] += g * invTau
        }
    }

    /// Reference forward (Double, scalar): logprobs [N] (optional) = log p(targets [N]); entropies [N]
    /// (optional). logits [N, V].
    public static func forwardReference(logprobs: UnsafeMutablePointer<Float>?, entropies: UnsafeMutablePointer<Float>?,
                               logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                               N: Int, V: Int, temperature: Float = 1) {
        let invTau = Double(1 / temperature)
        Parallel.forEach(N, costPerItem: 30 &* V) { n in
            let z = logits + n &* V
            let (lse, maxz) = logSumExp(z, V, invTau)
            _ = maxz
            if let logprobs { logprobs[n] = Float(Double(z[Int(targets[n])]) * invTau - lse) }
            if let entropies {
                var s = 0.0
                for j in 0 ..< V {
                    let zj = Double(z[j]) * invTau
                    s += Foundation.exp(zj - lse) * zj
                }
                entropies[n] = Float(lse - s)
            }
        }
    }

    /// Reference backward (Double, scalar): writes (does not accumulate) `dlogits [N, V]` from
    /// `dLogprob [N]` and optional `dEntropy [N]`. Rows with both coefficients zero (padding) get exact zeros.
    public static func backwardReference(dlogits: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>,
                                targets: UnsafePointer<Int32>, dLogprob: UnsafePointer<Float>,
                                dEntropy: UnsafePointer<Float>?, N: Int, V: Int, temperature: Float = 1) {
        let invTau = Double(1 / temperature)
        Parallel.forEach(N, costPerItem: 40 &* V) { n in
            let z = logits + n &* V, dz = dlogits + n &* V
            let g = Double(dLogprob[n]), e = Double(dEntropy?[n] ?? 0)
            if g == 0 && e == 0 {
                for j in 0 ..< V { dz[j] = 0 }
                return
            }
            let (lse, _) = logSumExp(z, V, invTau)
            var h = 0.0
            if e != 0 {
                var s = 0.0
                for j in 0 ..< V { let zj = Double(z[j]) * invTau; s += Foundation.exp(zj - lse) * zj }
                h = lse - s
            }
            let y = Int(targets[n])
            for j in 0 ..< V {
                let lp = Double(z[j]) * invTau - lse
                let p = Foundation.exp(lp)
                var d = -g * p
                if j == y { d += g }
                if e != 0 { d -= e * p * (lp + h) }
                dz[j] = Float(d * invTau)
            }
        }
    }

    /// Weighted mean cross-entropy `L = -sum_t w_t log p(y_t) / sum_t w_t` (0 when all weights are 0), and,
    /// when `dLogprob` is given, the per-position coefficients `dL/d log p_t = -w_t / sum w` for `backward`.
    public static func crossEntropy(logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                                    weights: UnsafePointer<Float>, dLogprob: UnsafeMutablePointer<Float>?,
                                    N: Int, V: Int) -> Double {
        var wsum = 0.0
        for n in 0 ..< N { wsum += Double(weights[n]) }
        if wsum == 0 {
            if let dLogprob { for n in 0 ..< N { dLogprob[n] = 0 } }
            return 0
        }
        var loss = 0.0
        for n in 0 ..< N where weights[n] != 0 {
            let z = logits + n &* V
            let (lse, _) = logSumExp(z, V, 1)
            loss -= Double(weights[n]) * (Double(z[Int(targets[n])]) - lse)
        }
        if let dLogprob { for n in 0 ..< N { dLogprob[n] = Float(-Double(weights[n]) / wsum) } }
        return loss / wsum
    }

    /// `logsumexp(z * invTau)` in Float, eight lanes at a time (`V` a multiple of 8).
    @inline(__always)
    static func logSumExp8(_ z: UnsafePointer<Float>, _ V: Int, _ invTau: Float) -> Float {
        let rz = UnsafeRawPointer(z), it = SIMD8<Float>(repeating: invTau)
        var mx = rz.loadUnaligned(as: SIMD8<Float>.self) * it
        var j = 8
        while j < V {
            let v = rz.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self) * it
            mx.replace(with: v, where: v .> mx)
            j &+= 8
        }
        var m = mx[0]
        for k in 1 ..< 8 where mx[k] > m { m = mx[k] }
        let mv = SIMD8<Float>(repeating: m)
        var acc = SIMD8<Float>()
        j = 0
        while j < V {
            acc += exp8(rz.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self) * it - mv)
            j &+= 8
        }
        return m + Foundation.log(acc.sum())
    }

    /// `(logsumexp(z * invTau), max)` with the exponential sum in Double.
    @inline(__always)
    static func logSumExp(_ z: UnsafePointer<Float>, _ V: Int, _ invTau: Double) -> (Double, Double) {
        var m = -Double.infinity
        for j in 0 ..< V { m = Swift.max(m, Double(z[j]) * invTau) }
        var s = 0.0
        for j in 0 ..< V { s += Foundation.exp(Double(z[j]) * invTau - m) }
        return (m + Foundation.log(s), m)
    }
}
