import Foundation

// PURE — min-form credit assignment for process reward models (PRMs).
//
// Paper: Cheng et al., "Stop Summation: Min-Form Credit Assignment Is All Process Reward Model Needs for
// Reasoning" (2025, arXiv 2504.15275). Reference code: CJReinforce/PURE, branch `main` @41f9363 (OpenRLHF, the
// paper's reported runs; this file) and branch `verl` @83f9869 (`PUREVerl.swift`).
//
// The trick: the sum-form value V(s_t) = Σ_{t'≥t} r_t' lets a policy farm PRM reward with many mediocre steps.
// PURE uses the min-form V(s_t) = min_{t'≥t} r_t', approximated by re-weighting the K step scores with
// w = softmax(−PR/T) and then summing as usual: Σ_k w_k·PR_k → min_k PR_k as T → 0.
//
// Pipeline (`pure`, OpenRLHF `main`, one batch = one replay buffer):
//   1. step scores PR_k (`step_rewards`, the PRM's p(correct) − p(wrong) ∈ [−1, 1]) at the step-end tokens;
//   2. min-form:      r_k = w_k·PR_k,  w = softmax_k(−PR_k / T)  (uniform 1/K with `disable_weighted_reward`);
//   3. RLOO baseline: O_i = Σ_k r_{i,k};
//        token: r_{i,k} −= len_{i,k} · Σ_{j≠i} O_j / Σ_{j≠i} L_j     (L = valid tokens, len = tokens of step k
//                                                                     without its end token)
//        step:  r_{i,k} −= (1/(n−1)) Σ_{j≠i} O_j / K_j;
//   4. verifiable reward: + coef·(v_i − mean_{j≠i} v_j) on the last valid token (v = `reward`; the reference's
//      v = solved − 1 ∈ {−1, 0} is a constant shift of solved, which leave-one-out cancels);
//   5. KL shaping r_t −= β·KL_t; returns G_t = Σ_{t'≥t} r_t' (γ = 1); advantages = G, 0 at step-end tokens;
//   6. batch normalisation (OpenRLHF replay buffer, spec P5): population std over the non-zeroed valid tokens,
//      rstd = 1/sqrt(max(var, 1e-8)).

/// PURE with OpenRLHF's RLOO pipeline (CJReinforce/PURE `main`), registered as `pure`.
///
/// Paper: "Stop Summation: Min-Form Credit Assignment Is All Process Reward Model Needs for Reasoning" (2025,
/// arXiv 2504.15275). Formula: `r_k = softmax_k(−PR_k/T)·PR_k`, RLOO baseline per step (token: `len_k·ΣO_j/ΣL_j`
/// over j ≠ i; step: `mean_{j≠i} O_j/K_j`), `+ coef·(v_i − mean_{j≠i} v_j)` at the last valid token, `− β·KL`,
/// `A_t = Σ_{t'≥t} r_t'` zeroed at step ends, then `(A − μ)/sqrt(max(σ², 1e-8))` over the non-zeroed tokens.
///
/// Paper vs reference (`reference_compatible`, default false = the intent):
/// * normalisation: the reference excludes every advantage that is exactly 0 from the count while its variance
///   sum still runs over all valid tokens (and it zeroes every exact-0 output); the default excludes exactly
///   the step-end tokens from both sums;
/// * a group of one: the reference divides by n − 1 = 0 (NaN rows); the default throws.
public enum PURE {
    public static let paper = Citation(
        "Stop Summation: Min-Form Credit Assignment Is All Process Reward Model Needs for Reasoning", 2025, arxiv: "2504.15275")

