/// Fine-Grained RLHF: several fine-grained reward models each reward a text segment at its end token
/// (relevance per sub-sentence, factuality per sentence), a sequence-level completeness reward on the last
/// token, k1 KL shaping, reward whitening, GAE and advantage whitening.
///
/// Paper: Wu et al., "Fine-Grained Human Feedback Gives Better Rewards for Language Model Training" (NeurIPS
/// 2023, arXiv 2306.01693). Reference: allenai/FineGrainedRLHF @a1469d4 (`tasks/qa_feedback/training/reward.py`,
/// `fgrlhf/reward.py`, `fgrlhf/ppo.py`, `fgrlhf/utils.py`, `fgrlhf/reward_utils.py`).
///
/// Formula, per response (segment ends `E^rel`, `E^fact`; labels +1 = no error, -1 = error):
///
///     r_t  = sum_{k: E^rel_k = t} (+0.3 | -0.3) + sum_{k: E^fact_k = t} (+0.5 | -0.5)
///          + [t = last] (((s - mu_c) / sigma_c) * scale + bias)
///     r_t -= beta (log pi_old - log pi_ref)_t m_t
///     r    = whiten(r, shift_mean = false)               (if whiten_rewards)
///     A, G = GAE(r, V; gamma, lam),  G = A + V,  advantages = whiten(A)
///
/// JSONL: `step_ends` holds the union of every reward model's segment ends (exclusive, response-relative);
/// `step_relevance` / `step_factuality` hold that model's label at each step: +1 (no error), -1 (error), 0 (no
/// segment of this model ends here). `reward` is the raw completeness score. Build them from per-model end
/// lists with `mergeSegments`, and from RM logits with `relevanceLabel` / `factualityLabel`.
///
/// Paper-vs-reference (`reference_compatible: true` reproduces the reference, "referenceWhitenQuirks"):
/// * whitening divides by `sqrt(var + 1e-8)`; the reference divides by `sqrt(std + 1e-8)` with
///   `std = sqrt(E[v^2] - E[v]^2)` and also transforms padding;
/// * GAE skips mask-0 tokens and both outputs are 0 there; the reference runs over `max valid length` columns
///   without a mask, so whitened padding rewards leak into shorter rows (needs the padding in the batch).
public enum FineGrainedRLHF {
    public static let info = MethodInfo(
        name: "fine_grained_rlhf", kind: .estimator,
        summary: "Fine-Grained RLHF: per-segment rewards of several RMs at segment ends + completeness, KL, whitening, GAE",
        paper: Citation("Fine-Grained Human Feedback Gives Better Rewards for Language Model Training", 2023, arxiv: "2306.01693"),
        formula: "r_t = sum_models w±[label] at segment ends + [t=last]((s-mu)/sigma*scale+bias) - beta*(logp_old - logp_ref); r = whiten(r, shift_mean=false); A = GAE(r, V); returns = A + V; advantages = whiten(A)",
        params: [
            .number("relevance_positive_reward", 0.3, "relevance reward of a sub-sentence without error"),
            .number("relevance_negative_reward", -0.3, "relevance reward of a sub-sentence with an error"),
            .number("factuality_positive_reward", 0.5, "factuality reward of a sentence without error"),
            .number("factuality_negative_reward", -0.5, "factuality reward of a sentence with an error"),
            .number("completeness_mean", -0.44677690555995353, "completeness RM score mean"),
            .number("completeness_std", 8.301160619054132, "completeness RM score std"),
            .number("completeness_scale", 0.3, "completeness reward scale (0 with bias 0: no completeness term, reward not read)"),
            .number("completeness_bias", 0.0, "completeness reward bias"),
            .number("kl_coef", 0.3, "beta of the k1 KL penalty"),
            .number("gamma", 1.0, "discount"), .number("lam", 0.95, "GAE lambda"),
            .bool("whiten_rewards", true, "whiten token rewards (shift_mean = false) before GAE"),
            .bool("reference_compatible", false, "reproduce the reference's whitening and unmasked GAE exactly"),
        ],
        requires: ["step_ends", "step_relevance", "step_factuality", "reward", "values", "old_logprobs", "ref_logprobs"])

    public static let estimators = [AdvantageEstimator(info: info, compute: compute)]

