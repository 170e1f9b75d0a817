import Foundation

/// GELU (Hendrycks & Gimpel, "Gaussian Error Linear Units (GELUs)", 2016), tanh approximation as in GPT-2:
/// `gelu(x) = 0.5 x (1 + tanh(u))`, `u = sqrt(2/pi) (x + 0.044715 x^3)`;
/// `gelu'(x) = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2)`.
public enum GELU {
    static let s: Float = (2 / Float.pi).squareRoot()

    /// out [N] = gelu(inp [N]); when `tanhCache` is given it receives `tanh(u)` for `backward`.
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int,
                               tanhCache: UnsafeMutablePointer<Float>? = nil) {
        let rows = (count + 1023) / 1024
        Parallel.forEach(rows, costPerItem: 1024 &* 20) { r in
            let lo = r &* 1024, hi = Swift.min(count, lo &+ 1024)
            for i in lo ..< hi {
                let x = inp[i]
                let th = tanhf(s * (x + 0.044715 * x * x * x))
                out[i] = 0.5 * x * (1 + th)
                tanhCache?[i] = th
            }
        }
    }

    /// dinp [N] += gelu'(inp) * dout; `tanhCache` (from `forward`) avoids recomputing `tanh(u)`.
    public static func backward(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                dout: UnsafePointer<Float>, count: Int, tanhCache: UnsafePointer<Float>? = nil) {
        let rows = (count + 1023) / 1024
        Parallel.forEach(rows, costPerItem: 1024 &* 24) { r in
            let lo = r &* 1024, hi = Swift.min(count, lo &+ 1024)
            for i in lo ..< hi {
                let x = inp[i]
                let th = tanhCache?[i] ?? tanhf(s * (x + 0.044715 * x * x * x))
                let local = 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * s * (1 + 3 * 0.044715 * x * x)
                dinp[i] += local * dout[i]
            }
        }
    }
}

@inline(__always) func tanhf(_ x: Float) -> Float {
    // tanh(x) = 1 - 2 / (exp(2x) + 1), clamped so exp cannot overflow.
    let c = Swift.min(Swift.max(x, -15), 15)
    let e = expf(2 * c)
    return (e - 1) / (e + 1)
}