    public static let info = MethodInfo(
        name: "pure", kind: .estimator,
        summary: "PURE: min-form PRM credit (softmax(−PR/T) step weights), RLOO step/token baseline, verifiable reward, OpenRLHF normalisation",
        paper: paper,
        formula: "r_k = softmax_k(−PR_k/T)·PR_k; r_k −= RLOO baseline (token: len_k·Σ_{j≠i}O_j/Σ_{j≠i}L_j, step: mean_{j≠i} O_j/K_j); "
            + "r_eos += coef·(v_i − mean_{j≠i} v_j); r_t −= β·KL_t; A_t = Σ_{t'≥t} r_t' (0 at step ends); A ← (A−μ)/sqrt(max(σ²,1e-8))",
        params: [
            .number("temperature", 0.1, "T of the min-form weights softmax(−PR/T) (PURE uses 0.1)"),
            .bool("disable_weighted_reward", false, "uniform weights 1/K: the MEAN of the step scores (not the sum)"),
            .string("reward_baseline", "token", "RLOO baseline: 'token' (per-token average of the others, released script) or 'step'", choices: ["token", "step"]),
            .string("reward_mode", "PRMVR", "which rewards enter: PRM step scores, verifiable reward, or both", choices: ["PRM", "VR", "PRMVR"]),
            .number("verifiable_reward_coef", 1.0, "weight of the leave-one-out verifiable reward"),
            .number("kl_coef", 0.0, "β of the KL shaping r −= β·KL (released script: 0.001); > 0 reads old_logprobs and ref_logprobs"),
            .string("kl_estimator", "k1", "per-token KL: k1 = old − ref, k3 = e^(ref−old) − (ref−old) − 1", choices: ["k1", "k3"]),
            .bool("nomask_separator_adv", false, "keep the advantages of step-end tokens (default: zero them and leave them out of the statistics)"),
            .bool("normalize", true, "OpenRLHF replay-buffer normalisation of the advantages (batch-global)"),
            .integer("n_samples_per_prompt", nil, "if set, groups must be contiguous blocks of exactly n responses (the reference's layout)"),
            .bool("reference_compatible", false, "reproduce CJReinforce/PURE exactly: exact-zero normalisation count quirk, NaN for groups of one"),
        ],
        requires: ["step_ends", "step_rewards", "reward", "old_logprobs (kl_coef > 0)", "ref_logprobs (kl_coef > 0)"])

    public static let estimator = AdvantageEstimator(info: info) { batch, p in try compute(batch, p) }
    /// Both PURE pipelines: `pure` (OpenRLHF, the paper's runs) and `pure_verl` (the verl branch).
    public static let estimators = [estimator, PUREVerl.estimator]

    // MARK: - Step scores and the min-form trick

    /// A PRM's 2-class step score `softmax(z)[1] − softmax(z)[0] = tanh((z1 − z0)/2) ∈ [−1, 1]`.
    @inline(__always)
    public static func stepScore(_ z0: Double, _ z1: Double) -> Double { tanh((z1 - z0) / 2) }

    /// The min-form trick in place over `k` step scores: `s_k ← w_k·s_k` with `w = softmax(−s/T)` (max-shifted),
    /// or `w = 1/k` if `uniform`. Returns `Σ_k w_k s_k`, which tends to `min_k s_k` as T → 0.
    @inline(__always)
    static func minFormInPlace(_ s: UnsafeMutablePointer<Double>, _ k: Int, temperature: Double, uniform: Bool) -> Double {
        guard k > 0 else { return 0 }
        var total = 0.0
        if uniform {
            let w = 1.0 / Double(k)
            for i in 0 ..< k { s[i] *= w; total += s[i] }
            return total
        }
        var lo = s[0]
        for i in 1 ..< k where s[i] < lo { lo = s[i] }   // max of −s/T sits at min s
        var z = 0.0
        for i in 0 ..< k { z += exp((lo - s[i]) / temperature) }
        for i in 0 ..< k { s[i] *= exp((lo - s[i]) / temperature) / z; total += s[i] }
        return total
    }