    // MARK: - Reward-model outputs -> labels -> segment steps

    /// Relevance RM (3 classes): +1 if class 2 ("no error") beats class 1, else -1 (ties: error, as the reference).
    public static func relevanceLabel(_ logits: [Double]) throws -> Double {
        guard logits.count == 3 else { throw FineGrainError.invalidField(field: "relevance_logits", reason: "need 3 logits, got \(logits.count)") }
        return logits[2] > logits[1] ? 1 : -1
    }
    /// Factuality RM (3 classes): +1 if class 2 beats class 0, else -1 (ties: error).
    public static func factualityLabel(_ logits: [Double]) throws -> Double {
        guard logits.count == 3 else { throw FineGrainError.invalidField(field: "factuality_logits", reason: "need 3 logits, got \(logits.count)") }
        return logits[2] > logits[0] ? 1 : -1
    }

    /// Completeness reward `((s - mean) / std) * scale + bias`.
    public static func completeness(_ s: Double, mean: Double, std: Double, scale: Double, bias: Double) -> Double {
        (s - mean) / std * scale + bias
    }

    /// Merges per-model segment ends (0-based end token indices) of one response of `length` tokens into the
    /// step layout: exclusive `step_ends` and one label column per model (0 where the model has no end).
    /// Paper mode: an end outside `0 ..< length` or a repeated end throws. `clipToLength` (reference): ends are
    /// clipped to `length - 1` (re-tokenised text can be longer) and a later segment on the same token
    /// overwrites an earlier one.
    public static func mergeSegments(length: Int, ends: [[Int]], labels: [[Double]], clipToLength: Bool,
                                     fields: [String]) throws -> (stepEnds: [Int], labels: [[Double]]) {
        var dense = [[Double]](repeating: [Double](repeating: 0, count: Swift.max(length, 0)), count: ends.count)
        var used = [Bool](repeating: false, count: Swift.max(length, 0))
        for m in 0 ..< ends.count {
            guard ends[m].count == labels[m].count else {
                throw FineGrainError.invalidField(field: fields[m], reason: "\(labels[m].count) labels for \(ends[m].count) segment ends")
            }
            for (k, e0) in ends[m].enumerated() {
                let e = clipToLength ? Swift.min(e0, length - 1) : e0
                guard e >= 0, e < length else {
                    throw FineGrainError.invalidField(field: fields[m], reason: "segment end \(e0) outside the response (\(length) tokens)")
                }
                if dense[m][e] != 0 && !clipToLength {
                    throw FineGrainError.invalidField(field: fields[m], reason: "two segments end on token \(e)")
                }
                dense[m][e] = labels[m][k]; used[e] = true
            }
        }
        var stepEnds = [Int](), cols = [[Double]](repeating: [], count: ends.count)
        for t in 0 ..< used.count where used[t] {
            stepEnds.append(t + 1)
            for m in 0 ..< ends.count { cols[m].append(dense[m][t]) }
        }
        return (stepEnds, cols)
    }

    // MARK: - Whitening

    /// Batch-global whitening over mask-1 positions. Paper: `(x - mu) / sqrt(var + 1e-8)` with the population
    /// variance (two-pass), plus `mu` if `!shiftMean`, 0 at mask-0 positions; throws when no token is valid.
    /// `referenceQuirks`: the reference's `whiten` — `(x - mu) * rsqrt(std + 1e-8)` with
    /// `std = sqrt(E[x^2] - E[x]^2)` (floored at 0 against cancellation), every position transformed, and
    /// NaN everywhere when no token is valid.
    public static func whiten(_ x: inout [Double], mask: [UInt8], shiftMean: Bool, referenceQuirks: Bool) throws {
        var s = 0.0, s2 = 0.0, n = 0
        x.withUnsafeBufferPointer { xp in mask.withUnsafeBufferPointer { mp in
            for i in 0 ..< xp.count where mp[i] != 0 { s += xp[i]; s2 += xp[i] * xp[i]; n &+= 1 }
        } }
        let mu = s / Double(n)
        let scale: Double
        if referenceQuirks {
            let std = Swift.max(s2 / Double(n) - mu * mu, 0).squareRoot()
            scale = 1 / (std + 1e-8).squareRoot()
        } else {
            guard n > 0 else { throw FineGrainError.unsupported(method: info.name, reason: "whitening needs at least 1 valid (mask-1) token, got none") }
            var ss = 0.0
            x.withUnsafeBufferPointer { xp in mask.withUnsafeBufferPointer { mp in
                for i in 0 ..< xp.count where mp[i] != 0 { let d = xp[i] - mu; ss += d * d }
            } }
            scale = 1 / (ss / Double(n) + 1e-8).squareRoot()
        }
        let add = shiftMean ? 0 : mu
        x.withUnsafeMutableBufferPointer { xp in mask.withUnsafeBufferPointer { mp in
            for i in 0 ..< xp.count { xp[i] = (referenceQuirks || mp[i] != 0) ? (xp[i] - mu) * scale + add : 0 }
        } }
    }

