import Foundation

// PRIME — Process Reinforcement through Implicit Rewards.
//
// Paper: Cui et al., "Process Reinforcement through Implicit Rewards" (2025, arXiv 2502.01456). Reference code:
// PRIME-RL/PRIME @18ad596 (`compute_rloo_returns`, `dp_prime.py`) and verl's later `recipe/prime`
// (`prime_core_algos.py`, `prime_dp_rm.py`, read in the snapshot vendored by fatebreaker/tempo @0a1c273).
//
// The trick: an outcome-trained reward model π_φ is an implicit PRM — its log-ratio to a frozen reference gives a
// dense token reward  r_φ(y_t) = β·log(π_φ(y_t|y<t) / π_ref(y_t|y<t))  for free, and π_φ can be updated online
// with a cross-entropy loss on the outcome labels alone (`PRIMELoss.swift`).
//
// Estimator pipeline (`prime`):
//   1. implicit token reward r_t = β·q_t, q_t = lp_φ − lp_ref (granularity 'token'; 'whole' puts Σ r on the
//      last token; optional recipe extension λ > 0: r_t = Σ_{k≥t} λ^{k−t} β q_k);
//   2. prime_norm 'batch_norm': r ← r / (max_{i,t} |Σ_{t'≥t} r_{i,t'}| + 1e-6);
//   3. RLOO per reward source (implicit: every valid token; outcome: the last valid token), m̄_j = row mean:
//        paper:     r'_{i,t} = r_{i,t} − mean_{j≠i} m̄_j
//        reference: r'_{i,t} = (n·r_{i,t} − Σ_j m̄_j)/(n − 1)   (the row's own mean enters its baseline);
//   4. sources × coefficients (5, 5), returns G = Σ_sources reverseCumsum(r', γ), A = masked_whiten(G).

/// Which reference implementation to reproduce bit-for-bit (`reference_compatible`).
public enum PRIMEReference: String, Sendable, CaseIterable {
    /// The paper: β·q, leave-one-out baseline without the row's own mean, verl's whitening.
    case none
    /// PRIME-RL/PRIME @18ad596: no β (token score = q), self-inclusive baseline, no coefficients, early verl
    /// whitening (no 1e-8 in the mean), an empty response gives NaN.
    case original
    /// verl `recipe/prime`: β·q with the LAST valid token's implicit reward dropped, self-inclusive baseline,
    /// coefficients, verl's whitening (1e-8 in the mean), an empty response gives NaN.
    case recipe
}

/// PRIME implicit process rewards with leave-one-out returns, registered as `prime`.
///
/// Paper: "Process Reinforcement through Implicit Rewards" (2025, arXiv 2502.01456). Formula:
/// `r_t = β(lp_φ − lp_ref)`, `r ← r/(max|Σ_{t'≥t} r| + 1e-6)` (batch_norm), per source
/// `r'_{i,t} = r_{i,t} − mean_{j≠i} m̄_j` (m̄ = row mean over the source's positions; the outcome source is acc on
/// the last valid token, so it becomes `acc_i − mean_{j≠i} acc_j`), `G = Σ_s c_s·reverseCumsum(r'_s, γ_s)`,
/// `A = masked_whiten(G)·m`.
///
/// Paper vs reference: `reference_compatible = original | recipe` reproduces the two reference codes (see
/// `PRIMEReference`); the default `none` follows the paper. Groups are formed by id (the references assume
/// contiguous blocks of n: set `n_samples` to require that layout); every group needs ≥ 2 responses.
public enum PRIME {
    public static let paper = Citation("Process Reinforcement through Implicit Rewards", 2025, arxiv: "2502.01456")

