import RealModule

/// The fused default path of segment-level reward model PPO (Yin et al., "Segmenting Text and Learning Their
/// Rewards for Improved RLHF in Language Model", 2025); the formulas are in `SegmentRM.swift`.
extension SegmentRM {
    /// `compute` without `reference_compatible` in one backward scan per row: `tokenRewards` (segments walked
    /// from the last one, each normalised and spread as it is met), `shape` and GAE (verl masking) fused, the
    /// advantage moments accumulated for the normalisation. Scratch: `[R]` average segment lengths.
    static func fusedCompute(_ batch: RolloutBatch, _ p: Params, _ c: Config, entropies: [Double], rmValues: [Double],
                             values: [Double], old: [Double], ref: [Double], eos: [Double]?) throws -> AdvantageOutput {
        let rows = batch.count
        let beta = Swift.max(try p.double("kl_coef"), 0), clip = try p.double("reward_clip")
        let gamma = try p.double("gamma"), lam = try p.double("lam")
        let tau = c.threshold, bandit = c.rewardType == "segment_last_avg"
        let kind = bandit ? 3 : c.rewardType == "every_segment_last" ? 2 : c.rewardType == "same_segment_last" ? 1 : 0
        let co = c.normalizeReward ? c.coefficients : nil
        let locNorm = co != nil && !bandit
        let (ca, cb, cc, cd) = co.map { ($0[0], $0[1], $0[2], $0[3]) } ?? (0, 0, 0, 0)
        let sigmaMin = c.sigmaMin, banditNorm = c.normalizeReward, rmMean = c.rmMean, rmStd = c.rmStd
        let lengthNorm = c.lengthNorm, penalty = c.penalty, lt = c.lengthThreshold ?? Int.max
        let isBanditThreshold = tau == banditThreshold
        var avgLen = [Double](repeating: 0, count: rows)   // [R]
        var (adv, ret, moments) = entropies.withUnsafeBufferPointer { hp in rmValues.withUnsafeBufferPointer { up in
            old.withUnsafeBufferPointer { op in ref.withUnsafeBufferPointer { rp in batch.offsets.withUnsafeBufferPointer { fp in
                (eos ?? []).withUnsafeBufferPointer { ep in avgLen.withUnsafeMutableBufferPointer { lb in
                    let hs = SharedPointer(hp), us = SharedPointer(up), os = SharedPointer(op), rs = SharedPointer(rp)
                    let fs = SharedPointer(fp), es = SharedPointer(eos == nil ? nil : ep), ls = SharedMutablePointer(lb)
                    return RewardModelPPO.fusedScan(offsets: batch.offsets, mask: batch.mask, values: values, gamma: gamma, lam: lam) { rr, gae in
                        guard let h = hs.base, let u = us.base, let o = os.base, let rf = rs.base, let off = fs.base,
                              let avg = ls.base else { return ShiftedMoments() }
                        let mk = gae.m, out = gae.a
                        var mom = ShiftedMoments()
                        for r in rr {
                            let lo = off[r], hi = off[r &+ 1]
                            // `tokenRewards` for the row, into the advantage buffer.
                            let last = RewardModelPPO.lastValid(mk, lo, hi)
                            var shaped = false
                            if last < 0 {
                                for t in lo ..< hi { out[t] = 0 }
                            } else {
                                let e = last &- lo
                                let f = isBanditThreshold ? e : (e > 0 ? e &- 1 : 0)
                                var penalise = e &+ 1 > lt
                                if let ev = es.base, ev[r] == 0 { penalise = true }
                                if kind <= 1 && !penalise {
                                    // Branch-free segmentation: the K segment ends (as Doubles) go into the row's
                                    // returns slots g[lo ..< lo + K] and each segment's token reward into
                                    // a[lo ..< lo + K] (K <= f + 1 <= row length; both are overwritten below).
                                    let ends = gae.g
                                    var q = 0
                                    for jj in 0 ..< f { ends[lo &+ q] = Double(jj); q &+= h[lo &+ jj] > tau ? 1 : 0 }
                                    ends[lo &+ q] = Double(f)
                                    let k = q &+ 1, kk = Double(k)
                                    avg[r] = Double(f &+ 1) / kk
                                    var start = 0
                                    for idx in 0 ..< k {   // independent iterations: the log / divisions overlap
                                        let end = Int(ends[lo &+ idx])
                                        var v = u[lo &+ end]
                                        if locNorm {
                                            let lp = Double.log(Double(idx &+ 1) / kk + 1e-10)
                                            v = (v - (ca * lp + cc)) / Swift.max(cb * lp + cd, sigmaMin)
                                        }
                                        if kind == 0 {
                                            v = v / Double(end &- start &+ 1)   // the paper's even split
                                            if lengthNorm { v /= Double(e &+ 1) }
                                        }
                                        out[lo &+ idx] = v
                                        start = end &+ 1
                                    }
                                    // `shape` while spreading backward: token t reads segment slot id <= t, which
                                    // no earlier (higher) token has overwritten yet.
                                    for t in lo &+ f &+ 1 ..< hi {
                                        out[t] = Swift.min(Swift.max(0, -clip), clip) - beta * (mk[t] != 0 ? o[t] - rf[t] : 0)
                                    }
                                    var id = lo &+ k &- 1, t = lo &+ f
                                    while t > lo {
                                        out[t] = Swift.min(Swift.max(out[id], -clip), clip) - beta * (mk[t] != 0 ? o[t] - rf[t] : 0)
                                        id &-= h[t &- 1] > tau ? 1 : 0
                                        t &-= 1
                                    }
                                    out[lo] = Swift.min(Swift.max(out[id], -clip), clip) - beta * (mk[lo] != 0 ? o[lo] - rf[lo] : 0)
                                    shaped = true
                                } else {
                                for t in lo ..< hi { out[t] = 0 }
                                var k = 1, j = 0
                                while j < f { if h[lo &+ j] > tau { k &+= 1 }; j &+= 1 }
                                let kk = Double(k)
                                avg[r] = Double(f &+ 1) / kk
                                if penalise && !bandit {
                                    for t in lo ..< hi { out[t] = penalty }
                                } else if bandit && penalise {
                                    out[last] = penalty
                                } else {
                                    var start = 0, idx = 0, seqSum = 0.0
                                    j = 0
                                    while idx < k {
                                        let end: Int
                                        if idx == k &- 1 { end = f } else {
                                            while !(h[lo &+ j] > tau) { j &+= 1 }
                                            end = j; j &+= 1
                                        }
                                        idx &+= 1
                                        var v = u[lo &+ end]
                                        if bandit {
                                            if banditNorm { v = (v - rmMean) / rmStd }
                                        } else if locNorm {
                                            // The location-aware normaliser: mean and std are log-linear in k/K.
                                            let lp = Double.log(Double(idx) / kk + 1e-10)
                                            v = (v - (ca * lp + cc)) / Swift.max(cb * lp + cd, sigmaMin)
                                        }
                                        seqSum += v
                                        let a = lo &+ start, z = lo &+ end
                                        switch kind {
                                        case 3: break
                                        case 2: out[z] = v
                                        case 1: for t in a ... z { out[t] = v }
                                        default:
                                            var w = v / Double(end &- start &+ 1)   // the paper's even split
                                            if lengthNorm { w /= Double(e &+ 1) }
                                            for t in a ... z { out[t] = w }
                                        }
                                        start = end &+ 1
                                    }
                                    if bandit { out[last] = seqSum / kk }
                                }
                                }
                            }
                            // `shape`: clamp, subtract the k1 KL; then the GAE scan over the row.
                            if !shaped {
                                for t in lo ..< hi {
                                    out[t] = Swift.min(Swift.max(out[t], -clip), clip) - beta * (mk[t] != 0 ? o[t] - rf[t] : 0)
                                }
                            }
                            gae.scan(lo, hi, &mom)
                        }
                        return mom
                    }
                } }
            } } }
        } }
        if try p.bool("normalize_advantages") {
            try RewardModelPPO.normalize(&adv, mask: batch.mask, moments: moments, method: info.name)
        }
        var meanLen = 0.0
        for x in avgLen { meanLen += x }
        return AdvantageOutput(advantages: adv, returns: ret,
                               diagnostics: ["avg_segment_length": meanLen / Double(Swift.max(rows, 1))])
    }
}