    // MARK: - Pipeline

    /// Every stage of the pipeline, `[N]` each.
    public struct Stages: Sendable {
        public var relevance: [Double], factuality: [Double], completeness: [Double]
        public var raw: [Double], kl: [Double], penalized: [Double]
        public var advantages: [Double], returns: [Double]
    }

    /// The columns and parameters both implementations read, each checked once: segment layout and labels,
    /// values, behaviour and reference log-probs, the completeness transform and the four label rewards
    /// `[relevance +, relevance -, factuality +, factuality -]`.
    struct Inputs {
        let stepOffsets: [Int], stepEnds: [Int]          // [B+1], [S]
        let relevance: [Double], factuality: [Double]    // [S]
        let values: [Double], old: [Double], ref: [Double] // [N]
        let cScale: Double, cBias: Double, cStd: Double
        let scores: [Double]?                            // [B], nil when the completeness term is off
        let weights: [Double]

        init(_ b: RolloutBatch, _ p: Params) throws {
            let m = info.name
            guard let so = b.stepOffsets, let ends = b.stepEnds else { throw FineGrainError.missingField(field: "step_ends", method: m) }
            guard let rel = b.extraStepColumns["step_relevance"] else { throw FineGrainError.missingField(field: "step_relevance", method: m) }
            guard let fac = b.extraStepColumns["step_factuality"] else { throw FineGrainError.missingField(field: "step_factuality", method: m) }
            (stepOffsets, stepEnds, relevance, factuality) = (so, ends, rel, fac)
            values = try b.require(b.value, "values", method: m)
            old = try RewardModelPPO.behaviourLogprobs(b, method: m)
            ref = try b.require(b.refLogprob, "ref_logprobs", method: m)
            cScale = try p.double("completeness_scale"); cBias = try p.double("completeness_bias")
            cStd = try p.double("completeness_std")
            try p.require("completeness_std", cStd != 0, "must be non-zero")
            scores = (cScale != 0 || cBias != 0) ? try b.require(b.outcome, "reward", method: m) : nil
            weights = [try p.double("relevance_positive_reward"), try p.double("relevance_negative_reward"),
                       try p.double("factuality_positive_reward"), try p.double("factuality_negative_reward")]
        }
    }