    public static let info = MethodInfo(
        name: "prime", kind: .estimator,
        summary: "PRIME: implicit PRM token rewards β·log(π_φ/π_ref) + outcome, leave-one-out per source, whitened returns",
        paper: paper,
        formula: "r_t = β(lp_φ − lp_ref); r ← r/(max|revcumsum r| + 1e-6); r'_{i,t} = r_{i,t} − mean_{j≠i} m̄_j per source "
            + "(outcome: acc_i − mean_{j≠i} acc_j at the last token); G = Σ_s c_s·revcumsum_γs(r'_s); A = whiten(G)·m",
        params: [
            .number("beta", 0.05, "β of the implicit reward β·log(π_φ/π_ref) (PRIME's beta_train)"),
            .string("prime_granularity", "token", "'token': a reward on every token; 'whole': the summed reward on the last token", choices: ["token", "whole"]),
            .string("prime_norm", "batch_norm", "'batch_norm': divide by the batch's largest |return-to-go| (+1e-6); 'none'", choices: ["batch_norm", "none"]),
            .number("lambda", 0.0, "recipe extension: r_t = Σ_{k≥t} λ^{k−t} β q_k when > 0"),
            .bool("prime_use_gt", false, "with lambda > 0: replace the last token's term so the row's total equals acc"),
            .number("reward_dpo_coef", 5.0, "coefficient of the implicit-reward source (0 = skip it)"),
            .number("reward_gt_coef", 5.0, "coefficient of the outcome source (0 = skip it; then `reward` is not needed)"),
            .number("reward_model_gamma", 1.0, "discount of the implicit-reward returns"),
            .number("verifier_gamma", 1.0, "discount of the outcome returns"),
            .integer("n_samples", nil, "if set, groups must be contiguous blocks of exactly n responses (the references' layout)"),
            .string("reference_compatible", "none", "reproduce a reference exactly: 'original' (PRIME-RL/PRIME) or 'recipe' (verl recipe/prime)",
                    choices: PRIMEReference.allCases.map(\.rawValue)),
        ],
        requires: ["prm_logprobs", "prm_ref_logprobs", "reward"])

    public static let estimator = AdvantageEstimator(info: info) { batch, p in
        let ref = PRIMEReference(rawValue: try p.string("reference_compatible")) ?? .none
        let gtCoef = try p.double("reward_gt_coef"), dpoCoef = try p.double("reward_dpo_coef")
        let useGT = try p.bool("prime_use_gt")
        let needAcc = gtCoef != 0 || useGT
        let acc: [Double]? = needAcc ? try batch.require(batch.outcome, "reward", method: p.method) : nil
        if ref == .none, dpoCoef != 0, try p.double("lambda") == 0, try p.string("prime_granularity") == "token",
           let out = try fused(batch, p, acc: gtCoef != 0 ? acc : nil, dpoCoef: dpoCoef, gtCoef: gtCoef) {
            return out
        }
        let implicit: [Double]? = dpoCoef != 0 || ref == .original ? try implicitRewards(batch, p, acc: acc).normalized : nil
        return try advantages(batch, implicit: implicit, outcome: gtCoef != 0 || ref == .original ? acc : nil, p)
    }

    public static let estimators = [estimator]

    /// Steps 3-4 plus whitening: `returns` = G, `advantages = masked_whiten(G)·m` (the original repo's early verl
    /// whitening has no 1e-8 in the mean). Throws when fewer than 2 tokens are valid.
    public static func advantages(_ batch: RolloutBatch, implicit: [Double]?, outcome: [Double]?, _ p: Params) throws -> AdvantageOutput {
        let ref = PRIMEReference(rawValue: try p.string("reference_compatible")) ?? .none
        let g = try returns(batch, implicit: implicit, outcome: outcome, p)
        var adv = g
        if ref == .original {
            try PUREVerl.whitenNoMeanEpsilon(&adv, mask: batch.mask, method: p.method)
        } else {
            try CreditKernels.whiten(&adv, mask: batch.mask, zeroMasked: true, method: p.method)
        }
        return AdvantageOutput(advantages: adv, returns: g)
    }

