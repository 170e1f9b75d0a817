import Foundation

/// PURE's fast path (Cheng et al., "Stop Summation: Min-Form Credit Assignment Is All Process Reward Model
/// Needs for Reasoning", 2025): see `PURE.swift` for the pipeline and its formulas.
extension PURE {
    /// The default pipeline without KL (`kl_coef` = 0, not `reference_compatible`): between two reward positions
    /// (step ends, the last valid token) the return G is constant, so the batch is a list of constant segments
    /// (O(S + R) scratch). Pass 1 (row-parallel) walks each row's reward positions backward and counts the
    /// valid tokens of each segment; the normalisation statistics are O(segments); pass 2 (row-parallel)
    /// writes returns and advantages together. Same values as the general scan (sums in a different order).
    static func computeSegments(_ batch: RolloutBatch, _ shaped: ShapedRewards, so: [Int], ends: [Int], outIdx: [Int],
                                maskEnds: Bool, normalize: Bool) -> AdvantageOutput {
        let n = batch.tokenCount, rows = batch.count
        // Row r's segments live at segBase[r] ..< segBase[r] + segCount[r]; a row with K steps has <= 2K + 3.
        var segBase = [Int](repeating: 0, count: rows + 1)                     // [R+1]
        for r in 0 ..< rows { segBase[r + 1] = segBase[r] &+ 2 &* (so[r + 1] &- so[r]) &+ 3 }
        let cap = segBase[rows], base = segBase
        var segLo = [Int](repeating: 0, count: cap), segHi = segLo, segCnt = segLo   // [≤ 2S + 3R]
        var segVal = [Double](repeating: 0, count: cap)
        var segKeep = [UInt8](repeating: 0, count: cap)
        var segCount = [Int](repeating: 0, count: rows)                         // [R]
        let chunks = CreditKernels.rowChunks(rows: rows, tokens: n)
        var partSum = [Double](repeating: 0, count: chunks), partCnt = [Int](repeating: 0, count: chunks)
        let stepR = shaped.stepRewards, verif = shaped.verifiable
        batch.mask.withUnsafeBufferPointer { mp in
            segLo.withUnsafeMutableBufferPointer { lb in segHi.withUnsafeMutableBufferPointer { hb in
                segCnt.withUnsafeMutableBufferPointer { cb in segVal.withUnsafeMutableBufferPointer { vb in
                    segKeep.withUnsafeMutableBufferPointer { kb in segCount.withUnsafeMutableBufferPointer { nb in
                        partSum.withUnsafeMutableBufferPointer { psb in partCnt.withUnsafeMutableBufferPointer { pcb in
                            let m = SharedPointer(mp), sl = SharedMutablePointer(lb), sh = SharedMutablePointer(hb)
                            let sc = SharedMutablePointer(cb), sv = SharedMutablePointer(vb), sk = SharedMutablePointer(kb)
                            let sn = SharedMutablePointer(nb), ps = SharedMutablePointer(psb), pc = SharedMutablePointer(pcb)
                            CreditKernels.forEachRowChunkIndexed(rows: rows, tokens: n) { c, rr in
                                guard let m = m.base, let sl = sl.base, let sh = sh.base, let sc = sc.base,
                                      let sv = sv.base, let sk = sk.base, let sn = sn.base else { return }
                                var sum = 0.0, count = 0
                                for r in rr {
                                    let lo = batch.offsets[r], hi = batch.offsets[r &+ 1], first = so[r], oi = outIdx[r]
                                    var j = base[r], k = so[r &+ 1] &- 1, top = hi, g = 0.0, oiLeft = oi >= lo
                                    @inline(__always) func emit(_ a: Int, _ b: Int, _ v: Double, keep: Bool) {
                                        guard b > a else { return }
                                        let q = keep ? CreditKernels.countNonzero(m, from: a, to: b) : 0
                                        sl[j] = a; sh[j] = b; sv[j] = v; sc[j] = q; sk[j] = keep ? 1 : 0; j &+= 1
                                        if keep { sum += v * Double(q); count &+= q }
                                    }
                                    while true {                        // backward over reward positions
                                        let eEnd = k >= first ? lo &+ ends[k] &- 1 : lo &- 1
                                        let eOi = oiLeft ? oi : lo &- 1
                                        let e = Swift.max(eEnd, eOi)
                                        emit(e &+ 1, top, g, keep: true)
                                        if e < lo { break }
                                        var x = 0.0
                                        let isEnd = e == eEnd
                                        if isEnd { x = stepR[k]; k &-= 1 }
                                        if e == eOi { x += verif[r]; oiLeft = false }
                                        g += x
                                        if isEnd && maskEnds { emit(e, e &+ 1, 0, keep: false); top = e } else { top = e &+ 1 }
                                    }
                                    sn[r] = j &- base[r]
                                }
                                ps.base![c] = sum; pc.base![c] = count
                            }
                        } }
                    } }
                } }
            } }
        }
        var sum = 0.0, count = 0
        for c in 0 ..< chunks { sum += partSum[c]; count &+= partCnt[c] }
        var mean = 0.0, rstd = 1.0
        if normalize {
            mean = sum / Double(count)
            var ss = 0.0
            for r in 0 ..< rows {
                for j in segBase[r] ..< segBase[r] &+ segCount[r] where segKeep[j] != 0 {
                    let d = segVal[j] - mean; ss += Double(segCnt[j]) * (d * d)
                }
            }
            rstd = 1 / max(ss / Double(count), 1e-8).squareRoot()
        }
        var ret = overwrittenDoubles(n)                                          // [N], every position written
        var adv = normalize ? overwrittenDoubles(n) : []                         // [N] (without normalisation: ret)
        let sLo = segLo, sHi = segHi, sVal = segVal, sKeep = segKeep, sN = segCount, mu = mean, inv = rstd
        batch.mask.withUnsafeBufferPointer { mp in ret.withUnsafeMutableBufferPointer { rb in adv.withUnsafeMutableBufferPointer { ab in
            let m = SharedPointer(mp), o = SharedMutablePointer(rb), a = SharedMutablePointer(ab)
            CreditKernels.forEachRowChunk(rows: rows, tokens: n) { rr in
                guard n > 0, let m = m.base, let o = o.base else { return }
                for r in rr {
                    for j in base[r] ..< base[r] &+ sN[r] {
                        let lo = sLo[j], hi = sHi[j], g = sVal[j], keep = sKeep[j] != 0
                        if normalize, let a = a.base {
                            let v = (g - mu) * inv
                            if keep {
                                for t in lo ..< hi { let valid = m[t] != 0; o[t] = valid ? g : 0; a[t] = valid ? v : 0 }
                            } else {
                                for t in lo ..< hi { o[t] = 0; a[t] = 0 }
                            }
                        } else if keep {                                  // no normalisation: advantages = returns
                            for t in lo ..< hi { o[t] = m[t] != 0 ? g : 0 }
                        } else {
                            for t in lo ..< hi { o[t] = 0 }
                        }
                    }
                }
            }
        } } }
        if !normalize { adv = ret }
        var diag: [String: Double] = ["steps": Double(ends.count)]
        if rows > 0 { diag["prm_outcome_mean"] = shaped.outcome.reduce(0, +) / Double(rows) }
        return AdvantageOutput(advantages: adv, returns: ret, diagnostics: diag)
    }
}
