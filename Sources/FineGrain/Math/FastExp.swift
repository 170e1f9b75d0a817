/// `exp(x)` for `x` in [-700, 700] without a libm call, so loops that use it vectorise (k3 KL, PPO ratios).
///
/// Cody-Waite range reduction `x = k ln2 + r`, `|r| <= ln2/2`, with `k` found by the magic-number rounding
/// trick (adding `1.5 * 2^52` rounds to an integer in the low mantissa bits: no `round` call, no int
/// conversion), a degree-13 Taylor polynomial for `exp(r)` (truncation < 1e-17 relative), and `2^k` built
/// from its bit pattern. Relative error against libm's `exp` is below 1e-15 on the whole range (tested).
/// Outside [-700, 700] use `Foundation.exp`.
@inlinable @inline(__always)
public func fastExp(_ x: Double) -> Double {
    let magic = 6755399441055744.0                    // 1.5 * 2^52
    let log2e = 1.4426950408889634
    let ln2hi = 6.93147180369123816490e-01, ln2lo = 1.90821492927058770002e-10
    let t = x * log2e + magic
    let k = t - magic                                  // round(x / ln2) as a Double
    let r = (x - k * ln2hi) - k * ln2lo                // |r| <= 0.35
    var p = 1.0 / 6227020800.0                         // 1/13!
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    // 2^k: the integer k sits in the low bits of t's mantissa (two's complement for negative k).
    let kBits = t.bitPattern &- magic.bitPattern
    return p * Double(bitPattern: (kBits &+ 1023) << 52)
}
