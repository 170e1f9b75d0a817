import RealModule

/// Segment-level reward model PPO (DenseRewardRLHF-PPO): entropy-threshold segmentation, a location-aware
/// normaliser of segment rewards, segment reward spread over the segment's tokens, k1 KL shaping, GAE.
///
/// Paper: Yin et al., "Segmenting Text and Learning Their Rewards for Improved RLHF in Language Model" (2025,
/// arXiv 2501.02790). Reference: yinyueqin/DenseRewardRLHF-PPO @6cb62e6 (`experience_maker.py`).
///
/// Formula, per response with `e` = its last valid token and `H_j` the reference model's entropy after token j:
///
///     ends   E = {j < f : H_j > tau} ∪ {f},  f = e - 1 (the EOS token belongs to no segment; bandit tau = 1000: f = e)
///     u_k    = rm_values[E_k],  p_k = k / K,  mu(p) = a ln(p + 1e-10) + c,  sigma(p) = b ln(p + 1e-10) + d
///     ũ_k    = (u_k - mu(p_k)) / max(sigma(p_k), sigma_min)
///     r_t    = ũ_k / len_k for t in segment k (segment_normalization, "even split"); 0 after f
///     r_t   <- clamp(r_t, -10, 10) - beta (log pi_old - log pi_ref)_t m_t
///     A, G   = GAE(r, V; gamma, lam);  advantages = normalize_P5(A)
///
/// (`E` equals the reference's "peak" segmentation with its tail fix-up; minimum segment length 1.)
/// Paper-vs-reference decisions, `reference_compatible: true` restores the reference exactly:
/// * a one-token response (e = 0) gets the end e (the reference writes an end at -1: no reward at all);
/// * sigma(p) is floored at `sigma_min` (the reference divides by it unguarded; it reaches 0 for many segments);
/// * an unknown (model_type, entropy_threshold) combination throws (the reference silently uses (0, 1));
/// * `segment_last_avg` places the sequence score on the last valid token (the reference adds the `[R]`
///   scores to the `[R][T]` KL by broadcasting: every token for R == 1, an error otherwise);
/// * an all-masked response is skipped (the reference raises).
public enum SegmentRM {
    /// Location-aware normaliser coefficients `[a, b, c, d]` (mean = a ln p + c, std = b ln p + d) per model and
    /// entropy threshold, for dataset `preference700k_60000`, method `peak`, aggregation `avg`. Source:
    /// yinyueqin/DenseRewardRLHF-PPO @6cb62e6, `denserlhf/trainer/ppo_utils/param.json`.
    public static let locationCoefficients: [String: [Double: [Double]]] = [
        "rlhflow_llama_3_sft_8b_v2": [2.0: [0.8967, 0.5680, 0.8572, 4.1667], 0: [1.7340, 0.9906, 1.3212, 5.4513]],
        "phi3-instruct": [2.0: [0.7209, 0.2330, 0.6055, 2.6555], 1.75: [0.7668, 0.2569, 0.4705, 2.8339],
                          0: [0.9628, 0.3796, 1.2917, 3.5006]],
        "meta_llama_3_1_instruct_8b": [2.0: [0.8345, 0.4780, 0.8798, 3.7358], 0: [1.6268, 0.6254, 0.6419, 4.9217]],
    ]
    /// The reference's threshold that means "one segment per response" (bandit baseline).
    public static let banditThreshold = 1000.0

    public static let rewardTypes = ["segment_normalization", "same_segment_last", "every_segment_last", "segment_last_avg"]

