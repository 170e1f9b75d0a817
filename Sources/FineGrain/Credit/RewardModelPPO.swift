/// Shared steps of the reward-model PPO pipelines in this folder (segment-level RM, Fine-Grained RLHF, RTO):
/// the behaviour-policy KL (k1) that shapes the reward, GAE on explicit token rewards through verl's kernel
/// (`GAE.scan`), and OpenRLHF's replay-buffer advantage normalisation (spec P5).
///
/// Paper: Schulman et al., "Proximal Policy Optimization Algorithms" (2017, arXiv 1707.06347), with GAE from
/// "High-Dimensional Continuous Control Using Generalized Advantage Estimation" (2015, arXiv 1506.02438).
enum RewardModelPPO {
    /// Log-probs of the policy that sampled the rollout: `old_logprobs`, or `logprobs` when only those are
    /// given (at experience-making time the two are the same model). Throws `missingField("old_logprobs")`.
    static func behaviourLogprobs(_ batch: RolloutBatch, method: String) throws -> [Double] {
        if let o = batch.oldLogprob { return o }
        if let l = batch.logprob { return l }
        throw FineGrainError.missingField(field: "old_logprobs", method: method)
    }

    /// k1 KL per token, `(log pi_old - log pi_ref) * m` `[N]`. With `float32` the difference is taken in
    /// Float, as OpenRLHF's `compute_approx_kl` does (`.float()`).
    static func k1(_ logp: [Double], _ ref: [Double], mask: [UInt8], float32: Bool = false) -> [Double] {
        let n = mask.count
        var out = [Double](repeating: 0, count: n)   // [N]
        logp.withUnsafeBufferPointer { lp in ref.withUnsafeBufferPointer { rp in mask.withUnsafeBufferPointer { mp in
            out.withUnsafeMutableBufferPointer { o in
                if float32 {
                    for i in 0 ..< n where mp[i] != 0 { o[i] = Double(Float(lp[i]) - Float(rp[i])) }
                } else {
                    for i in 0 ..< n where mp[i] != 0 { o[i] = lp[i] - rp[i] }
                }
            }
        } } }
        return out
    }

    /// GAE on explicit token rewards `[N]` with verl's kernel. Two hole conventions:
    ///
    /// * default (`openRLHFMasking == false`): verl's — mask-0 tokens are skipped (the value and advantage
    ///   carry over them); both outputs are then zeroed at mask-0 positions.
    /// * `openRLHFMasking`: OpenRLHF's `get_advantages_and_returns` — values and rewards are multiplied by
    ///   the mask and every position is a step (no carry). Reproduced by running the same kernel on `V * m`
    ///   with an all-ones mask. Identical to the default on right-padded rows; differs only at interior holes.
    static func gae(offsets: [Int], mask: [UInt8], values: [Double], rewards: [Double], gamma: Double, lam: Double,
                    openRLHFMasking: Bool) -> (advantages: [Double], returns: [Double]) {
        if openRLHFMasking {
            var vm = values, rm = rewards                                // [N] V * m, r * m
            let ones = [UInt8](repeating: 1, count: mask.count)          // [N]
            for i in 0 ..< vm.count where mask[i] == 0 { vm[i] = 0; rm[i] = 0 }
            return rm.withUnsafeBufferPointer { rp in
                GAE.scan(offsets: offsets, mask: ones, values: vm, rewards: CreditKernels.Rewards(token: rp.baseAddress, outcome: nil),
                         gamma: gamma, lam: lam)
            }
        }
        return rewards.withUnsafeBufferPointer { rp in
            let rw = CreditKernels.Rewards(token: rp.baseAddress, outcome: nil)
            var (a, g) = GAE.scan(offsets: offsets, mask: mask, values: values, rewards: rw, gamma: gamma, lam: lam)
            for i in 0 ..< a.count where mask[i] == 0 { a[i] = 0; g[i] = 0 }
            return (a, g)
        }
    }

