import Dispatch

// Shared building blocks of the advantage estimators in this folder: row-parallel drivers, verl's reward
// layout, verl's loop-version group statistics (spec P1), broadcast (P7) and batch-global whitening (P3).
//
// Every kernel works over contiguous buffers. Workers of `DispatchQueue.concurrentPerform` write disjoint
// row (or token) ranges of the output, so the raw pointers below are safe to share.

/// A mutable buffer base address handed to parallel workers that write disjoint ranges.
struct SharedMutablePointer<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>?
    init(_ b: UnsafeMutableBufferPointer<T>) { base = b.baseAddress }
}

/// A read-only buffer base address handed to parallel workers. `nil` when the column is absent or empty.
struct SharedPointer<T>: @unchecked Sendable {
    let base: UnsafePointer<T>?
    init(_ b: UnsafeBufferPointer<T>?) { base = b?.baseAddress }
}

enum CreditKernels {
    /// Batches with more tokens than this are split over cores.
    static let parallelTokenThreshold = 65_536
    /// Fixed number of chunks for token-parallel reductions (deterministic summation order for a given N).
    static let reductionChunks = 16

    /// Runs `body` over row ranges covering `0 ..< rows`, in parallel when the batch is large.
    static func forEachRowChunk(rows: Int, tokens: Int, _ body: @Sendable (Range<Int>) -> Void) {
        guard tokens > parallelTokenThreshold, rows > 1 else { body(0 ..< rows); return }
        let chunks = Swift.min(rows, 64)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            body((rows &* c) / chunks ..< (rows &* (c &+ 1)) / chunks)
        }
    }

    /// Runs `body(chunk, tokenRange)` over `reductionChunks` token ranges covering `0 ..< n` (parallel when
    /// large). Chunk boundaries depend only on `n`, so reductions combined in chunk order are deterministic.
    static func forEachTokenChunk(_ n: Int, _ body: @Sendable (Int, Range<Int>) -> Void) {
        let k = reductionChunks
        if n > parallelTokenThreshold {
            DispatchQueue.concurrentPerform(iterations: k) { c in body(c, (n &* c) / k ..< (n &* (c &+ 1)) / k) }
        } else {
            for c in 0 ..< k { body(c, (n &* c) / k ..< (n &* (c &+ 1)) / k) }
        }
    }

    // MARK: - Rewards in verl's layout

    /// Per-row reward accessor for verl's `token_level_rewards`: the `token_rewards` column (or zeros) plus the
    /// outcome placed on the row's last mask-1 token (its last token if none), as
    /// `RolloutBatch.tokenLevelRewards` defines it, without materialising an `[N]` column.
    struct Rewards: @unchecked Sendable {
        let token: UnsafePointer<Double>?
        let outcome: UnsafePointer<Double>?

        /// The absolute token index that receives row `r`'s outcome, or -1 when there is no outcome.
        @inline(__always)
        func outcomeIndex(_ r: Int, offsets: UnsafePointer<Int>, mask: UnsafePointer<UInt8>) -> Int {
            guard outcome != nil else { return -1 }
            let lo = offsets[r], hi = offsets[r &+ 1]
            guard hi > lo else { return -1 }
            var i = hi &- 1
            while i >= lo { if mask[i] != 0 { return i }; i &-= 1 }
            return hi &- 1
        }

        @inline(__always)
        func at(_ i: Int, row r: Int, outcomeIndex oi: Int) -> Double {
            var x = token?[i] ?? 0
            if i == oi, let o = outcome { x += o[r] }
            return x
        }
    }

    /// Runs `body` with the batch's reward accessor; throws `missingField("reward")` if the batch has neither
    /// an outcome nor token rewards.
    static func withRewards<T>(_ batch: RolloutBatch, method: String, _ body: (Rewards) throws -> T) throws -> T {
        guard batch.outcome != nil || batch.tokenReward != nil else {
            throw FineGrainError.missingField(field: "reward", method: method)
        }
        let tr = batch.tokenReward ?? [], oc = batch.outcome ?? []
        return try tr.withUnsafeBufferPointer { t in
            try oc.withUnsafeBufferPointer { o in
                try body(Rewards(token: batch.tokenReward == nil ? nil : t.baseAddress,
                                 outcome: batch.outcome == nil ? nil : o.baseAddress))
            }
        }
    }

    // MARK: - Group statistics (spec P1, verl's loop version)

    /// Per-group mean and unbiased (n-1) standard deviation of `scores`, verl's loop convention: a group of
    /// one has mean 0 and std 1. O(R) time, O(G) memory.
    static func groupMeanStd(_ scores: [Double], _ gi: RolloutBatch.GroupIndex) -> (mean: [Double], std: [Double]) {
        let g = gi.start.count - 1
        var mean = [Double](repeating: 0, count: g), std = [Double](repeating: 1, count: g)
        scores.withUnsafeBufferPointer { s in
            for k in 0 ..< g {
                let lo = gi.start[k], hi = gi.start[k + 1], n = hi - lo
                guard n > 1 else { continue }
                var acc = 0.0
                for j in lo ..< hi { acc += s[gi.members[j]] }
                let mu = acc / Double(n)
                var ss = 0.0
                for j in lo ..< hi { let d = s[gi.members[j]] - mu; ss += d * d }
                mean[k] = mu
                std[k] = (ss / Double(n - 1)).squareRoot()
            }
        }
        return (mean, std)
    }

    /// Per-group arithmetic mean (a group of one: 0, verl's convention for RLOO and REINFORCE++-baseline).
    static func groupMean(_ scores: [Double], _ gi: RolloutBatch.GroupIndex) -> [Double] {
        let g = gi.start.count - 1
        var mean = [Double](repeating: 0, count: g)
        for k in 0 ..< g {
            let lo = gi.start[k], hi = gi.start[k + 1]
            guard hi - lo > 1 else { continue }
            var acc = 0.0
            for j in lo ..< hi { acc += scores[gi.members[j]] }
            mean[k] = acc / Double(hi - lo)
        }
        return mean
    }

    // MARK: - Broadcast (P7) and whitening (P3)

    /// `A[t] = a[r] * m[t]` for every token of every row: one scalar per response spread over its tokens,
    /// zero at mask-0 positions.
    /// An outcome estimator's output: `a` broadcast (advantages = returns) and kept as `rowValues`.
    static func outcome(_ a: [Double], _ batch: RolloutBatch) -> AdvantageOutput {
        let adv = broadcast(a, batch)
        return AdvantageOutput(advantages: adv, returns: adv, rowValues: a)
    }

    static func broadcast(_ a: [Double], _ batch: RolloutBatch) -> [Double] {
        let n = batch.tokenCount, rows = batch.count
        var out = overwrittenDoubles(n)   // [N], every position written below
        a.withUnsafeBufferPointer { ap in batch.offsets.withUnsafeBufferPointer { op in
            batch.mask.withUnsafeBufferPointer { mp in out.withUnsafeMutableBufferPointer { ob in
                let a = SharedPointer(ap), off = SharedPointer(op), m = SharedPointer(mp), o = SharedMutablePointer(ob)
                forEachRowChunk(rows: rows, tokens: n) { rr in
                    guard let a = a.base, let off = off.base, let o = o.base, let m = m.base else { return }
                    for r in rr {
                        let v = a[r]
                        for i in off[r] ..< off[r &+ 1] { o[i] = m[i] != 0 ? v : 0 }
                    }
                }
            } }
        } }
        return out
    }

    /// verl's `masked_whiten(x, m)` in place, batch-global: `mu = sum_m x / (n + 1e-8)`,
    /// `var = sum_m (x - mu)^2 / (n + 1e-8) * n / (n - 1)`, `x <- (x - mu) / sqrt(var + 1e-8)` at every
    /// position; with `zeroMasked` mask-0 positions are then set to 0 (verl's `* response_mask`).
    /// Throws `unsupported` when fewer than 2 tokens are masked in (verl raises `ValueError`).
    static func whiten(_ x: inout [Double], mask: [UInt8], zeroMasked: Bool, method: String,
                       precomputed: (sum: Double, count: Int)? = nil) throws {
        let (mean, inv) = try whiteningStats(x, mask: mask, method: method, precomputed: precomputed)
        x.withUnsafeMutableBufferPointer { xb in
            let p = SharedMutablePointer(xb)
            apply(mean: mean, inv: inv, from: UnsafePointer(p.base), to: p, mask: mask, zeroMasked: zeroMasked, n: xb.count)
        }
    }

    /// Out-of-place `whiten`: `x` is left as it is (e.g. REINFORCE++'s returns) and the whitened copy is
    /// written in the same pass that reads it, instead of copying then transforming.
    static func whitened(_ x: [Double], mask: [UInt8], zeroMasked: Bool, method: String,
                         precomputed: (sum: Double, count: Int)? = nil) throws -> [Double] {
        let (mean, inv) = try whiteningStats(x, mask: mask, method: method, precomputed: precomputed)
        var out = overwrittenDoubles(x.count)   // [N]
        x.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { ob in
            apply(mean: mean, inv: inv, from: xp.baseAddress, to: SharedMutablePointer(ob), mask: mask, zeroMasked: zeroMasked, n: xp.count)
        } }
        return out
    }

    /// Masked sum and count of `x`, in `reductionChunks` token chunks (deterministic order).
    static func maskedSumCount(_ x: [Double], mask: [UInt8]) -> (sum: Double, count: Int) {
        let n = x.count, k = reductionChunks
        var part = [Double](repeating: 0, count: k), cnt = [Int](repeating: 0, count: k)
        x.withUnsafeBufferPointer { xp in mask.withUnsafeBufferPointer { mp in
            part.withUnsafeMutableBufferPointer { pb in cnt.withUnsafeMutableBufferPointer { cb in
                let x = SharedPointer(xp), m = SharedPointer(mp), p = SharedMutablePointer(pb), c = SharedMutablePointer(cb)
                forEachTokenChunk(n) { chunk, range in
                    guard let x = x.base, let m = m.base else { return }
                    var s = 0.0, q = 0
                    for i in range where m[i] != 0 { s += x[i]; q &+= 1 }
                    p.base![chunk] = s; c.base![chunk] = q
                }
            } }
        } }
        var total = 0.0, count = 0
        for c in 0 ..< k { total += part[c]; count &+= cnt[c] }
        return (total, count)
    }

    /// verl's whitening statistics: mean with the `1e-8` denominator and `1 / sqrt(var_unbiased + 1e-8)`.
    /// `precomputed` is the masked (sum, count) when a scan already accumulated them (saves one pass).
    static func whiteningStats(_ x: [Double], mask: [UInt8], method: String,
                               precomputed: (sum: Double, count: Int)?) throws -> (mean: Double, inv: Double) {
        let (total, count) = precomputed ?? maskedSumCount(x, mask: mask)
        guard count > 1 else {
            throw FineGrainError.unsupported(method: method, reason: count == 0
                ? "whitening needs at least 2 valid (mask-1) tokens in the batch, got none"
                : "whitening needs at least 2 valid (mask-1) tokens in the batch, got 1 (unbiased variance divides by n-1 = 0)")
        }
        let n = x.count, k = reductionChunks
        let denom = Double(count) + MaskedStats.meanEpsilon
        let mean = total / denom
        var part = [Double](repeating: 0, count: k)
        x.withUnsafeBufferPointer { xp in mask.withUnsafeBufferPointer { mp in
            part.withUnsafeMutableBufferPointer { pb in
                let x = SharedPointer(xp), m = SharedPointer(mp), p = SharedMutablePointer(pb), mu = mean
                forEachTokenChunk(n) { chunk, range in
                    guard let x = x.base, let m = m.base else { return }
                    var s = 0.0
                    for i in range where m[i] != 0 { let d = x[i] - mu; s += d * d }
                    p.base![chunk] = s
                }
            }
        } }
        var ss = 0.0
        for c in 0 ..< k { ss += part[c] }
        let variance = ss / denom * (Double(count) / Double(count - 1))
        return (mean, 1.0 / (variance + MaskedStats.whitenEpsilon).squareRoot())
    }

    /// `to[i] = (from[i] - mean) * inv` (0 at mask-0 positions when `zeroMasked`), token-parallel.
    static func apply(mean: Double, inv: Double, from: UnsafePointer<Double>?, to: SharedMutablePointer<Double>,
                      mask: [UInt8], zeroMasked: Bool, n: Int) {
        let from = SharedConstPointer(from)
        mask.withUnsafeBufferPointer { mp in
            let m = SharedPointer(mp)
            forEachTokenChunk(n) { _, range in
                guard let x = from.base, let y = to.base, let m = m.base else { return }
                if zeroMasked {
                    for i in range { y[i] = m[i] != 0 ? (x[i] - mean) * inv : 0 }
                } else {
                    for i in range { y[i] = (x[i] - mean) * inv }
                }
            }
        }
    }

    /// Row chunks for scans that also reduce: `count` fixed chunks, and the range of chunk `c`.
    static func rowChunks(rows: Int, tokens: Int) -> Int { tokens > parallelTokenThreshold && rows > 1 ? Swift.min(rows, 64) : 1 }

    /// Runs `body(chunk, rows)` over `rowChunks(rows:tokens:)` chunks, in parallel when there are several.
    static func forEachRowChunkIndexed(rows: Int, tokens: Int, _ body: @Sendable (Int, Range<Int>) -> Void) {
        let chunks = rowChunks(rows: rows, tokens: tokens)
        if chunks == 1 { body(0, 0 ..< rows); return }
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            body(c, (rows &* c) / chunks ..< (rows &* (c &+ 1)) / chunks)
        }
    }
}

extension CreditKernels {
    /// Number of non-zero bytes in `p[a ..< b]` (valid tokens of a mask range): a branch-free reduction in
    /// 32-bit lanes over blocks, so it vectorises.
    static func countNonzero(_ p: UnsafePointer<UInt8>, from a: Int, to b: Int) -> Int {
        guard b > a else { return 0 }
        var total = 0, i = a
        while i < b {
            let end = Swift.min(b, i &+ 65_536)
            var c: UInt32 = 0
            for x in UnsafeBufferPointer(start: p + i, count: end &- i) { c &+= UInt32(Swift.min(x, 1)) }
            total &+= Int(c); i = end
        }
        return total
    }
}

/// A read-only raw pointer handed to parallel workers.
struct SharedConstPointer<T>: @unchecked Sendable {
    let base: UnsafePointer<T>?
    init(_ p: UnsafePointer<T>?) { base = p }
}
