import Foundation

/// GELU (Hendrycks & Gimpel, "Gaussian Error Linear Units (GELUs)", 2016), tanh approximation as in GPT-2:
/// `gelu(x) = 0.5 x (1 + tanh(u))`, `u = sqrt(2/pi) (x + 0.044715 x^3)`;
/// `gelu'(x) = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2)`.
/// The fast versions (what the model runs) evaluate eight lanes at a time with `tanh8`; the scalar
/// `*Reference` versions beside them are the specification.
public enum GELU {
    static let s: Float = (2 / Float.pi).squareRoot()

    /// out [N] = gelu(inp [N]); when `tanhCache` is given it receives `tanh(u)` for `backward`.
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int,
                               tanhCache: UnsafeMutablePointer<Float>? = nil) {
        let rows = (count + 1023) / 1024
        let sv = SIMD8<Float>(repeating: s), c = SIMD8<Float>(repeating: 0.044715), half = SIMD8<Float>(repeating: 0.5)
        Parallel.forEach(rows, costPerItem: 1024 &* 20) { r in
            let lo = r &* 1024, hi = Swift.min(count, lo &+ 1024)
            let x8 = UnsafeRawPointer(inp), o8 = UnsafeMutableRawPointer(out)
            var i = lo
            while i &+ 8 <= hi {
                let x = x8.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
                let th = tanh8(sv * (x + c * x * x * x))
                o8.storeBytes(of: half * x * (1 + th), toByteOffset: i &* 4, as: SIMD8<Float>.self)
                if let tanhCache { UnsafeMutableRawPointer(tanhCache).storeBytes(of: th, toByteOffset: i &* 4, as: SIMD8<Float>.self) }
                i &+= 8
            }
            if i < hi { forwardReference(out: out + i, inp: inp + i, count: hi &- i, tanhCache: tanhCache.map { $0 + i }) }
        }
    }

    /// dinp [N] += gelu'(inp) * dout (`accumulate: false`: dinp = ...); `tanhCache` (from `forward`) avoids
    /// recomputing `tanh(u)`.
    public static func backward(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                dout: UnsafePointer<Float>, count: Int, tanhCache: UnsafePointer<Float>? = nil,
                                accumulate: Bool = true) {
        let rows = (count + 1023) / 1024
        let sv = SIMD8<Float>(repeating: s), c = SIMD8<Float>(repeating: 0.044715), c3 = SIMD8<Float>(repeating: 3 * 0.044715)
        let half = SIMD8<Float>(repeating: 0.5)
        Parallel.forEach(rows, costPerItem: 1024 &* 24) { r in
            let lo = r &* 1024, hi = Swift.min(count, lo &+ 1024)
            let x8 = UnsafeRawPointer(inp), d8 = UnsafeRawPointer(dout), g8 = UnsafeMutableRawPointer(dinp)
            var i = lo
            while i &+ 8 <= hi {
                let o = i &* 4
                let x = x8.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                let x2 = x * x
                let th = tanhCache.map { UnsafeRawPointer($0).loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self) }
                    ?? tanh8(sv * (x + c * x * x * x)) // as in forward, bit for bit
                let one = SIMD8<Float>(repeating: 1)
                let slope: SIMD8<Float> = (half * x) * (one - th * th) * (sv * (one + c3 * x2))
                let local: SIMD8<Float> = half * (one + th) + slope
                var y = local * d8.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                if accumulate { y += g8.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self) }
                g8.storeBytes(of: y, toByteOffset: o, as: SIMD8<Float>.self)
                i &+= 8
            }
            if i < hi {
                if !accumulate { (dinp + i).update(repeating: 0, count: hi &- i) }
                backwardReference(dinp: dinp + i, inp: inp + i, dout: dout + i, count: hi &- i, tanhCache: tanhCache.map { $0 + i })
            }
        }
    }

    /// Reference forward (scalar); same contract as `forward`.
    public static func forwardReference(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int,
                                        tanhCache: UnsafeMutablePointer<Float>? = nil) {
        for i in 0 ..< count {
            let x = inp[i]
            let th = tanhf(s * (x + 0.044715 * x * x * x))
            out[i] = 0.5 * x * (1 + th)
            tanhCache?[i] = th
        }
    }

    /// Reference backward (scalar, accumulates); same contract as `backward`.
    public static func backwardReference(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                         dout: UnsafePointer<Float>, count: Int, tanhCache: UnsafePointer<Float>? = nil) {
        for i in 0 ..< count {
            let x = inp[i]
            let th = tanhCache?[i] ?? tanhf(s * (x + 0.044715 * x * x * x))
            let local = 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * s * (1 + 3 * 0.044715 * x * x)
            dinp[i] += local * dout[i]
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

/// `tanhf` on eight lanes (the same polynomial, so the same values lane by lane).
@inline(__always) func tanh8(_ x0: SIMD8<Float>) -> SIMD8<Float> {
    let lim = SIMD8<Float>(repeating: 7.99881172180175781)
    var x = x0.replacing(with: lim, where: x0 .> lim)
    x.replace(with: -lim, where: x .< -lim)
    let x2 = x * x
    var p = SIMD8<Float>(repeating: -2.76076847742355e-16)
    p = p * x2 + 2.00018790482477e-13
    p = p * x2 + -8.60467152213735e-11
    p = p * x2 + 5.12229709037114e-08
    p = p * x2 + 1.48572235717979e-05
    p = p * x2 + 6.37261928875436e-04
    p = p * x2 + 4.89352455891786e-03
    p = p * x
    var q = SIMD8<Float>(repeating: 1.19825839466702e-06)
    q = q * x2 + 1.18534705686654e-04
    q = q * x2 + 2.26843463243900e-03
    q = q * x2 + 4.89352518554385e-03
    return p / q
}
