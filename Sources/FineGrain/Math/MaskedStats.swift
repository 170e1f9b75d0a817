/// Masked statistics with verl's exact conventions (`verl.utils.torch_functional`), over flat token
/// columns `[N]` and a 0/1 mask `[N]`. Accumulation is in Double.
///
/// * `maskedSum(x, m) = sum_{m != 0} x` — values outside the mask, even NaN, never leak in.
/// * `maskedMean(x, m) = maskedSum / (sum(m) + 1e-8)` — the `1e-8` is verl's and decides whether a port
///   matches it (an all-masked input gives 0).
/// * `maskedVar(x, m, unbiased)`: `mean((x - mu)^2)` with the same denominator, times `n/(n-1)` if unbiased
///   (throws for n <= 1 when unbiased).
/// * `maskedWhiten(x, m, shiftMean)`: `(x - mu) / sqrt(var_unbiased + 1e-8)` (plus `mu` if not shiftMean),
///   applied to every position; throws when `sum(m) <= 1`.
public enum MaskedStats {
    /// verl's `masked_mean` denominator epsilon.
    public static let meanEpsilon = 1e-8
    /// verl's `masked_whiten` variance epsilon (inside the rsqrt).
    public static let whitenEpsilon = 1e-8

    /// (sum over mask, count of mask-1 entries) in one pass.
    @inline(__always)
    public static func sumAndCount(_ x: UnsafeBufferPointer<Double>, _ m: UnsafeBufferPointer<UInt8>) -> (Double, Int) {
        var s = 0.0, n = 0
        for i in 0 ..< x.count where m[i] != 0 { s += x[i]; n &+= 1 }
        return (s, n)
    }

    public static func maskedSum(_ x: [Double], _ m: [UInt8]) -> Double {
        x.withUnsafeBufferPointer { xp in m.withUnsafeBufferPointer { mp in sumAndCount(xp, mp).0 } }
    }

    public static func maskedMean(_ x: [Double], _ m: [UInt8]) -> Double {
        let (s, n) = x.withUnsafeBufferPointer { xp in m.withUnsafeBufferPointer { mp in sumAndCount(xp, mp) } }
        return s / (Double(n) + meanEpsilon)
    }

    /// Per-response masked sums `[R]` over the ragged layout.
    public static func rowSums(_ x: [Double], _ m: [UInt8], offsets: [Int]) -> [Double] {
        var out = [Double](repeating: 0, count: offsets.count - 1)
        x.withUnsafeBufferPointer { xp in m.withUnsafeBufferPointer { mp in
            for r in 0 ..< out.count {
                var s = 0.0
                for i in offsets[r] ..< offsets[r + 1] where mp[i] != 0 { s += xp[i] }
                out[r] = s
            }
        } }
        return out
    }

    /// Per-response masked means `[R]`, `sum / (count + 1e-8)`.
    public static func rowMeans(_ x: [Double], _ m: [UInt8], offsets: [Int]) -> [Double] {
        var out = [Double](repeating: 0, count: offsets.count - 1)
        x.withUnsafeBufferPointer { xp in m.withUnsafeBufferPointer { mp in
            for r in 0 ..< out.count {
                var s = 0.0, n = 0
                for i in offsets[r] ..< offsets[r + 1] where mp[i] != 0 { s += xp[i]; n &+= 1 }
                out[r] = s / (Double(n) + meanEpsilon)
            }
        } }
        return out
    }

    /// verl `masked_var`. Throws when `unbiased` and fewer than 2 tokens are masked in.
    public static func maskedVar(_ x: [Double], _ m: [UInt8], unbiased: Bool, method: String = "masked_var") throws -> Double {
        try x.withUnsafeBufferPointer { xp in try m.withUnsafeBufferPointer { mp in
            try variance(xp, mp, unbiased: unbiased, method: method).variance
        } }
    }

    /// Mean and variance with verl's epsilons; `variance` is unbiased if asked.
    public static func variance(_ x: UnsafeBufferPointer<Double>, _ m: UnsafeBufferPointer<UInt8>, unbiased: Bool,
                                method: String) throws -> (mean: Double, variance: Double) {
        let (s, n) = sumAndCount(x, m)
        let denom = Double(n) + meanEpsilon
        let mean = s / denom
        var ss = 0.0
        for i in 0 ..< x.count where m[i] != 0 { let d = x[i] - mean; ss += d * d }
        var v = ss / denom
        if unbiased {
            guard n > 1 else {
                throw FineGrainError.unsupported(method: method,
                    reason: "whitening needs at least 2 valid (mask-1) tokens in the batch, got \(n)")
            }
            v *= Double(n) / Double(n - 1)
        }
        return (mean, v)
    }

    /// verl `masked_whiten` in place over every position. Statistics come from mask-1 positions only.
    public static func whitenInPlace(_ x: inout [Double], _ m: [UInt8], shiftMean: Bool = true, method: String = "masked_whiten") throws {
        let (mean, v) = try x.withUnsafeBufferPointer { xp in try m.withUnsafeBufferPointer { mp in
            try variance(xp, mp, unbiased: true, method: method)
        } }
        let inv = 1.0 / (v + whitenEpsilon).squareRoot()
        let add = shiftMean ? 0.0 : mean
        x.withUnsafeMutableBufferPointer { xp in
            for i in 0 ..< xp.count { xp[i] = (xp[i] - mean) * inv + add }
        }
    }

    public static func maskedWhiten(_ x: [Double], _ m: [UInt8], shiftMean: Bool = true) throws -> [Double] {
        var y = x
        try whitenInPlace(&y, m, shiftMean: shiftMean)
        return y
    }
}
