import CBLAS

/// Fully connected layer `y = x W^T + b` with `W` stored `[OC, C]` (PyTorch `nn.Linear`). The BLAS path
/// (`cblas_sgemm`, row-major) is what the model runs; the triple-loop `*Reference` functions are kept
/// beside it as the specification the tests compare against.
public enum Linear {
    /// out [N, OC] = inp [N, C] * weight [OC, C]^T + bias [OC] (bias may be nil).
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                               weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, N: Int, C: Int, OC: Int) {
        var beta: Float = 0
        if let bias {
            for n in 0 ..< N { (out + n &* OC).update(from: bias, count: OC) } // memcpy per row
            beta = 1
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(N), Int32(OC), Int32(C),
                    1, inp, Int32(C), weight, Int32(C), beta, out, Int32(OC))
    }

    /// dinp [N, C] += dout [N, OC] * W [OC, C]; dweight [OC, C] += dout^T * inp; dbias [OC] += sum_n dout.
    /// `dinp` may be nil when the input needs no gradient; with `accumulate: false` it is overwritten
    /// (`dinp = dout * W`) instead, so it need not be zeroed first. The weight gradients always accumulate.
    public static func backward(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>,
                                dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                                inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, N: Int, C: Int, OC: Int,
                                accumulate: Bool = true) {
        if let dinp {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(N), Int32(C), Int32(OC),
                        1, dout, Int32(OC), weight, Int32(C), accumulate ? 1 : 0, dinp, Int32(C))
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(OC), Int32(C), Int32(N),
                    1, dout, Int32(OC), inp, Int32(C), 1, dweight, Int32(C))
        if let dbias { addColumnSums(dbias, dout, rows: N, cols: OC) }
    }

    /// Reference forward: `out[n, o] = bias[o] + sum_i inp[n, i] * weight[o, i]`.
    public static func forwardReference(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, N: Int, C: Int, OC: Int) {
        for n in 0 ..< N {
            for o in 0 ..< OC {
                var s: Float = bias?[o] ?? 0
                for i in 0 ..< C { s += inp[n &* C &+ i] * weight[o &* C &+ i] }
                out[n &* OC &+ o] = s
            }
        }
    }

    /// Reference backward, the same contract as `backward`.
    public static func backwardReference(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>,
                                         dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                                         inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, N: Int, C: Int, OC: Int) {
        for n in 0 ..< N {
            for o in 0 ..< OC {
                let d = dout[n &* OC &+ o]
                dbias?[o] += d
                for i in 0 ..< C {
                    dinp?[n &* C &+ i] += d * weight[o &* C &+ i]
                    dweight[o &* C &+ i] += d * inp[n &* C &+ i]
                }
            }
        }
    }
}
