import RealModule

// Shared pieces of the SPO family: the old-policy probability test behind cut points and the probability
// mask, and the SPO trainer's batch-global whitening (spec P4).

/// `p < threshold` and `p > threshold` for `p = exp(logprob)`, decided in log space except within 1e-12 of
/// `log(threshold)`, where `exp` is evaluated so the strict comparisons match the reference bit for bit.
struct ProbThreshold: Sendable {
    let threshold: Double
    let logThreshold: Double
    init(_ t: Double) { threshold = t; logThreshold = Double.log(t) }

    @inline(__always) func below(_ lp: Double) -> Bool {
        if lp < logThreshold - 1e-12 { return true }
        if lp > logThreshold + 1e-12 { return false }
        return Double.exp(lp) < threshold
    }
    @inline(__always) func above(_ lp: Double) -> Bool {
        if lp > logThreshold + 1e-12 { return true }
        if lp < logThreshold - 1e-12 { return false }
        return Double.exp(lp) > threshold
    }

    /// The old-policy log-prob column SPO reads: `old_logprobs`, else `logprobs`.
    static func oldLogprobs(_ batch: RolloutBatch, method: String) throws -> [Double] {
        if let c = batch.oldLogprob ?? batch.logprob { return c }
        throw FineGrainError.missingField(field: "old_logprobs", method: method)
    }
}

/// The SPO trainer's masked whitening (treetune `masked_whiten`, spec P4), batch-global.
///
/// Paper: Guo et al., "Segment Policy Optimization: Effective Segment-Level Credit Assignment in RL for Large
/// Language Models" (2025, arXiv 2505.23564), §"policy optimization with probability masks".
///
/// Formula: statistics mask `s = m ∧ (p_old < threshold)` when old log-probs are given (falls back to `m`
/// when that is empty); `n = Σ s`, `μ = Σ s·x / n` (no epsilon in the mean, unlike verl),
/// `v = Σ s·(x−μ)² / n` times `n/(n−1)` if unbiased; `out = (x − μ) / sqrt(v + 1e-8)` (+ μ if not shiftMean)
/// at every position.
///
/// An all-zero mask throws (the reference raises too). With one statistics token and `unbiased` the
/// reference produces NaN everywhere; FineGrain throws `unsupported` instead, unless `referenceCompatible`
/// is set, in which case the NaNs are reproduced (used by the conformance adapter).
public enum SPOWhiten {
    public static let varianceEpsilon = 1e-8

    public static func maskedWhiten(_ x: [Double], mask: [UInt8], oldLogprobs: [Double]?, threshold: Double = 0.9,
                                    shiftMean: Bool = true, unbiased: Bool = true,
                                    referenceCompatible: Bool = false, method: String = "spo_masked_whiten") throws -> [Double] {
        guard mask.count == x.count else {
            throw FineGrainError.invalidField(field: "mask", reason: "has \(mask.count) entries for \(x.count) values")
        }
        if let lp = oldLogprobs, lp.count != x.count {
            throw FineGrainError.invalidField(field: "old_logprobs", reason: "has \(lp.count) entries for \(x.count) values")
        }
        let pt = ProbThreshold(threshold)
        // Statistics mask: count the prob-masked set first, fall back to the plain mask when it is empty.
        var useProb = false
        if let lp = oldLogprobs {
            for i in 0 ..< x.count where mask[i] != 0 && pt.below(lp[i]) { useProb = true; break }
        }
        @inline(__always) func inStats(_ i: Int) -> Bool {
            mask[i] != 0 && (!useProb || pt.below(oldLogprobs![i]))
        }
        var n = 0, s = 0.0
        for i in 0 ..< x.count where inStats(i) { n &+= 1; s += x[i] }
        guard n > 0 else {
            throw FineGrainError.unsupported(method: method, reason: "whitening needs at least one mask-1 token, the mask is all zero")
        }
        if unbiased && n < 2 && !referenceCompatible {
            throw FineGrainError.unsupported(method: method,
                reason: "unbiased whitening needs at least 2 statistics tokens (mask-1 and p_old < \(threshold)), got 1")
        }
        let mean = s / Double(n)
        var ss = 0.0
        for i in 0 ..< x.count where inStats(i) { let d = x[i] - mean; ss += d * d }
        var v = ss / Double(n)
        if unbiased { v *= Double(n) / Double(n - 1) }   // n == 1: 0 * inf = NaN, as the reference
        let inv = 1.0 / (v + varianceEpsilon).squareRoot()
        let add = shiftMean ? 0.0 : mean
        var out = x  // [N]
        out.withUnsafeMutableBufferPointer { o in
            for i in 0 ..< o.count { o[i] = (o[i] - mean) * inv + add }
        }
        return out
    }
}