    public static func pipeline(_ b: RolloutBatch, _ p: Params) throws -> Stages {
        let refMode = try p.bool("reference_compatible")
        let x = try Inputs(b, p)
        let (so, ends, rel, fac, values, old, ref) = (x.stepOffsets, x.stepEnds, x.relevance, x.factuality, x.values, x.old, x.ref)
        let (cScale, cBias, cStd, scores, w) = (x.cScale, x.cBias, x.cStd, x.scores, x.weights)
        let n = b.tokenCount
        var sr = [Double](repeating: 0, count: n), sf = sr, sc = sr   // [N] per-model token rewards
        for r in 0 ..< b.count {
            let lo = b.offsets[r]
            for s in so[r] ..< so[r + 1] {
                // Each model's reward sits on its segment's end token (the paper's segment-end placement).
                let t = lo + ends[s] - 1
                sr[t] += try stepReward(rel[s], w[0], w[1], "step_relevance", r, s - so[r])
                sf[t] += try stepReward(fac[s], w[2], w[3], "step_factuality", r, s - so[r])
            }
            // Completeness on the last valid token (reference: index L_i - 1, the same for right-padded rows).
            if let scores, let t = RewardModelPPO.lastValid(b.offsets, b.mask, r) {
                sc[t] = completeness(scores[r], mean: try p.double("completeness_mean"), std: cStd, scale: cScale, bias: cBias)
            }
        }
        var raw = sr                                                            // [N]
        for i in 0 ..< n { raw[i] += sf[i] + sc[i] }
        let beta = try p.double("kl_coef")
        let kl = RewardModelPPO.k1(old, ref, mask: b.mask)                      // [N]
        var rw = raw                                                            // [N] penalized
        for i in 0 ..< n { rw[i] -= beta * kl[i] }
        let penalized = rw
        if try p.bool("whiten_rewards") { try whiten(&rw, mask: b.mask, shiftMean: false, referenceQuirks: refMode) }
        let gamma = try p.double("gamma"), lam = try p.double("lam")
        var adv: [Double], ret: [Double]
        if refMode {
            // Reference: GAE over the first max-valid-length columns of every row, unmasked.
            var gen = 0
            for r in 0 ..< b.count { gen = Swift.max(gen, b.validCount(r)) }
            var vz = values, rz = rw                                            // [N] zero past gen_length
            for r in 0 ..< b.count where b.length(r) > gen {
                for i in b.offsets[r] + gen ..< b.offsets[r + 1] { vz[i] = 0; rz[i] = 0 }
            }
            let ones = [UInt8](repeating: 1, count: n)
            adv = rz.withUnsafeBufferPointer { rp in
                GAE.scan(offsets: b.offsets, mask: ones, values: vz, rewards: CreditKernels.Rewards(token: rp.baseAddress, outcome: nil),
                         gamma: gamma, lam: lam).advantages
            }
            ret = adv
            for i in 0 ..< n { ret[i] += values[i] }
        } else {
            (adv, ret) = RewardModelPPO.gae(offsets: b.offsets, mask: b.mask, values: values, rewards: rw,
                                            gamma: gamma, lam: lam, openRLHFMasking: false)
        }
        try whiten(&adv, mask: b.mask, shiftMean: true, referenceQuirks: refMode)
        return Stages(relevance: sr, factuality: sf, completeness: sc, raw: raw, kl: kl, penalized: penalized,
                      advantages: adv, returns: ret)
    }

    /// Reward of one label: +1 -> `pos`, -1 -> `neg`, 0 -> none; anything else throws naming the column.
    @inline(__always)
    static func stepReward(_ l: Double, _ pos: Double, _ neg: Double, _ field: String, _ r: Int, _ k: Int) throws -> Double {
        if l == 1 { return pos }
        if l == -1 { return neg }
        guard l == 0 else { throw FineGrainError.invalidField(field: field, reason: "response \(r) step \(k): label \(l) must be -1, 0 or 1") }
        return 0
    }

    public static func compute(_ b: RolloutBatch, _ p: Params) throws -> AdvantageOutput {
        if try !p.bool("reference_compatible"), let out = try fusedCompute(b, p) { return out }
        let s = try pipeline(b, p)
        return AdvantageOutput(advantages: s.advantages, returns: s.returns)
    }