    /// Min-form rewards of one row of step slots (the reference's `turn_process_reward_logits_to_reward` after
    /// the 2-class softmax): `w·PR` at valid slots, 0 elsewhere. A row with no valid slot is all NaN, as the
    /// reference's softmax over only −inf gives.
    public static func minFormRewards(scores: [Double], valid: [Bool], temperature: Double, uniform: Bool) -> [Double] {
        var packed = [Double](); packed.reserveCapacity(scores.count)
        for (s, v) in zip(scores, valid) where v { packed.append(s) }
        guard !packed.isEmpty else { return [Double](repeating: .nan, count: scores.count) }
        _ = packed.withUnsafeMutableBufferPointer { minFormInPlace($0.baseAddress!, $0.count, temperature: temperature, uniform: uniform) }
        var out = [Double](repeating: 0, count: scores.count), k = 0
        for i in 0 ..< scores.count where i < valid.count && valid[i] { out[i] = packed[k]; k += 1 }
        return out
    }

    /// OpenRLHF step split of one response: every separator token ends a step, the last valid token (EOS) ends the
    /// last one. Returns step ends (exclusive, relative to the response start: the reference's `score_ids`).
    /// Throws when the response has no valid token or its last valid token is itself a separator (the reference
    /// would then place two steps on one token and crash).
    public static func stepEnds(tokens: ArraySlice<Int32>, mask: ArraySlice<UInt8>, separators: Set<Int32>, response r: Int) throws -> [Int] {
        let base = tokens.startIndex
        guard let eos = mask.lastIndex(where: { $0 != 0 }).map({ $0 - mask.startIndex }) else {
            throw FineGrainError.invalidField(field: "mask", reason: "response \(r) has no valid token, so it has no final step")
        }
        var ends = [Int]()
        for t in 0 ..< eos where separators.contains(tokens[base + t]) { ends.append(t + 1) }
        if separators.contains(tokens[base + eos]) {
            throw FineGrainError.invalidField(field: "tokens", reason:
                "response \(r): its last valid token (\(eos)) is a step separator; the final step must end on EOS")
        }
        ends.append(eos + 1)
        return ends
    }

    // MARK: - Rewards (steps 1-4)

    /// Step-level rewards of the pipeline before the token pass, all in the batch's step layout.
    public struct ShapedRewards: Sendable {
        /// `w_k·PR_k`, `[S]` (the reference's `process_reward_matrix` entries).
        public var minForm: [Double]
        /// `O_i = Σ_k w_k·PR_k`, `[R]` (the reference's `info["reward"]`).
        public var outcome: [Double]
        /// Step rewards after the RLOO baseline, `[S]`.
        public var stepRewards: [Double]
        /// `coef·(v_i − mean_{j≠i} v_j)`, `[R]`, added on the last valid token (0 when VR is off).
        public var verifiable: [Double]
        /// `len_k`: valid tokens of step k without its end token, `[S]`.
        public var stepTokens: [Int]
    }

