/// Layer normalisation (Ba, Kiros & Hinton, "Layer Normalization", 2016) over the last axis:
/// `mu = mean(x)`, `sigma^2 = mean((x - mu)^2)`, `y = (x - mu) / sqrt(sigma^2 + eps) * w + b`, eps = 1e-5
/// (PyTorch's default). The reference versions accumulate row statistics in Double; the fast ones (what
/// the model runs) use eight Float lanes per row when `C` is a multiple of 8 (two-pass, so the variance
/// stays accurate) and fall back to the reference otherwise.
public enum LayerNorm {
    public static let eps: Double = 1e-5

    /// out [N, C]; mean, rstd [N] (kept for backward); inp [N, C]; weight, bias [C].
    public static func forward(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                               rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                               weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, N: Int, C: Int) {
        guard C % 8 == 0 else {
            return forwardReference(out: out, mean: mean, rstd: rstd, inp: inp, weight: weight, bias: bias, N: N, C: C)
        }
        let w = UnsafeRawPointer(weight), bb = UnsafeRawPointer(bias)
        let invC = 1 / Float(C), epsF = Float(eps)
        Parallel.forEach(N, costPerItem: 8 &* C) { n in
            let x = UnsafeRawPointer(inp + n &* C), o = UnsafeMutableRawPointer(out + n &* C)
            var acc = SIMD8<Float>()
            var i = 0
            while i < C { acc += x.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self); i &+= 8 }
            let m = acc.sum() * invC
            let mv = SIMD8<Float>(repeating: m)
            var vacc = SIMD8<Float>()
            i = 0
            while i < C {
                let d = x.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self) - mv
                vacc += d * d
                i &+= 8
            }
            let r = 1 / (vacc.sum() * invC + epsF).squareRoot()
            let rv = SIMD8<Float>(repeating: r)
            i = 0
            while i < C {
                let d = x.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self) - mv
                let y = d * rv * w.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
                    + bb.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
                o.storeBytes(of: y, toByteOffset: i &* 4, as: SIMD8<Float>.self)
                i &+= 8
            }
            mean[n] = m
            rstd[n] = r
        }
    }

    /// With `xhat = (x - mu) * rstd` and `g = w * dout`:
    /// `dx += rstd * (g - mean(g) - xhat * mean(g * xhat))`, `dw += sum_n xhat * dout`, `db += sum_n dout`.
    /// With `accumulate: false`, `dx` is overwritten instead (the weight gradients always accumulate).
    /// Rows run serially (the weight gradients are sums over rows).
    public static func backward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>,
                                dbias: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, N: Int, C: Int,
                                accumulate: Bool = true) {
        guard C % 8 == 0 else {
            if !accumulate { dinp.update(repeating: 0, count: N &* C) }
            return backwardReference(dinp: dinp, dweight: dweight, dbias: dbias, dout: dout, inp: inp, weight: weight,
                                     mean: mean, rstd: rstd, N: N, C: C)
        }
        let w = UnsafeRawPointer(weight), dw = UnsafeMutableRawPointer(dweight), db = UnsafeMutableRawPointer(dbias)
        let invC = 1 / Float(C)
        for n in 0 ..< N {
            let x = UnsafeRawPointer(inp + n &* C), d = UnsafeRawPointer(dout + n &* C)
            let dx = UnsafeMutableRawPointer(dinp + n &* C)
            let mv = SIMD8<Float>(repeating: mean[n]), rv = SIMD8<Float>(repeating: rstd[n])
            var gs = SIMD8<Float>(), gxs = SIMD8<Float>()
            var i = 0
            while i < C {
                let o = i &* 4
                let xhat = (x.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self) - mv) * rv
                let g = w.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self) * d.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                gs += g
                gxs += g * xhat
                i &+= 8
            }
            let gMean = SIMD8<Float>(repeating: gs.sum() * invC), gxMean = SIMD8<Float>(repeating: gxs.sum() * invC)
            i = 0
            while i < C {
                let o = i &* 4
                let dv = d.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                let xhat = (x.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self) - mv) * rv
                let g = w.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self) * dv
                db.storeBytes(of: db.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self) + dv, toByteOffset: o, as: SIMD8<Float>.self)
                dw.storeBytes(of: dw.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self) + xhat * dv, toByteOffset: o, as: SIMD8<Float>.self)
                var y = (g - gMean - xhat * gxMean) * rv
                if accumulate { y += dx.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self) }
                dx.storeBytes(of: y, toByteOffset: o, as: SIMD8<Float>.self)
                i &+= 8
            }
        }
    }

    /// Reference forward: plain loops, row statistics in Double; same contract as `forward`.
    public static func forwardReference(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                                        rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, N: Int, C: Int) {
        for n in 0 ..< N {
            let x = inp + n &* C
            var s = 0.0
            for i in 0 ..< C { s += Double(x[i]) }
            let m = s / Double(C)
            var v = 0.0
            for i in 0 ..< C { let d = Double(x[i]) - m; v += d * d }
            let r = 1.0 / (v / Double(C) + eps).squareRoot()
            let o = out + n &* C
            let mf = Float(m), rf = Float(r)
            for i in 0 ..< C { o[i] = (x[i] - mf) * rf * weight[i] + bias[i] }
            mean[n] = mf
            rstd[n] = rf
        }
    }

    /// Reference backward (accumulates `dx`); same formulas as `backward`.
    public static func backwardReference(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>,
                                         dbias: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                         inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                         mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, N: Int, C: Int) {
        for n in 0 ..< N {
            let x = inp + n &* C, d = dout + n &* C, dx = dinp + n &* C
            let m = mean[n], r = rstd[n]
            var gMean: Float = 0, gxMean: Float = 0
            for i in 0 ..< C {
                let xhat = (x[i] - m) * r
                let g = weight[i] * d[i]
                gMean += g
                gxMean += g * xhat
            }
            gMean /= Float(C)
            gxMean /= Float(C)
            for i in 0 ..< C {
                let xhat = (x[i] - m) * r
                let g = weight[i] * d[i]
                dbias[i] += d[i]
                dweight[i] += xhat * d[i]
                dx[i] += (g - gMean - xhat * gxMean) * r
            }
        }
    }
}