    public static let info = MethodInfo(
        name: "segment_rm", kind: .estimator,
        summary: "Segment-level reward model PPO: entropy segmentation, location-aware normaliser, even split, KL, GAE",
        paper: Citation("Segmenting Text and Learning Their Rewards for Improved RLHF in Language Model", 2025, arxiv: "2501.02790"),
        formula: "E = {j < e-1 : H_j > tau} ∪ {e-1}; ũ_k = (u[E_k] - (a ln(k/K) + c)) / max(b ln(k/K) + d, sigma_min); r_t = ũ_k / len_k; r <- clamp(r, ±10) - beta*(logp_old - logp_ref); A = GAE(r, V); advantages = (A - mean) / std",
        params: [
            .number("entropy_threshold", 1.75, "segment ends where the reference entropy exceeds this (0: token level; 1000: one segment)"),
            .string("model_type", "phi3-instruct", "normaliser coefficients from param.json, or custom (norm_a..d) / none (mean 0, std 1)",
                    choices: ["phi3-instruct", "rlhflow_llama_3_sft_8b_v2", "meta_llama_3_1_instruct_8b", "custom", "none"]),
            .number("norm_a", nil, "custom normaliser: mean = a ln p + c"), .number("norm_b", nil, "custom normaliser: std = b ln p + d"),
            .number("norm_c", nil, "custom normaliser"), .number("norm_d", nil, "custom normaliser"),
            .number("sigma_min", 0.1, "floor of the location std (paper default; ignored with reference_compatible)"),
            .string("ppo_reward_type", "segment_normalization", "how a segment's reward becomes token rewards", choices: rewardTypes),
            .bool("normalize_reward", true, "apply the location normaliser (segment_last_avg: (u - rm_mean) / rm_std)"),
            .number("rm_mean", 0.0, "bandit (segment_last_avg) score mean"), .number("rm_std", 1.0, "bandit score std"),
            .bool("length_norm", false, "token-level variant (threshold 0): divide token rewards by the response length"),
            .bool("end_penalty", false, "responses without EOS (rewards.eos == 0) get every token reward = penalty"),
            .integer("length_threshold", nil, "responses longer than this get every token reward = penalty"),
            .number("penalty", 0.0, "penalty reward of end_penalty / length_threshold (reference: 0, or -0.05 with m0d05)"),
            .number("reward_clip", 10.0, "token rewards are clamped to ±reward_clip before the KL term"),
            .number("kl_coef", 0.01, "beta of the k1 KL penalty (negative values count as 0)"),
            .number("gamma", 1.0, "discount"), .number("lam", 0.95, "GAE lambda"),
            .bool("normalize_advantages", true, "OpenRLHF replay-buffer normalisation of the advantages (spec P5)"),
            .bool("reference_compatible", false, "reproduce DenseRewardRLHF-PPO exactly (see the doc comment)"),
        ],
        requires: ["entropies", "rm_values", "values", "old_logprobs", "ref_logprobs", "rewards.eos (with end_penalty)"])

    public static let estimators = [AdvantageEstimator(info: info, compute: compute)]

    /// Resolved settings of the segment-reward stage.
    public struct Config: Sendable {
        public var threshold: Double
        public var coefficients: [Double]?   // [a, b, c, d]; nil = (mean 0, std 1)
        public var sigmaMin: Double
        public var rewardType: String
        public var normalizeReward: Bool
        public var rmMean: Double, rmStd: Double
        public var lengthNorm: Bool
        public var endPenalty: Bool
        public var lengthThreshold: Int?
        public var penalty: Double
        public var referenceCompatible: Bool