    // MARK: - Fused pipeline (the paper's default)

    /// Steps 1-4 and the whitening for `reference_compatible = none`, `lambda = 0`, token granularity, with the
    /// implicit source on, without the `[N]` temporaries of `implicitRewards` / `returns`: pass 1 (row-parallel)
    /// accumulates each row's Σ β·q, its valid count and the batch's max |return-to-go|; pass 2 (row-parallel)
    /// writes G and reduces each row's mean and centred sum of squares while the row is in cache (combined in
    /// fixed order); pass 3 writes the whitened advantages. Same values as the unfused path up to summation
    /// order. Returns nil when fewer than 2 tokens are valid (the general path then throws its error).
    static func fused(_ batch: RolloutBatch, _ p: Params, acc: [Double]?, dpoCoef: Double, gtCoef: Double) throws -> AdvantageOutput? {
        let lpC = try batch.extra("prm_logprobs", method: p.method), lrC = try batch.extra("prm_ref_logprobs", method: p.method)
        let beta = try p.double("beta"), batchNorm = try p.string("prime_norm") == "batch_norm"
        let rows = batch.count, n = batch.tokenCount
        let gi = batch.groupIndex()
        try PURE.checkGroups(batch, gi, n: p.optionalInt("n_samples"), allowSingletons: false, method: p.method, nName: "n_samples")
        guard lpC.count == n, lrC.count == n else {
            throw FineGrainError.invalidField(field: "prm_logprobs", reason: "has \(lpC.count) entries for \(n) tokens")
        }
        let chunks = CreditKernels.rowChunks(rows: rows, tokens: n)
        var rowSum = [Double](repeating: 0, count: rows), rowCnt = [Int](repeating: 0, count: rows)   // [R]
        var lastValid = [Int](repeating: -1, count: rows)                                           // [R]
        var peakPart = [Double](repeating: 0, count: chunks)                                        // [chunks]
        lpC.withUnsafeBufferPointer { lpb in lrC.withUnsafeBufferPointer { lrb in batch.mask.withUnsafeBufferPointer { mp in
            rowSum.withUnsafeMutableBufferPointer { sb in rowCnt.withUnsafeMutableBufferPointer { cb in
                lastValid.withUnsafeMutableBufferPointer { lvb in peakPart.withUnsafeMutableBufferPointer { pkb in
                    let lp = SharedPointer(lpb), lr = SharedPointer(lrb), m = SharedPointer(mp)
                    let rs = SharedMutablePointer(sb), rc = SharedMutablePointer(cb), lv = SharedMutablePointer(lvb)
                    let pk = SharedMutablePointer(pkb)
                    CreditKernels.forEachRowChunkIndexed(rows: rows, tokens: n) { c, rr in
                        guard let lp = lp.base, let lr = lr.base, let m = m.base else { return }
                        var pk0 = 0.0, pk1 = 0.0                  // two max chains (max is exact in any order)
                        for r in rr {
                            let lo = batch.offsets[r]
                            var last = batch.offsets[r &+ 1] &- 1
                            while last >= lo && m[last] == 0 { last &-= 1 }
                            var t = batch.offsets[r &+ 1] &- 1, run = 0.0, cnt = 0
                            while t > lo {                        // score_t = β q_t at valid tokens, 0 elsewhere
                                let v0 = m[t] != 0, v1 = m[t &- 1] != 0
                                let x0 = beta * (lp[t] - lr[t]), x1 = beta * (lp[t &- 1] - lr[t &- 1])
                                run += v0 ? x0 : 0
                                let a0 = abs(run)
                                pk0 = a0 > pk0 ? a0 : pk0
                                run += v1 ? x1 : 0
                                let a1 = abs(run)
                                pk1 = a1 > pk1 ? a1 : pk1
                                cnt &+= (v0 ? 1 : 0) &+ (v1 ? 1 : 0)
                                t &-= 2
                            }
                            if t == lo {
                                let v0 = m[t] != 0
                                run += v0 ? beta * (lp[t] - lr[t]) : 0
                                let a0 = abs(run)
                                pk0 = a0 > pk0 ? a0 : pk0
                                cnt &+= v0 ? 1 : 0
                            }
                            rs.base![r] = run; rc.base![r] = cnt; lv.base![r] = last >= lo ? last : -1
                        }
                        pk.base![c] = pk1 > pk0 ? pk1 : pk0
                    }
                } }
            } }
        } } }
        if let r = rowCnt.firstIndex(of: 0) {
            throw FineGrainError.invalidField(field: "mask", reason: "response \(r) has no valid token, so its mean implicit reward is undefined")
        }
        if let o = acc, o.count != rows {
            throw FineGrainError.invalidField(field: "reward", reason: "has \(o.count) entries for \(rows) responses")
        }
        let total = rowCnt.reduce(0, &+)
        guard total > 1 else { return nil }
        let scale = batchNorm ? 1 / (peakPart.max()! + 1e-6) : 1.0
        // RLOO baselines per source: O(G) sums, O(R) per-row constants.
        let gammaI = try p.double("reward_model_gamma"), gammaO = acc == nil ? 1 : try p.double("verifier_gamma")
        var mean = [Double](repeating: 0, count: rows)
        var sumI = [Double](repeating: 0, count: batch.groupCount), sumO = sumI
        for r in 0 ..< rows {
            mean[r] = rowSum[r] * scale / Double(rowCnt[r])
            sumI[batch.group[r]] += mean[r]
            if let o = acc { sumO[batch.group[r]] += o[r] }
        }
        var baseI = [Double](repeating: 0, count: rows), xO = baseI                  // [R]
        for r in 0 ..< rows {
            let k = Double(gi.size(batch.group[r]))
            baseI[r] = (sumI[batch.group[r]] - mean[r]) / (k - 1)
            if let o = acc { xO[r] = o[r] - (sumO[batch.group[r]] - o[r]) / (k - 1) }
        }
        let cO = acc == nil ? 0 : gtCoef
        var g = overwrittenDoubles(n)                                                // [N], every position written
        var rowMean = [Double](repeating: 0, count: rows), rowM2 = rowMean, rowG = rowMean   // [R]
        let bI = baseI, xOut = xO, last = lastValid, cnt = rowCnt
        lpC.withUnsafeBufferPointer { lpb in lrC.withUnsafeBufferPointer { lrb in batch.mask.withUnsafeBufferPointer { mp in
            g.withUnsafeMutableBufferPointer { gb in rowMean.withUnsafeMutableBufferPointer { mb in rowM2.withUnsafeMutableBufferPointer { qb in
              rowG.withUnsafeMutableBufferPointer { rgb in
                let lp = SharedPointer(lpb), lr = SharedPointer(lrb), m = SharedPointer(mp), gs = SharedMutablePointer(gb)
                let ms = SharedMutablePointer(mb), qs = SharedMutablePointer(qb), rg = SharedMutablePointer(rgb)
                CreditKernels.forEachRowChunk(rows: rows, tokens: n) { rr in
                    guard let lp = lp.base, let lr = lr.base, let m = m.base, let g = gs.base else { return }
                    for r in rr {
                        let lo = batch.offsets[r], hi = batch.offsets[r &+ 1], b = bI[r], pos = last[r], xo = xOut[r]
                        var t = hi &- 1, runI = 0.0, runO = 0.0, s = 0.0
                        if gammaI == 1 && gammaO == 1 {
                            // γ = 1: the outcome return is 0 after the outcome token and xo from it on (exactly)
                            var o = cO * runO
                            while t > pos {
                                let valid = m[t] != 0
                                runI = (valid ? beta * (lp[t] - lr[t]) * scale - b : 0) + runI
                                let v = (0.0 + dpoCoef * runI) + o
                                g[t] = v; s += valid ? v : 0
                                t &-= 1
                            }
                            o = cO * (xo + runO)
                            while t >= lo {
                                let valid = m[t] != 0
                                runI = (valid ? beta * (lp[t] - lr[t]) * scale - b : 0) + runI
                                let v = (0.0 + dpoCoef * runI) + o
                                g[t] = v; s += valid ? v : 0
                                t &-= 1
                            }
                        } else {
                            while t >= lo {
                                let valid = m[t] != 0
                                runI = (valid ? beta * (lp[t] - lr[t]) * scale - b : 0) + gammaI * runI
                                runO = (t == pos ? xo : 0) + gammaO * runO
                                let v = (0.0 + dpoCoef * runI) + cO * runO
                                g[t] = v; s += valid ? v : 0
                                t &-= 1
                            }
                        }
                        let mu = s / Double(cnt[r])                     // the row's mean and centred Σ (x − μ_r)²
                        var q0 = 0.0, q1 = 0.0, q2 = 0.0, q3 = 0.0, i = lo
                        while i &+ 4 <= hi {                            // four chains, fixed order
                            let d0 = g[i] - mu, d1 = g[i &+ 1] - mu, d2 = g[i &+ 2] - mu, d3 = g[i &+ 3] - mu
                            q0 += m[i] != 0 ? d0 * d0 : 0; q1 += m[i &+ 1] != 0 ? d1 * d1 : 0
                            q2 += m[i &+ 2] != 0 ? d2 * d2 : 0; q3 += m[i &+ 3] != 0 ? d3 * d3 : 0
                            i &+= 4
                        }
                        while i < hi { let d = g[i] - mu; q0 += m[i] != 0 ? d * d : 0; i &+= 1 }
                        let q = (q0 + q1) + (q2 + q3)
                        ms.base![r] = mu; qs.base![r] = q; rg.base![r] = s
                    }
                }
              }
            } } }
        } } }
        // Chan's combination in row order, then verl's whitening statistics (1e-8 in the mean's denominator).
        var sum = 0.0
        for r in 0 ..< rows { sum += rowG[r] }
        let exact = sum / Double(total)
        let denom = Double(total) + MaskedStats.meanEpsilon, mu = sum / denom
        var ss = 0.0
        for r in 0 ..< rows { let d = rowMean[r] - exact; ss += rowM2[r] + Double(rowCnt[r]) * (d * d) }
        ss += Double(total) * ((exact - mu) * (exact - mu))                            // Σ (x − μ)² about verl's μ
        let variance = ss / denom * (Double(total) / Double(total - 1))
        let inv = 1.0 / (variance + MaskedStats.whitenEpsilon).squareRoot()
        var adv = overwrittenDoubles(n)                                                // [N]
        g.withUnsafeBufferPointer { gp in adv.withUnsafeMutableBufferPointer { ab in
            CreditKernels.apply(mean: mu, inv: inv, from: gp.baseAddress, to: SharedMutablePointer(ab), mask: batch.mask, zeroMasked: true, n: n)
        } }
        return AdvantageOutput(advantages: adv, returns: g)
    }