    /// Steps 1-4 of the pipeline. Throws `missingField` for absent inputs, `unsupported` for groups of one
    /// (unless `reference_compatible`), `invalidParameter` for a bad temperature or a group layout that is not
    /// contiguous blocks of `n_samples_per_prompt`.
    public static func shapedRewards(_ batch: RolloutBatch, _ p: Params) throws -> ShapedRewards {
        let method = p.method
        let mode = try p.string("reward_mode"), usePRM = mode.contains("PRM"), useVR = mode.contains("VR")
        let temperature = try p.double("temperature"), uniform = try p.bool("disable_weighted_reward")
        let compat = try p.bool("reference_compatible")
        try p.require("temperature", temperature > 0 && temperature.isFinite, "must be a positive finite number, got \(temperature)")
        if usePRM && batch.stepReward == nil { throw FineGrainError.missingField(field: "step_rewards", method: method) }
        let gi = batch.groupIndex()
        try checkGroups(batch, gi, n: p.optionalInt("n_samples_per_prompt"), allowSingletons: compat, method: method)

        let rows = batch.count
        let so = batch.stepOffsets ?? [Int](repeating: 0, count: rows + 1)   // [R+1]
        let ends = batch.stepEnds ?? []                                         // [S]
        let s = ends.count
        var minForm = usePRM ? batch.stepReward! : [Double](repeating: 0, count: s)   // [S]
        var outcome = [Double](repeating: 0, count: rows)                              // [R]
        var stepTokens = [Int](repeating: 0, count: s)                                 // [S]
        var valid = [Int](repeating: 0, count: rows)                                   // [R] L_i
        minForm.withUnsafeMutableBufferPointer { mfb in batch.mask.withUnsafeBufferPointer { mp in
            outcome.withUnsafeMutableBufferPointer { ob in stepTokens.withUnsafeMutableBufferPointer { sb in
                valid.withUnsafeMutableBufferPointer { vb in
                    let mfs = SharedMutablePointer(mfb), ms = SharedPointer(mp), os = SharedMutablePointer(ob)
                    let sts = SharedMutablePointer(sb), vs = SharedMutablePointer(vb)
                    CreditKernels.forEachRowChunk(rows: rows, tokens: batch.tokenCount) { rr in
                        guard let m = ms.base, let out = os.base, let st = sts.base, let val = vs.base else { return }
                        @inline(__always) func nonzero(_ a: Int, _ b: Int) -> Int {   // valid tokens in a ..< b
                            CreditKernels.countNonzero(m, from: a, to: b)
                        }
                        for r in rr {
                            let lo = batch.offsets[r]
                            // min-form weights over this response's K steps (the paper's trick)
                            if usePRM, so[r &+ 1] > so[r], let mf = mfs.base {
                                out[r] = minFormInPlace(mf + so[r], so[r &+ 1] &- so[r], temperature: temperature, uniform: uniform)
                            }
                            var prev = 0, count = 0
                            for k in so[r] ..< so[r &+ 1] {            // len_k: tokens strictly inside step k
                                let c = nonzero(lo &+ prev, lo &+ ends[k] &- 1)
                                st[k] = c
                                count &+= c &+ (m[lo &+ ends[k] &- 1] != 0 ? 1 : 0)
                                prev = ends[k]
                            }
                            val[r] = count &+ nonzero(lo &+ prev, batch.offsets[r &+ 1])
                        }
                    }
                }
            } }
        } }

        // RLOO baseline on the step rewards: O(R) group sums.
        var stepRewards = minForm
        let g = batch.groupCount
        var sumO = [Double](repeating: 0, count: g), sumL = [Double](repeating: 0, count: g), sumA = sumO
        let baseline = try p.string("reward_baseline")
        for r in 0 ..< rows {
            let k = so[r + 1] - so[r]
            sumO[batch.group[r]] += outcome[r]; sumL[batch.group[r]] += Double(valid[r])
            sumA[batch.group[r]] += k > 0 ? outcome[r] / Double(k) : 0
        }
        for r in 0 ..< rows where so[r + 1] > so[r] {
            let gr = batch.group[r], k = so[r + 1] - so[r]
            if baseline == "token" {
                let otherL = sumL[gr] - Double(valid[r])
                // others with no valid token (or, compat, a group of one: 0/0 = NaN as in the reference)
                let perToken = otherL == 0 && !compat ? 0 : (sumO[gr] - outcome[r]) / otherL
                for j in so[r] ..< so[r + 1] { stepRewards[j] -= perToken * Double(stepTokens[j]) }
            } else {
                let n = Double(gi.size(gr))
                let b = (sumA[gr] - outcome[r] / Double(k)) / (n - 1)
                for j in so[r] ..< so[r + 1] { stepRewards[j] -= b }
            }
        }

        var verifiable = [Double](repeating: 0, count: rows)
        if useVR {
            guard let v = batch.outcome else { throw FineGrainError.missingField(field: "reward", method: method) }
            let coef = try p.double("verifiable_reward_coef")
            var sumV = [Double](repeating: 0, count: g)
            for r in 0 ..< rows { sumV[batch.group[r]] += v[r] }
            for r in 0 ..< rows {
                let n = Double(gi.size(batch.group[r]))
                verifiable[r] = (v[r] - (sumV[batch.group[r]] - v[r]) / (n - 1)) * coef
            }
        }
        return ShapedRewards(minForm: minForm, outcome: outcome, stepRewards: stepRewards, verifiable: verifiable, stepTokens: stepTokens)
    }