        public init(_ p: Params) throws {
            threshold = try p.double("entropy_threshold")
            referenceCompatible = try p.bool("reference_compatible")
            let model = try p.string("model_type")
            switch model {
            case "none": coefficients = nil
            case "custom":
                let keys = ["norm_a", "norm_b", "norm_c", "norm_d"]
                let c = keys.compactMap { p.optionalDouble($0) }
                try p.require("norm_a", c.count == 4, "model_type custom needs norm_a, norm_b, norm_c and norm_d")
                coefficients = c
            default:
                coefficients = SegmentRM.locationCoefficients[model]?[threshold]
                if coefficients == nil && !referenceCompatible {
                    let known = (SegmentRM.locationCoefficients[model] ?? [:]).keys.sorted().map { "\($0)" }.joined(separator: ", ")
                    throw FineGrainError.invalidParameter(name: "entropy_threshold", method: p.method,
                        reason: "param.json has no coefficients for model_type \(model) at threshold \(threshold) (known: \(known)); use model_type custom or none")
                }
            }
            sigmaMin = try p.double("sigma_min")
            rewardType = try p.string("ppo_reward_type")
            normalizeReward = try p.bool("normalize_reward")
            rmMean = try p.double("rm_mean"); rmStd = try p.double("rm_std")
            try p.require("rm_std", rmStd != 0, "must be non-zero")
            lengthNorm = try p.bool("length_norm")
            endPenalty = try p.bool("end_penalty")
            lengthThreshold = p.optionalInt("length_threshold")
            penalty = try p.double("penalty")
        }
    }

    // MARK: - Segmentation

    /// Segment ends (row-relative) of one response: `{j < f : H_j > tau} ∪ {f}` with `f = e - 1`, or `f = e`
    /// for the bandit threshold, `e` = last mask-1 index. One-token response: `f = 0` (paper) or the reference's
    /// `-1` (its fallback tests `sequenceLength > 1`, the prompt + response width). Nil when no token is valid.
    public static func finalEnd(e: Int, firstEntropyAbove: Bool, threshold: Double, referenceCompatible: Bool, sequenceLength: Int) -> Int {
        if threshold == banditThreshold { return e }
        if e > 0 { return e - 1 }
        guard referenceCompatible else { return 0 }
        return (!firstEntropyAbove && sequenceLength <= 1) ? 0 : -1
    }

    /// The segment ends of each response (for inspection and tests; the estimator streams them instead).
    public static func segmentEnds(entropies h: [Double], mask: [UInt8], offsets: [Int], threshold: Double,
                                   referenceCompatible: Bool, sequenceLength: Int = 2) throws -> [[Int]] {
        try (0 ..< offsets.count - 1).map { r in
            let lo = offsets[r]
            guard let last = RewardModelPPO.lastValid(offsets, mask, r) else {
                throw FineGrainError.invalidField(field: "mask", reason: "response \(r) has no valid token to segment")
            }
            let e = last - lo
            let f = finalEnd(e: e, firstEntropyAbove: h[lo] > threshold, threshold: threshold,
                             referenceCompatible: referenceCompatible, sequenceLength: sequenceLength)
            var ends = [Int]()
            for j in 0 ..< Swift.max(f, 0) where h[lo + j] > threshold { ends.append(j) }
            ends.append(f)
            return ends
        }
    }

    // MARK: - Segment rewards -> token rewards