    // MARK: - Implicit rewards (steps 1-2)

    /// `q = lp_φ − lp_ref` `[N]`, the token scores `[N]` and the scores after `prime_norm` `[N]`.
    public struct ImplicitRewards: Sendable {
        public var q: [Double]
        public var score: [Double]
        public var normalized: [Double]
    }

    /// Steps 1-2 from the `prm_logprobs` / `prm_ref_logprobs` columns; `acc` `[R]` is needed for `prime_use_gt`.
    public static func implicitRewards(_ batch: RolloutBatch, _ p: Params, acc: [Double]?) throws -> ImplicitRewards {
        let lp = try batch.extra("prm_logprobs", method: p.method), lr = try batch.extra("prm_ref_logprobs", method: p.method)
        let ref = PRIMEReference(rawValue: try p.string("reference_compatible")) ?? .none
        let beta = ref == .original ? 1.0 : try p.double("beta")          // the original repo applies no β
        let lambda = try p.double("lambda"), useGT = try p.bool("prime_use_gt")
        let whole = try p.string("prime_granularity") == "whole"
        try p.require("lambda", lambda >= 0 && lambda <= 1, "must lie in [0, 1], got \(lambda)")
        try p.require("lambda", ref != .original || lambda == 0, "the original PRIME repository has no lambda; use reference_compatible 'recipe' or 'none'")
        if useGT && acc == nil { throw FineGrainError.missingField(field: "reward", method: p.method) }
        let n = batch.tokenCount
        var q = [Double](repeating: 0, count: n), score = q, r = q                   // [N] each
        for row in 0 ..< batch.count {
            let lo = batch.offsets[row], hi = batch.offsets[row + 1], valid = batch.validCount(row)
            for t in lo ..< hi { q[t] = ref == .original || batch.mask[t] != 0 ? lp[t] - lr[t] : 0 }
            // r_t = β q_t, or the λ-return of β q with the last valid term optionally set so Σ = acc
            var last = -1
            for t in lo ..< hi where batch.mask[t] != 0 { r[t] = beta * q[t]; last = t }
            if lambda > 0 {
                if useGT, last >= 0, let acc {
                    var others = 0.0
                    for t in lo ..< last where batch.mask[t] != 0 { others += r[t] }
                    r[last] = acc[row] - others
                }
                var run = 0.0
                for t in stride(from: hi - 1, through: lo, by: -1) where batch.mask[t] != 0 { run = r[t] + lambda * run; r[t] = run }
            }
            if whole {
                if ref == .recipe && valid != 1 {
                    throw FineGrainError.unsupported(method: p.method, reason:
                        "the verl recipe's 'whole' granularity only works when every response has exactly one valid token (response \(row) has \(valid))")
                }
                var s = 0.0
                for t in lo ..< hi where batch.mask[t] != 0 { s += r[t] }
                if last >= 0 { score[last] = s }
            } else {
                // the recipe drops the LAST valid token's implicit reward (reference quirk)
                for t in lo ..< hi where batch.mask[t] != 0 && !(ref == .recipe && t == last) { score[t] = r[t] }
            }
        }
        var normalized = score
        if try p.string("prime_norm") == "batch_norm" {
            var peak = 0.0                                   // max_{i,t} |Σ_{t'≥t} score_{i,t'}|
            for row in 0 ..< batch.count {
                var run = 0.0
                for t in batch.range(row).reversed() { run += score[t]; peak = max(peak, abs(run)) }
            }
            let scale = 1 / (peak + 1e-6)
            for t in 0 ..< n { normalized[t] = score[t] * scale }
        }
        return ImplicitRewards(q: q, score: score, normalized: normalized)
    }