    /// OpenRLHF's replay-buffer `normalize` (spec P5), batch-global: `mu = sum x / n`, `var = sum_m (x - mu)^2 / n`
    /// (population), `x <- (x - mu) / sqrt(max(var, 1e-8))`; mask-0 positions are set to 0 (the replay buffer
    /// drops them). Throws when no token is masked in.
    static func normalize(_ x: inout [Double], mask: [UInt8], method: String) throws {
        var s = 0.0, n = 0
        x.withUnsafeBufferPointer { xp in mask.withUnsafeBufferPointer { mp in
            for i in 0 ..< xp.count where mp[i] != 0 { s += xp[i]; n &+= 1 }
        } }
        guard n > 0 else {
            throw FineGrainError.unsupported(method: method, reason: "advantage normalisation needs at least 1 valid (mask-1) token, got none")
        }
        let mu = s / Double(n)
        var ss = 0.0
        x.withUnsafeBufferPointer { xp in mask.withUnsafeBufferPointer { mp in
            for i in 0 ..< xp.count where mp[i] != 0 { let d = xp[i] - mu; ss += d * d }
        } }
        let rstd = 1 / Swift.max(ss / Double(n), 1e-8).squareRoot()
        x.withUnsafeMutableBufferPointer { xp in mask.withUnsafeBufferPointer { mp in
            for i in 0 ..< xp.count { xp[i] = mp[i] != 0 ? (xp[i] - mu) * rstd : 0 }
        } }
    }

    /// Index of the last mask-1 token of response `r` (absolute), or nil if it has none.
    static func lastValid(_ offsets: [Int], _ mask: [UInt8], _ r: Int) -> Int? {
        var i = offsets[r + 1] - 1
        while i >= offsets[r] { if mask[i] != 0 { return i }; i -= 1 }
        return nil
    }
}

// MARK: - Fused kernels (one backward scan per row: token reward, GAE and the advantage moments together)

/// Masked first and second moments accumulated around a per-chunk shift (the chunk's first value), so one
/// streaming pass gives a variance as accurate as the two-pass one; chunks merge in fixed order (Chan et al.).
struct ShiftedMoments {
    var n = 0, shift = 0.0, s1 = 0.0, s2 = 0.0

    @inline(__always)
    mutating func add(_ x: Double) {
        if n == 0 { shift = x }
        let d = x - shift
        s1 += d; s2 += d * d; n &+= 1
    }

    /// Merges chunk moments in order: the count, the mean and the population variance (`M2 / n`).
    static func combine(_ parts: [ShiftedMoments]) -> (count: Int, mean: Double, variance: Double) {
        var n = 0, sum = 0.0
        for p in parts where p.n > 0 { n &+= p.n; sum += Double(p.n) * p.shift + p.s1 }
        guard n > 0 else { return (0, 0, 0) }
        let mu = sum / Double(n)
        var m2 = 0.0
        for p in parts where p.n > 0 {
            let cn = Double(p.n), cm = p.shift + p.s1 / cn
            let d = cm - mu
            m2 += Swift.max(p.s2 - p.s1 * p.s1 / cn, 0) + cn * d * d
        }
        return (n, mu, m2 / Double(n))
    }
}

/// One row's GAE backward scan over the output buffers: the caller first writes each token's reward into the
/// advantage buffer of the row (`a[lo ..< hi]`, cache-hot), then `scan` reads it back and overwrites it with
/// the advantage in the same backward pass, writes the returns and accumulates the masked advantage moments.
struct RowGAE {
    let v: UnsafePointer<Double>, m: UnsafePointer<UInt8>
    let a: UnsafeMutablePointer<Double>, g: UnsafeMutablePointer<Double>
    let gamma: Double, gl: Double

    /// verl's convention (`RewardModelPPO.gae` default): mask-0 tokens carry the value and advantage; both
    /// outputs are 0 there.
    @inline(__always)
    func scan(_ lo: Int, _ hi: Int, _ mom: inout ShiftedMoments) {
        var n = mom.n, k = mom.shift, s1 = mom.s1, s2 = mom.s2
        var nextV = 0.0, lastA = 0.0
        var i = hi &- 1
        while i >= lo {
            if m[i] != 0 {
                let vi = v[i]
                lastA = (a[i] + gamma * nextV - vi) + gl * lastA
                nextV = vi
                a[i] = lastA; g[i] = lastA + vi
                if n == 0 { k = lastA }
                let d = lastA - k
                s1 += d; s2 += d * d; n &+= 1
            } else {
                a[i] = 0; g[i] = 0
            }
            i &-= 1
        }
        mom = ShiftedMoments(n: n, shift: k, s1: s1, s2: s2)
    }

    /// OpenRLHF's convention (`openRLHFMasking`): `V * m`, `r * m`, every position a step, outputs not zeroed;
    /// the moments count mask-1 positions only.
    @inline(__always)
    func scanOpenRLHF(_ lo: Int, _ hi: Int, _ mom: inout ShiftedMoments) {
        var n = mom.n, k = mom.shift, s1 = mom.s1, s2 = mom.s2
        var nextV = 0.0, lastA = 0.0
        var i = hi &- 1
        while i >= lo {
            let mk = m[i] != 0
            let vi = mk ? v[i] : 0, ri = mk ? a[i] : 0
            lastA = (ri + gamma * nextV - vi) + gl * lastA
            nextV = vi
            a[i] = lastA; g[i] = lastA + vi
            if mk {
                if n == 0 { k = lastA }
                let d = lastA - k
                s1 += d; s2 += d * d; n &+= 1
            }
            i &-= 1
        }
        mom = ShiftedMoments(n: n, shift: k, s1: s1, s2: s2)
    }
}

