/// SPO-chain: probability-guided cut points and chain (Monte-Carlo value difference) segment advantages,
/// with the naive fixed partition as `partition = fixed`.
///
/// Paper: Guo et al., "Segment Policy Optimization: Effective Segment-Level Credit Assignment in RL for Large
/// Language Models" (2025, arXiv 2505.23564), SPO-chain; reference AIFrameResearch/SPO @b9fc6a2
/// (`math_episode_generator_with_mc_advantages.py`, `…_naive.py`).
///
/// Inputs (JSONL): `old_logprobs` (or `logprobs`) — old-policy log-probs `p_t = exp(lp_t)`; `reward` — the
/// outcome R; `mc_values` `[N]` — per token t, the Monte-Carlo value `V(prompt ⊕ y_0..y_t)` of the state
/// after token t, read only at the cut points (other entries are ignored, e.g. 0); `reward_baseline`
/// (optional) — the Monte-Carlo value of the prompt itself.
///
/// Formula: cut points `c = t − 1` for every t with `p_t < threshold`, then every K-th (`cutpoint_interval`)
/// — cut c is the state right before the low-probability token `y_{c+1}`, c = −1 the prompt. Boundary values
/// `V(c)` at the cut points and `R` at `L − 1`; segment `(b_{k−1}, b_k]` gets `a_k = V(b_k) − V(b_{k−1})`,
/// the terminal segment `R − V(last cut)`. Probability mask (the paper's trick): only tokens with
/// `p_t < threshold` keep their segment's advantage, so each segment's credit lands on its decision tokens.
/// `partition = fixed` (the paper's naive ablation) cuts into `num_segments` near-equal segments instead
/// (lengths from `divmod(L, k)`, the first `L mod k` one longer); the paper's ablation ran it without the
/// probability mask, so pass `use_prob_mask = false` to reproduce it.
///
/// Paper vs reference (`reference_compatible`): by default the prompt is always the first boundary, so the
/// leading segment gets `V(b_1) − V(prompt)` with `V(prompt)` = `reward_baseline` if given, else the group's
/// mean score (the group's own responses are Monte-Carlo samples from the prompt); tokens with `p_t ≥
/// threshold` are masked (the trainer's `p_old < 0.9` action mask); a fixed partition of `L < k` tokens has
/// `L` one-token segments. With `reference_compatible = true` the reference is reproduced exactly: without a
/// cut at −1 the leading segment (and, in the fixed partition, always the first segment) gets 0, the
/// generator masks only `p_t > threshold`, a fixed partition with `L < k` repeats cut points (the last value
/// written to an index wins, a cut at `L − 1` replaces R), and an empty response throws.
public enum SPOChain {
    public static let info = MethodInfo(
        name: "spo_chain", kind: .estimator,
        summary: "SPO-chain: probability cut points, chain MC value differences per segment, probability mask",
        paper: Citation("Segment Policy Optimization: Effective Segment-Level Credit Assignment in RL for Large Language Models", 2025, arxiv: "2505.23564"),
        formula: "cuts c = {t-1 : p_t < thr}[::K]; segment (b_{k-1}, b_k] gets V(b_k) - V(b_{k-1}) (terminal: R - V(last)); A[t] *= m * [p_t < thr]",
        params: [
            .string("partition", "probability", "cut points from low-probability tokens, or a fixed split into num_segments", choices: ["probability", "fixed"]),
            .integer("cutpoint_interval", 5, "keep every K-th low-probability cut point (K)"),
            .integer("num_segments", 4, "segments of the fixed partition"),
            .number("prob_threshold", 0.9, "low-probability threshold (strict p < thr)"),
            .bool("use_prob_mask", true, "keep a segment's advantage only on its low-probability tokens"),
            .bool("whiten", false, "apply the SPO trainer's batch-global masked whitening (prob-masked statistics)"),
            .bool("reference_compatible", false, "reproduce the reference generator exactly (leading segment 0, strict p > thr mask, L < k repeats)"),
        ],
        requires: ["reward", "mc_values", "old_logprobs (or logprobs)", "reward_baseline (optional: V(prompt))"])

    public static let estimator = AdvantageEstimator(info: info, compute: compute)

    /// The reference's cut points of one response: `{t − 1 : exp(lp_t) < threshold}`, every `interval`-th.
    public static func cutpoints<C: Collection>(logprobs: C, threshold: Double = 0.9, interval: Int) -> [Int] where C.Element == Double {
        let pt = ProbThreshold(threshold)
        var out = [Int](), low = 0
        for (t, lp) in logprobs.enumerated() where pt.below(lp) {
            if low % Swift.max(1, interval) == 0 { out.append(t - 1) }
            low += 1
        }
        return out
    }

    /// The reference naive partition's cut points (`get_cutpoints(·, k)`): ends of the first `k − 1` of `k`
    /// segments with lengths from `divmod(L, k)`, minus one; they repeat when `L < k`.
    public static func fixedCutpoints(length: Int, segments k: Int) -> [Int] {
        let q = length / k, rem = length % k
        var out = [Int](), end = 0
        for j in 0 ..< Swift.max(0, k - 1) { end += q + (j < rem ? 1 : 0); out.append(end - 1) }
        return out
    }