    // MARK: - Leave-one-out returns (steps 3-4)

    /// Returns `G` `[N]` from an implicit token reward `[N]` (read at valid tokens) and an outcome `[R]` (read at
    /// the last valid token), either may be nil. Coefficients multiply each source except in the original repo.
    public static func returns(_ batch: RolloutBatch, implicit: [Double]?, outcome: [Double]?, _ p: Params) throws -> [Double] {
        let ref = PRIMEReference(rawValue: try p.string("reference_compatible")) ?? .none
        let rows = batch.count, n = batch.tokenCount
        var g = [Double](repeating: 0, count: n)                                     // [N]
        let dpoCoef = ref == .original ? 1 : try p.double("reward_dpo_coef")
        let gtCoef = ref == .original ? 1 : try p.double("reward_gt_coef")
        guard (implicit != nil && dpoCoef != 0) || (outcome != nil && gtCoef != 0) else { return g }   // no source: G = 0
        let gi = batch.groupIndex()
        try PURE.checkGroups(batch, gi, n: p.optionalInt("n_samples"), allowSingletons: false, method: p.method, nName: "n_samples")
        if let x = implicit, dpoCoef != 0 {                                          // a 0-coefficient source is skipped
            guard x.count == n else { throw FineGrainError.invalidField(field: "prm_logprobs", reason: "has \(x.count) entries for \(n) tokens") }
            let gamma = try p.double("reward_model_gamma")
            var mean = [Double](repeating: 0, count: rows)                           // [R] m̄_j
            for r in 0 ..< rows {
                var s = 0.0, c = 0
                for t in batch.range(r) where batch.mask[t] != 0 { s += x[t]; c &+= 1 }
                if c == 0 && ref == .none {
                    throw FineGrainError.invalidField(field: "mask", reason: "response \(r) has no valid token, so its mean implicit reward is undefined")
                }
                mean[r] = s / Double(c)                                              // empty: NaN, as the references
            }
            try addSource(&g, batch, gi, mean: mean, coef: dpoCoef, gamma: gamma, ref: ref) { r, t in batch.mask[t] != 0 ? x[t] : nil }
        }
        if let o = outcome, gtCoef != 0 {
            guard o.count == rows else { throw FineGrainError.invalidField(field: "reward", reason: "has \(o.count) entries for \(rows) responses") }
            let gamma = try p.double("verifier_gamma")
            var pos = [Int](repeating: -1, count: rows)                              // [R] the outcome token
            for r in 0 ..< rows {
                if batch.validCount(r) == 0 && ref == .none {
                    throw FineGrainError.invalidField(field: "mask", reason: "response \(r) has no valid token to carry its outcome reward")
                }
                pos[r] = batch.outcomeTokenIndex(r) ?? -1
                if ref == .recipe && pos[r] >= 0 && batch.mask[pos[r]] == 0 { pos[r] = -1 }   // the recipe masks it out
            }
            // the recipe builds this source in a float32 tensor: reproduce its rounding
            try addSource(&g, batch, gi, mean: o, coef: gtCoef, gamma: gamma, ref: ref, float32: ref == .recipe) { r, t in t == pos[r] ? o[r] : nil }
        }
        return g
    }