    /// The per-token rewards `[N]` of `shaped` before KL (step rewards on step-end tokens, the verifiable
    /// reward on the last valid token) — the reference's `process_rewards` after `process_experiences`.
    public static func tokenRewards(_ batch: RolloutBatch, _ shaped: ShapedRewards) -> [Double] {
        var out = [Double](repeating: 0, count: batch.tokenCount)
        let so = batch.stepOffsets ?? [Int](repeating: 0, count: batch.count + 1), ends = batch.stepEnds ?? []
        for r in 0 ..< batch.count {
            for k in so[r] ..< so[r + 1] { out[batch.offsets[r] + ends[k] - 1] += shaped.stepRewards[k] }
            if let i = batch.outcomeTokenIndex(r) { out[i] += shaped.verifiable[r] }
        }
        return out
    }

    // MARK: - Returns and normalisation (steps 5-6)

    static func compute(_ batch: RolloutBatch, _ p: Params) throws -> AdvantageOutput {
        let shaped = try shapedRewards(batch, p)
        let klCoef = try p.double("kl_coef"), k3 = try p.string("kl_estimator") == "k3"
        let maskEnds = !(try p.bool("nomask_separator_adv")), compat = try p.bool("reference_compatible")
        let old = klCoef != 0 ? try batch.require(batch.oldLogprob, "old_logprobs", method: p.method) : []
        let ref = klCoef != 0 ? try batch.require(batch.refLogprob, "ref_logprobs", method: p.method) : []
        let n = batch.tokenCount, rows = batch.count
        let so = batch.stepOffsets ?? [Int](repeating: 0, count: rows + 1), ends = batch.stepEnds ?? []
        let outIdx = (0 ..< rows).map { batch.outcomeTokenIndex($0) ?? -1 }   // [R] last valid token
        if klCoef == 0 && !compat {
            return computeSegments(batch, shaped, so: so, ends: ends, outIdx: outIdx, maskEnds: maskEnds, normalize: try p.bool("normalize"))
        }
        var ret = [Double](repeating: 0, count: n)                     // [N]
        var isEnd = [UInt8](repeating: 0, count: maskEnds ? n : 0)     // [N] step-end flags (only when zeroed)
        ret.withUnsafeMutableBufferPointer { rb in batch.mask.withUnsafeBufferPointer { mp in
            old.withUnsafeBufferPointer { op in ref.withUnsafeBufferPointer { fp in isEnd.withUnsafeMutableBufferPointer { eb in
                let o = SharedMutablePointer(rb), m = SharedPointer(mp), lpOld = SharedPointer(op), lpRef = SharedPointer(fp)
                let e = SharedMutablePointer(eb)
                CreditKernels.forEachRowChunk(rows: rows, tokens: n) { rr in
                    guard let o = o.base, let m = m.base else { return }
                    for r in rr {
                        let lo = batch.offsets[r], hi = batch.offsets[r &+ 1]
                        var k = so[r &+ 1] &- 1, g = 0.0, t = hi &- 1
                        while t >= lo {                         // backward: G_t = G_{t+1} + r_t
                            var x = 0.0, end = false
                            if k >= so[r], lo &+ ends[k] &- 1 == t { x = shaped.stepRewards[k]; end = true; k &-= 1 }
                            if t == outIdx[r] { x += shaped.verifiable[r] }
                            if klCoef != 0, m[t] != 0, let a = lpOld.base, let b = lpRef.base {
                                let d = b[t] - a[t]
                                x -= klCoef * (k3 ? exp(d) - d - 1 : a[t] - b[t])
                            }
                            g += x
                            if end && maskEnds, let e = e.base { e[t] = 1 }   // (an empty array's base may be non-nil)
                            o[t] = m[t] == 0 || (end && maskEnds) ? 0 : g
                            t &-= 1
                        }
                    }
                }
            } } }
        } }
        var adv = ret
        if try p.bool("normalize") { normalizeOpenRLHF(&adv, mask: batch.mask, zeroed: maskEnds ? isEnd : nil, compat: compat) }
        var diag: [String: Double] = ["steps": Double(ends.count)]
        if rows > 0 { diag["prm_outcome_mean"] = shaped.outcome.reduce(0, +) / Double(rows) }
        return AdvantageOutput(advantages: adv, returns: ret, diagnostics: diag)
    }

