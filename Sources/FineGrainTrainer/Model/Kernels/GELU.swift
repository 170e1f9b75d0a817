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

/// tanh as a clamped odd rational minimax approximation `x P(x^2) / Q(x^2)` (degree 13/6; the
/// coefficients Eigen uses for its float `ptanh`), accurate to a few ulp on [-8, 8] and exactly +-1
/// (to float precision) beyond. Branch-free and division-once, so GELU's loops vectorise, unlike `expf`.
@inline(__always) func tanhf(_ x0: Float) -> Float {
    let x = Swift.min(Swift.max(x0, -7.99881172180175781), 7.99881172180175781)
    let x2 = x * x
    var p: Float = -2.76076847742355e-16
    p = p * x2 + 2.00018790482477e-13
    p = p * x2 + -8.60467152213735e-11
    p = p * x2 + 5.12229709037114e-08
    p = p * x2 + 1.48572235717979e-05
    p = p * x2 + 6.37261928875436e-04
    p = p * x2 + 4.89352455891786e-03
    p = p * x
    var q: Float = 1.19825839466702e-06
    q = q * x2 + 1.18534705686654e-04
    q = q * x2 + 2.26843463243900e-03
    q = q * x2 + 4.89352518554385e-03
    return p / q
}