extension RewardModelPPO {
    /// `x <- m ? (x - mean) * scale + add : 0` (with `add == nil`: `(x - mean) * scale`), token-parallel.
    static func affineMasked(_ x: inout [Double], mask: [UInt8], mean: Double, scale: Double, add: Double?) {
        let n = x.count
        x.withUnsafeMutableBufferPointer { xb in mask.withUnsafeBufferPointer { mp in
            let xs = SharedMutablePointer(xb), ms = SharedPointer(mp)
            CreditKernels.forEachTokenChunk(n) { _, range in
                guard let x = xs.base, let m = ms.base else { return }
                if let add {
                    for i in range { x[i] = m[i] != 0 ? (x[i] - mean) * scale + add : 0 }
                } else {
                    for i in range { x[i] = m[i] != 0 ? (x[i] - mean) * scale : 0 }
                }
            }
        } }
    }

    /// OpenRLHF's P5 normalisation (`normalize`) from moments a scan accumulated.
    static func normalize(_ x: inout [Double], mask: [UInt8], moments parts: [ShiftedMoments], method: String) throws {
        let (n, mu, variance) = ShiftedMoments.combine(parts)
        guard n > 0 else {
            throw FineGrainError.unsupported(method: method, reason: "advantage normalisation needs at least 1 valid (mask-1) token, got none")
        }
        affineMasked(&x, mask: mask, mean: mu, scale: 1 / Swift.max(variance, 1e-8).squareRoot(), add: nil)
    }

    /// Runs one fused scan per row chunk: `body(rows, gae)` walks its rows (writing each row's rewards into
    /// `gae.a`, then `gae.scan`) and returns the chunk's advantage moments. Returns the outputs and the moments
    /// in chunk order.
    static func fusedScan(offsets: [Int], mask: [UInt8], values: [Double], gamma: Double, lam: Double,
                          _ body: @Sendable (Range<Int>, RowGAE) -> ShiftedMoments)
        -> (advantages: [Double], returns: [Double], moments: [ShiftedMoments]) {
        var adv = overwrittenDoubles(offsets.last ?? 0)   // [N], every position written by the scan
        var ret = overwrittenDoubles(offsets.last ?? 0)   // [N]
        let parts = fusedScan(offsets: offsets, mask: mask, values: values, gamma: gamma, lam: lam, into: &adv, &ret, body)
        return (adv, ret, parts)
    }

    /// `fusedScan` into caller-provided `[N]` outputs (e.g. an advantage buffer already holding the rewards).
    static func fusedScan(offsets: [Int], mask: [UInt8], values: [Double], gamma: Double, lam: Double,
                          into adv: inout [Double], _ ret: inout [Double],
                          _ body: @Sendable (Range<Int>, RowGAE) -> ShiftedMoments) -> [ShiftedMoments] {
        let n = offsets.last ?? 0, rows = offsets.count - 1
        var parts = [ShiftedMoments](repeating: ShiftedMoments(), count: CreditKernels.rowChunks(rows: rows, tokens: n))
        values.withUnsafeBufferPointer { vp in mask.withUnsafeBufferPointer { mp in
            adv.withUnsafeMutableBufferPointer { ab in ret.withUnsafeMutableBufferPointer { rb in
                parts.withUnsafeMutableBufferPointer { pb in
                    let v = SharedPointer(vp), m = SharedPointer(mp), a = SharedMutablePointer(ab), g = SharedMutablePointer(rb)
                    let ps = SharedMutablePointer(pb)
                    CreditKernels.forEachRowChunkIndexed(rows: rows, tokens: n) { c, rr in
                        guard let v = v.base, let m = m.base, let a = a.base, let g = g.base else { return }
                        ps.base![c] = body(rr, RowGAE(v: v, m: m, a: a, g: g, gamma: gamma, gl: gamma * lam))
                    }
                }
            } }
        } }
        return parts
    }

    /// Last mask-1 index of the row `lo ..< hi`, or -1.
    @inline(__always)
    static func lastValid(_ m: UnsafePointer<UInt8>, _ lo: Int, _ hi: Int) -> Int {
        var i = hi &- 1
        while i >= lo { if m[i] != 0 { return i }; i &-= 1 }
        return -1
    }
}