    /// `pipeline`'s advantages and returns without `reference_compatible`, without materialising its stages:
    /// pass 1 sums the moments of the penalized token rewards (recomputed from the `[S]` step rewards and the
    /// KL, not stored), pass 2 whitens them on the fly inside the fused GAE scan, which accumulates the
    /// advantage moments for the final whitening. Scratch: `[S]` step rewards. Nil (use `pipeline`) when the
    /// step ends are not increasing within `1 ... length` (unvalidated batches).
    static func fusedCompute(_ b: RolloutBatch, _ p: Params) throws -> AdvantageOutput? {
        let x = try Inputs(b, p)
        let (so, ends, rel, fac, values, old, ref) = (x.stepOffsets, x.stepEnds, x.relevance, x.factuality, x.values, x.old, x.ref)
        let (cScale, cBias, cStd, scores, w) = (x.cScale, x.cBias, x.cStd, x.scores, x.weights)
        let cMean = try p.double("completeness_mean")
        let rows = b.count
        guard so.count == rows + 1, so.last ?? 0 <= ends.count, rel.count >= ends.count, fac.count >= ends.count else { return nil }
        // [S] step rewards, in `pipeline`'s order of checks (row by row, relevance before factuality).
        var sr = overwrittenDoubles(ends.count), sf = overwrittenDoubles(ends.count)
        for r in 0 ..< rows {
            var prev = 0
            let len = b.offsets[r + 1] - b.offsets[r]
            for s in so[r] ..< so[r + 1] {
                guard ends[s] > prev, ends[s] <= len else { return nil }
                prev = ends[s]
                sr[s] = try stepReward(rel[s], w[0], w[1], "step_relevance", r, s - so[r])
                sf[s] = try stepReward(fac[s], w[2], w[3], "step_factuality", r, s - so[r])
            }
        }
        let beta = try p.double("kl_coef")
        let gamma = try p.double("gamma"), lam = try p.double("lam")
        let whitenRewards = try p.bool("whiten_rewards")
        let hasScores = scores != nil
        let n = b.tokenCount
        var adv = overwrittenDoubles(n), ret = overwrittenDoubles(n)   // [N], every position written below
        // Pass 1: the penalized rewards `raw - beta * kl` straight into the advantage buffer, with their moments.
        var parts = [ShiftedMoments](repeating: ShiftedMoments(), count: CreditKernels.rowChunks(rows: rows, tokens: n))
        sr.withUnsafeBufferPointer { srp in sf.withUnsafeBufferPointer { sfp in
            so.withUnsafeBufferPointer { sop in ends.withUnsafeBufferPointer { ep in
                old.withUnsafeBufferPointer { op in ref.withUnsafeBufferPointer { rp in
                    (scores ?? []).withUnsafeBufferPointer { scp in b.offsets.withUnsafeBufferPointer { fp in
                        b.mask.withUnsafeBufferPointer { mp in adv.withUnsafeMutableBufferPointer { ab in
                            parts.withUnsafeMutableBufferPointer { pb in
                                let srs = SharedPointer(srp), sfs = SharedPointer(sfp), sos = SharedPointer(sop), es = SharedPointer(ep)
                                let os = SharedPointer(op), rs = SharedPointer(rp), scs = SharedPointer(scp), fs = SharedPointer(fp)
                                let ms = SharedPointer(mp), outs = SharedMutablePointer(ab), ps = SharedMutablePointer(pb)
                                CreditKernels.forEachRowChunkIndexed(rows: rows, tokens: n) { c, rr in
                                    guard let off = fs.base, let o = os.base, let rf = rs.base, let sop = sos.base,
                                          let mk = ms.base, let out = outs.base else { return }
                                    var cnt = 0, k = 0.0, s1 = 0.0, s2 = 0.0
                                    for r in rr {
                                        let lo = off[r], hi = off[r &+ 1]
                                        for i in lo ..< hi { out[i] = 0 - beta * (mk[i] != 0 ? o[i] - rf[i] : 0) }
                                        var ci = -1, comp = 0.0
                                        if hasScores {
                                            ci = RewardModelPPO.lastValid(mk, lo, hi)
                                            comp = completeness(scs.base![r], mean: cMean, std: cStd, scale: cScale, bias: cBias)
                                        }
                                        var compPlaced = ci < 0
                                        for st in sop[r] ..< sop[r &+ 1] {
                                            let t = lo &+ es.base![st] &- 1
                                            var c = 0.0
                                            if t == ci { c = comp; compPlaced = true }
                                            let raw = (0 + srs.base![st]) + ((0 + sfs.base![st]) + c)
                                            out[t] = raw - beta * (mk[t] != 0 ? o[t] - rf[t] : 0)
                                        }
                                        if !compPlaced { out[ci] = (0 + (0 + comp)) - beta * (o[ci] - rf[ci]) }
                                        if whitenRewards {
                                            for i in lo ..< hi where mk[i] != 0 {
                                                let x = out[i]
                                                if cnt == 0 { k = x }
                                                let d = x - k
                                                s1 += d; s2 += d * d; cnt &+= 1
                                            }
                                        }
                                    }
                                    ps.base![c] = ShiftedMoments(n: cnt, shift: k, s1: s1, s2: s2)
                                }
                            }
                        } }
                    } }
                } }
            } }
        } }
        // Reward whitening (shift_mean = false) is applied row by row inside pass 2, just before each row's scan.
        var mu1 = 0.0, scale1 = 1.0
        if whitenRewards {
            let (cnt, mu, variance) = ShiftedMoments.combine(parts)
            guard cnt > 0 else {
                throw FineGrainError.unsupported(method: info.name, reason: "whitening needs at least 1 valid (mask-1) token, got none")
            }
            mu1 = mu; scale1 = 1 / (variance + 1e-8).squareRoot()
        }
        let wr = whitenRewards, m1 = mu1, sc1 = scale1
        let moments = b.offsets.withUnsafeBufferPointer { fp in
            let fs = SharedPointer(fp)
            return RewardModelPPO.fusedScan(offsets: b.offsets, mask: b.mask, values: values, gamma: gamma, lam: lam,
                                            into: &adv, &ret) { rr, gae in
                guard let off = fs.base else { return ShiftedMoments() }
                let mk = gae.m, a = gae.a
                var mom = ShiftedMoments()
                for r in rr {
                    let lo = off[r], hi = off[r &+ 1]
                    if wr { for i in lo ..< hi { a[i] = mk[i] != 0 ? (a[i] - m1) * sc1 + m1 : 0 } }
                    gae.scan(lo, hi, &mom)
                }
                return mom
            }
        }
        // Advantage whitening (shift_mean = true).
        let (cnt, mu, variance) = ShiftedMoments.combine(moments)
        guard cnt > 0 else {
            throw FineGrainError.unsupported(method: info.name, reason: "whitening needs at least 1 valid (mask-1) token, got none")
        }
        RewardModelPPO.affineMasked(&adv, mask: b.mask, mean: mu, scale: 1 / (variance + 1e-8).squareRoot(), add: 0)
        return AdvantageOutput(advantages: adv, returns: ret)
    }