    /// Adds `coef·reverseCumsum_γ(r')` of one source to `g`, where `value(r, t)` is the source's reward at a reward
    /// position (nil elsewhere) and `mean` its row means. RLOO per group of n (paper: without the row's own mean).
    static func addSource(_ g: inout [Double], _ batch: RolloutBatch, _ gi: RolloutBatch.GroupIndex, mean: [Double],
                          coef: Double, gamma: Double, ref: PRIMEReference, float32: Bool = false,
                          value: (Int, Int) -> Double?) throws {
        var sum = [Double](repeating: 0, count: batch.groupCount)                   // [G] Σ_j m̄_j
        var sum32 = [Float](repeating: 0, count: float32 ? batch.groupCount : 0)
        for r in 0 ..< batch.count {
            sum[batch.group[r]] += mean[r]
            if float32 { sum32[batch.group[r]] += Float(mean[r]) }
        }
        for r in 0 ..< batch.count {
            let k = Double(gi.size(batch.group[r])), total = sum[batch.group[r]]
            var run = 0.0
            for t in batch.range(r).reversed() {
                var x = 0.0
                if let v = value(r, t) {
                    if float32 {
                        let x32 = Float(v) * Float(k / (k - 1)) - sum32[batch.group[r]] / Float(k - 1)
                        x = Double(x32 * Float(coef)) / coef
                    } else {
                        x = ref == .none ? v - (total - mean[r]) / (k - 1) : v * (k / (k - 1)) - total / (k - 1)
                    }
                }
                run = x + gamma * run
                g[t] += coef * run
            }
        }
    }
}