    /// OpenRLHF's replay-buffer normalisation (spec P5) in place, batch-global: `μ = Σ x / count`,
    /// `σ² = Σ (x − μ)² / count` (population), `x ← (x − μ)/sqrt(max(σ², 1e-8))`. Statistics run over valid
    /// tokens minus the `zeroed` ones (which stay 0); mask-0 positions stay 0. `compat` reproduces the reference:
    /// the count drops every exact-0 value, the variance sum keeps them, and every exact-0 value stays 0.
    static func normalizeOpenRLHF(_ x: inout [Double], mask: [UInt8], zeroed: [UInt8]?, compat: Bool) {
        let n = x.count
        var sum = 0.0, count = 0
        @inline(__always) func inStats(_ i: Int) -> Bool {
            mask[i] != 0 && (compat || zeroed == nil || zeroed![i] == 0)
        }
        for i in 0 ..< n where inStats(i) { sum += x[i]; count &+= 1 }
        if compat && zeroed != nil { for i in 0 ..< n where x[i] == 0 { count &-= 1 } }
        let mean = sum / Double(count)
        var ss = 0.0
        for i in 0 ..< n where inStats(i) { let d = x[i] - mean; ss += d * d }
        let rstd = 1 / max(ss / Double(count), 1e-8).squareRoot()
        for i in 0 ..< n {
            let keep = mask[i] != 0 && !(zeroed != nil && (compat ? x[i] == 0 : zeroed![i] != 0))
            x[i] = keep ? (x[i] - mean) * rstd : 0
        }
    }

    // MARK: - Groups

    /// Every group needs ≥ 2 responses for a leave-one-out baseline (unless `allowSingletons`, the reference's
    /// NaN); with `n`, the batch must be contiguous blocks of exactly `n` responses, as the reference reshapes.
    static func checkGroups(_ batch: RolloutBatch, _ gi: RolloutBatch.GroupIndex, n: Int?, allowSingletons: Bool, method: String,
                            nName: String = "n_samples_per_prompt") throws {
        if let n {
            guard n >= 1 else { throw FineGrainError.invalidParameter(name: nName, method: method, reason: "must be >= 1, got \(n)") }
            guard batch.count % n == 0 else {
                throw FineGrainError.invalidParameter(name: nName, method: method, reason:
                    "the batch has \(batch.count) responses, not a multiple of \(n) (the reference groups contiguous blocks of n)")
            }
            for r in 0 ..< batch.count where batch.group[r] != batch.group[r - r % n] || gi.size(batch.group[r]) != n {
                throw FineGrainError.invalidField(field: "group", reason:
                    "response \(r) breaks the layout of contiguous groups of exactly \(n) responses required by \(nName)")
            }
        }
        if !allowSingletons, let g = (0 ..< batch.groupCount).first(where: { gi.size($0) < 2 }) {
            throw FineGrainError.unsupported(method: method, reason:
                "group '\(batch.groupIDs[g])' has 1 response; the leave-one-out baseline needs at least 2 per group")
        }
    }
}