    /// Token rewards `[N]` from segment rewards (before clamp and KL), average segment length per response
    /// `[R]`, and for `segment_last_avg` the per-response score `[R]` (token rewards then 0).
    /// `eos`: per-response 0/1 EOS flags, read only with `endPenalty`.
    public static func tokenRewards(offsets: [Int], mask: [UInt8], entropies: [Double], rmValues: [Double],
                                    eos: [Double]?, config c: Config) throws -> (rewards: [Double], avgSegmentLength: [Double], sequence: [Double]?) {
        let n = mask.count, rows = offsets.count - 1
        var out = [Double](repeating: 0, count: n)        // [N]
        var avgLen = [Double](repeating: 0, count: rows)  // [R]
        let bandit = c.rewardType == "segment_last_avg"
        var seq: [Double]? = bandit ? [Double](repeating: 0, count: rows) : nil   // [R]
        try entropies.withUnsafeBufferPointer { h in try rmValues.withUnsafeBufferPointer { u in
            try out.withUnsafeMutableBufferPointer { o in
                for r in 0 ..< rows {
                    let lo = offsets[r]
                    guard let last = RewardModelPPO.lastValid(offsets, mask, r) else {
                        if c.referenceCompatible {
                            throw FineGrainError.invalidField(field: "mask", reason: "response \(r) has no valid token (the reference raises)")
                        }
                        continue
                    }
                    let e = last &- lo
                    let f = finalEnd(e: e, firstEntropyAbove: h[lo] > c.threshold, threshold: c.threshold,
                                     referenceCompatible: c.referenceCompatible, sequenceLength: 2)
                    // Pass 1: K = number of segments.
                    var k = 1
                    var j = 0
                    while j < f { if h[lo &+ j] > c.threshold { k &+= 1 }; j &+= 1 }
                    let kk = Double(k)
                    // Pass 2: stream the ends, normalise each segment reward by its position k/K, spread it.
                    var start = 0, idx = 0, lenSum = 0, seqSum = 0.0
                    j = 0
                    while idx < k {
                        let end: Int
                        if idx == k &- 1 { end = f } else {
                            while !(h[lo &+ j] > c.threshold) { j &+= 1 }
                            end = j; j &+= 1
                        }
                        idx &+= 1
                        let len = end &- start &+ 1
                        lenSum &+= len
                        var v = end >= 0 ? u[lo &+ end] : 0
                        if c.normalizeReward {
                            if bandit { v = (v - c.rmMean) / c.rmStd }
                            else if let co = c.coefficients {
                                // The paper's location-aware normaliser: mean and std are log-linear in k/K.
                                let lp = Double.log(Double(idx) / kk + 1e-10)
                                var sd = co[1] * lp + co[3]
                                if !c.referenceCompatible { sd = Swift.max(sd, c.sigmaMin) }
                                v = (v - (co[0] * lp + co[2])) / sd
                            }
                        }
                        seqSum += v
                        if !bandit && len > 0 {
                            switch c.rewardType {
                            case "every_segment_last": o[lo &+ end] = v
                            case "same_segment_last": for t in start ... end { o[lo &+ t] = v }
                            default:
                                var w = v / Double(len)   // the paper's even split over the segment's tokens
                                if c.lengthNorm && (!c.referenceCompatible || c.threshold == 0) { w /= Double(e &+ 1) }
                                for t in start ... end { o[lo &+ t] = w }
                            }
                        }
                        start = end &+ 1
                    }
                    avgLen[r] = Double(lenSum) / kk
                    if bandit { seq![r] = seqSum / kk }
                    // Penalties replace every reward of the response.
                    var penalise = false
                    if let lt = c.lengthThreshold, e &+ 1 > lt { penalise = true }
                    if c.endPenalty {
                        guard let eos else { throw FineGrainError.missingField(field: "rewards.eos", method: info.name) }
                        if eos[r] == 0 { penalise = true }
                    }
                    if penalise {
                        if bandit { seq![r] = c.penalty } else { for t in lo ..< offsets[r &+ 1] { o[t] = c.penalty } }
                    }
                }
            }
        } }
        return (out, avgLen, seq)
    }

    // MARK: - Estimator