    // MARK: - Sentence / sub-sentence segmentation

    /// Sentence boundaries (character offsets, Unicode scalars): 0, then the end of every sentence that is not
    /// whitespace-only. `sentenceEnds`: the end offset of each sentence from a sentence splitter (spaCy in the
    /// reference; injected here), sentence i spanning `[previous end, end)`.
    public static func sentenceBoundaries(_ text: String, sentenceEnds: [Int]) throws -> [Int] {
        let c = Array(text.unicodeScalars)
        var out = [0], prev = 0
        for e in sentenceEnds {
            guard e >= prev, e <= c.count else { throw FineGrainError.invalidField(field: "sentence_ends", reason: "end \(e) out of order or past the text (\(c.count) characters)") }
            if c[prev ..< e].contains(where: { !$0.properties.isWhitespace }) { out.append(e) }
            prev = e
        }
        return out
    }

    /// Sub-sentence starts (character offsets) followed by the text length. Each sentence is split into
    /// whitespace words; a piece may start at word k when word k-1 ends with `, ; ! ?` and at least 6 words
    /// remain (`k + 5 < words`); a piece shorter than 5 words merges into the previous one (its start moves
    /// to k), except the sentence's first piece, which then does not split.
    public static func subsentenceBoundaries(_ text: String, sentenceEnds: [Int]) throws -> [Int] {
        let c = Array(text.unicodeScalars)
        let bounds = try sentenceBoundaries(text, sentenceEnds: sentenceEnds)
        var starts = [Int]()
        for si in 0 ..< bounds.count - 1 {
            // Whitespace words of the sentence with their start offsets.
            var words = [(start: Int, last: Unicode.Scalar)]()
            var i = bounds[si]
            while i < bounds[si + 1] {
                if c[i].properties.isWhitespace { i += 1; continue }
                let s = i
                while i < bounds[si + 1] && !c[i].properties.isWhitespace { i += 1 }
                words.append((s, c[i - 1]))
            }
            guard !words.isEmpty else { continue }
            var isStart = [Bool](repeating: false, count: words.count)
            isStart[0] = true
            var prevStart = 0
            for k in 1 ..< words.count where ",;!?".unicodeScalars.contains(words[k - 1].last) && k + 5 < words.count {
                if k - prevStart < 5 {
                    if prevStart > 0 { isStart[prevStart] = false; isStart[k] = true; prevStart = k }
                } else { isStart[k] = true; prevStart = k }
            }
            for k in 0 ..< words.count where isStart[k] { starts.append(words[k].start) }
        }
        return starts + [c.count]
    }
}
