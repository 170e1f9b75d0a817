/// Layer normalisation (Ba, Kiros & Hinton, "Layer Normalization", 2016) over the last axis:
/// `mu = mean(x)`, `sigma^2 = mean((x - mu)^2)`, `y = (x - mu) / sqrt(sigma^2 + eps) * w + b`, eps = 1e-5
/// (PyTorch's default). Row statistics accumulate in Double.
public enum LayerNorm {
    public static let eps: Double = 1e-5

    /// out [N, C]; mean, rstd [N] (kept for backward); inp [N, C]; weight, bias [C].
    public static func forward(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                               rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                               weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, N: Int, C: Int) {
        Parallel.forEach(N, costPerItem: 8 &* C) { n in
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

    /// With `xhat = (x - mu) * rstd` and `g = w * dout`:
    /// `dx += rstd * (g - mean(g) - xhat * mean(g * xhat))`, `dw += sum_n xhat * dout`, `db += sum_n dout`.
    public static func backward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>,
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