    public static func compute(_ batch: RolloutBatch, _ p: Params) throws -> AdvantageOutput {
        let m = info.name
        let c = try Config(p)
        let h = try batch.require(batch.entropy, "entropies", method: m)
        let u = try batch.extra("rm_values", method: m)
        let values = try batch.require(batch.value, "values", method: m)
        let old = try RewardModelPPO.behaviourLogprobs(batch, method: m)
        let ref = try batch.require(batch.refLogprob, "ref_logprobs", method: m)
        var eos: [Double]? = nil
        if c.endPenalty {
            guard let e = batch.namedRewards["eos"] else { throw FineGrainError.missingField(field: "rewards.eos", method: m) }
            eos = e
        }
        if !c.referenceCompatible {
            return try fusedCompute(batch, p, c, entropies: h, rmValues: u, values: values, old: old, ref: ref, eos: eos)
        }
        let seg = try tokenRewards(offsets: batch.offsets, mask: batch.mask, entropies: h, rmValues: u, eos: eos, config: c)
        let shaped = try shape(offsets: batch.offsets, mask: batch.mask, tokenRewards: seg.rewards, sequenceRewards: seg.sequence,
                               logprobs: old, refLogprobs: ref, klCoef: try p.double("kl_coef"),
                               clip: try p.double("reward_clip"), referenceBroadcast: c.referenceCompatible,
                               float32KL: c.referenceCompatible)
        var (adv, ret) = RewardModelPPO.gae(offsets: batch.offsets, mask: batch.mask, values: values, rewards: shaped.reward,
                                            gamma: try p.double("gamma"), lam: try p.double("lam"),
                                            openRLHFMasking: c.referenceCompatible)
        if try p.bool("normalize_advantages") { try RewardModelPPO.normalize(&adv, mask: batch.mask, method: m) }
        var meanLen = 0.0
        for x in seg.avgSegmentLength { meanLen += x }
        return AdvantageOutput(advantages: adv, returns: ret,
                               diagnostics: ["avg_segment_length": meanLen / Double(Swift.max(batch.count, 1))])
    }

    /// The reference's `compute_reward`: `reward = clamp(r, -clip, clip) - max(beta, 0) * kl`, kl = k1 in float32.
    /// Sequence rewards (`segment_last_avg`, `[R]`) go on the last valid token; with `referenceCompatible` they
    /// are broadcast as the reference does with `referenceBroadcast` (every token when R == 1; R > 1 throws, the
    /// reference's error). `float32KL`: the reference's float32 KL.
    public static func shape(offsets: [Int], mask: [UInt8], tokenRewards: [Double], sequenceRewards: [Double]?,
                             logprobs: [Double], refLogprobs: [Double], klCoef: Double, clip: Double,
                             referenceBroadcast: Bool, float32KL: Bool) throws -> (reward: [Double], kl: [Double]) {
        let beta = Swift.max(klCoef, 0)
        let kl = RewardModelPPO.k1(logprobs, refLogprobs, mask: mask, float32: float32KL)   // [N]
        var reward = tokenRewards                                                     // [N]
        let rows = offsets.count - 1
        if let s = sequenceRewards {
            for i in 0 ..< reward.count { reward[i] = 0 }
            if referenceBroadcast {
                guard rows == 1 else {
                    throw FineGrainError.unsupported(method: info.name,
                        reason: "reference segment_last_avg broadcasts [R] scores against [R][T] rewards; only R == 1 is defined (got R = \(rows))")
                }
                for i in 0 ..< reward.count { reward[i] = s[0] }
            } else {
                for r in 0 ..< rows { if let i = RewardModelPPO.lastValid(offsets, mask, r) { reward[i] = s[r] } }
            }
        }
        for i in 0 ..< reward.count { reward[i] = Swift.min(Swift.max(reward[i], -clip), clip) - beta * kl[i] }
        return (reward, kl)
    }
}

extension SegmentRM {
    /// The reference's GAE (OpenRLHF `get_advantages_and_returns`: values and rewards masked, no hole carry),
    /// raw advantages and returns `[N]`.
    public static func referenceGAE(_ b: RolloutBatch, values: [Double], rewards: [Double], gamma: Double, lam: Double)
        -> (advantages: [Double], returns: [Double]) {
        RewardModelPPO.gae(offsets: b.offsets, mask: b.mask, values: values, rewards: rewards, gamma: gamma, lam: lam,
                           openRLHFMasking: true)
    }

    /// OpenRLHF's replay-buffer advantage normalisation (spec P5), batch-global; 0 at mask-0 positions.
    public static func normalizeAdvantages(_ x: inout [Double], mask: [UInt8]) throws {
        try RewardModelPPO.normalize(&x, mask: mask, method: info.name)
    }
}