    /// The reference's `token_values`: R at `L − 1`, then each cut value at its index (last write wins);
    /// all R when there is no cut point.
    public static func referenceTokenValues(length: Int, cutpoints: [Int], values: [Double], score: Double) -> [Double?] {
        if cutpoints.isEmpty { return [Double?](repeating: score, count: length) }
        var tv = [Double?](repeating: nil, count: length)
        if length > 0 { tv[length - 1] = score }
        for (c, v) in zip(cutpoints, values) where c >= 0 && c < length { tv[c] = v }
        return tv
    }

    public static func compute(_ batch: RolloutBatch, _ params: Params) throws -> AdvantageOutput {
        let method = params.method
        let fixed = try params.string("partition") == "fixed"
        let k = try params.int("cutpoint_interval"), segs = try params.int("num_segments")
        try params.require("cutpoint_interval", k >= 1, "must be >= 1")
        try params.require("num_segments", segs >= 1, "must be >= 1")
        let pt = ProbThreshold(try params.double("prob_threshold"))
        try params.require("prob_threshold", pt.threshold > 0 && pt.threshold <= 1, "must be in (0, 1]")
        let useProb = try params.bool("use_prob_mask"), compat = try params.bool("reference_compatible")
        let lp: [Double] = (useProb || !fixed) ? try ProbThreshold.oldLogprobs(batch, method: method) : []
        let mc = try batch.extra("mc_values", method: method)
        let scores = try batch.scores(method: method)

        // V(prompt) per response [R]: paper mode always; reference mode only where the first token is low.
        var prompt = batch.rewardBaseline ?? []
        if !compat && prompt.isEmpty {
            var sum = [Double](repeating: 0, count: batch.groupCount), cnt = sum  // [G]
            for r in 0 ..< batch.count { sum[batch.group[r]] += scores[r]; cnt[batch.group[r]] += 1 }
            prompt = batch.group.map { sum[$0] / cnt[$0] }
        }
        let promptV = prompt
        for r in 0 ..< batch.count {
            let lo = batch.offsets[r], hi = batch.offsets[r + 1]
            if compat && hi == lo {
                throw FineGrainError.unsupported(method: method, reason: "response \(r) is empty (the reference raises IndexError)")
            }
            if compat && !fixed && hi > lo && pt.below(lp[lo]) && prompt.isEmpty {
                throw FineGrainError.missingField(field: "reward_baseline", method: method + " (response \(r): first token is a cut target, V(prompt) needed)")
            }
        }

        var out = [Double](repeating: 0, count: batch.tokenCount)  // [N]
        out.withUnsafeMutableBufferPointer { op in
            let O = SharedMutablePointer(op)
            lp.withUnsafeBufferPointer { lpp in mc.withUnsafeBufferPointer { mcp in batch.mask.withUnsafeBufferPointer { mp in
                let L = SharedPointer(lpp), V = SharedPointer(mcp), M = SharedPointer(mp)
                CreditKernels.forEachRowChunk(rows: batch.count, tokens: batch.tokenCount) { rows in
                    guard let o = O.base, let v = V.base, let m = M.base else { return }
                    let l = L.base
                    for r in rows {
                        let lo = batch.offsets[r], hi = batch.offsets[r + 1], n = hi &- lo
                        guard n > 0 else { continue }
                        var base: Double? = compat ? nil : promptV[r]
                        var segStart = lo
                        // Closes the segment [segStart, b] at boundary value `value`, writing its advantage.
                        @inline(__always) func close(_ b: Int, _ value: Double) {
                            let a = base.map { value - $0 } ?? 0
                            for t in segStart ... b {
                                var keep = m[t] != 0
                                if useProb, let l { keep = keep && (compat ? !pt.above(l[t]) : pt.below(l[t])) }
                                o[t] = keep ? a : 0
                            }
                            base = value; segStart = b &+ 1
                        }
                        var terminal = scores[r]
                        if !fixed, let l {
                            var low = 0
                            for t in 0 ..< n where pt.below(l[lo &+ t]) {
                                if low % k == 0 {
                                    if t == 0 { base = promptV.isEmpty ? base : promptV[r] } else { close(lo &+ t &- 1, v[lo &+ t &- 1]) }
                                }
                                low &+= 1
                            }
                        } else {
                            let kk = compat ? segs : Swift.min(segs, n)
                            let q = n / kk, rem = n % kk
                            var end = 0, last = -1
                            for j in 0 ..< (kk &- 1) {
                                end &+= q &+ (j < rem ? 1 : 0)
                                let c = end &- 1
                                if c <= last || c < 0 { continue }        // reference repeats: one boundary per index
                                if c == n &- 1 { terminal = v[lo &+ c]; break } // a cut at L-1 replaces R
                                close(lo &+ c, v[lo &+ c]); last = c
                            }
                        }
                        close(hi &- 1, terminal)
                    }
                }
            } } }
        }
        if try params.bool("whiten") {
            out = try SPOWhiten.maskedWhiten(out, mask: batch.mask, oldLogprobs: useProb ? lp : nil,
                                             threshold: pt.threshold, method: method)
            for i in 0 ..< out.count where batch.mask[i] == 0 || (useProb && !pt.below(lp[i])) { out[i] = 0 }
        }
        return AdvantageOutput(advantages: out, returns: nil)
    }
}
