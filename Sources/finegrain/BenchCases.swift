import FineGrain
import Foundation

/// The shape of the benchmark batch (`finegrain bench` options).
struct BenchShape {
    let responses: Int, maxLength: Int, group: Int, seed: UInt64
}

/// The benchmark cases: each names the synthetic batch it runs on, prepares its inputs once (untimed) and
/// returns the timed closure. Estimators run their `compute` directly (validation is its own case,
/// `validate`), exactly as verl's functions receive already-built tensors.
enum BenchCases {
    typealias Builder = @Sendable (BenchShape) -> RolloutBatch

    static let verl: Builder = { SyntheticBatch.verlBenchmark(responses: $0.responses, maxLength: $0.maxLength, group: $0.group, seed: $0.seed) }
    static let tree: Builder = { SyntheticBatch.tempoBenchmark(responses: $0.responses, maxLength: $0.maxLength, group: $0.group, seed: $0.seed) }
    static let segment: Builder = { SyntheticBatch.segmentRMBenchmark(responses: $0.responses, maxLength: $0.maxLength, group: $0.group, seed: $0.seed) }
    static let rto: Builder = { SyntheticBatch.rtoBenchmark(responses: $0.responses, maxLength: $0.maxLength, group: $0.group, seed: $0.seed) }
    static let pure: Builder = { SyntheticBatch.pureBenchmark(responses: $0.responses, maxLength: $0.maxLength, group: $0.group, seed: $0.seed) }
    static let prime: Builder = { SyntheticBatch.primeBenchmark(responses: $0.responses, maxLength: $0.maxLength, group: $0.group, seed: $0.seed) }
    static let spoTree: Builder = { SyntheticBatch.spoTreeBenchmark(responses: $0.responses, maxLength: $0.maxLength, group: $0.group, seed: $0.seed) }
    static let fgrlhf: Builder = { SyntheticBatch.fineGrainedRLHFBenchmark(responses: $0.responses, maxLength: $0.maxLength, group: $0.group, seed: $0.seed) }

    /// (case name, estimator, params, batch). Cases run in this order.
    static let estimatorCases: [(String, String, [String: ParamValue], Builder)] = [
        ("gae", "gae", ["gamma": .number(1), "lam": .number(0.95)], verl),
        ("reinforce_plus_plus", "reinforce_plus_plus", ["gamma": .number(1)], verl),
        ("grpo", "grpo", [:], verl),
        ("grpo_vectorized", "grpo_vectorized", [:], verl),
        ("rloo", "rloo", [:], verl),
        ("rloo_vectorized", "rloo_vectorized", [:], verl),
        ("reinforce_plus_plus_baseline", "reinforce_plus_plus_baseline", [:], verl),
        ("opo", "opo", [:], verl),
        ("tempo", "tempo", [:], tree),
        ("hapo_token_group_average", "hapo_token_group_average", [:], verl),
        ("spo_tree", "spo_tree", [:], spoTree),
        ("pure", "pure", [:], pure),
        ("prime", "prime", [:], prime),
        ("segment_rm", "segment_rm", [:], segment),
        ("fine_grained_rlhf", "fine_grained_rlhf", [:], fgrlhf),
        ("rto", "rto", [:], rto),
    ]

    static let lossCases = ["ppo_clip_fwd_bwd", "kl_k3", "kl_k3_value_grad", "validate"]

    static var names: [String] { estimatorCases.map(\.0) + lossCases }

    static func builder(for name: String) -> Builder {
        estimatorCases.first { $0.0 == name }?.3 ?? verl
    }

    static func prepare(_ name: String, batch: RolloutBatch) throws -> () throws -> Void {
        if let (_, est, params, _) = estimatorCases.first(where: { $0.0 == name }) {
            let e = try Registry.estimator(est)
            let p = try Params.resolve(params, specs: e.info.params, method: est)
            try batch.validate()
            return { _ = try e.compute(batch, p) }
        }
        switch name {
        case "ppo_clip_fwd_bwd":
            let loss = try Registry.loss("vanilla")
            let p = try Params.resolve(["loss_agg_mode": .string("token-mean")], specs: loss.info.params, method: "vanilla")
            let input = LossInput(batch: batch, advantages: batch.extraTokenColumns["advantages"])
            return { _ = try loss.compute(input, p) }
        case "kl_k3":
            // What verl's `kl_penalty(logprob, ref, "low_var_kl")` computes: the values.
            let lp = try batch.require(batch.logprob, "logprobs", method: name)
            let ref = try batch.require(batch.refLogprob, "ref_logprobs", method: name)
            return { _ = try KLPenalty.k3Values(lp, ref) }
        case "kl_k3_value_grad":
            // The registry entry: values and d/d logprob in one pass.
            let kl = try Registry.kl("low_var_kl")
            let lp = try batch.require(batch.logprob, "logprobs", method: name)
            let ref = try batch.require(batch.refLogprob, "ref_logprobs", method: name)
            return { _ = kl.compute(lp, ref) }
        case "validate":
            return { try batch.validate() }
        default:
            throw FineGrainError.unknownMethod(kind: "bench case", name: name, known: names)
        }
    }

    /// Warm-up once, then the median of `repeats` timed runs.
    static func measure(_ name: String, batch: RolloutBatch, repeats: Int) throws -> BenchResult {
        let body = try prepare(name, batch: batch)
        try body()
        var times = [Double]()
        for _ in 0 ..< max(1, repeats) {
            let t0 = monotonicSeconds()
            try body()
            times.append(monotonicSeconds() - t0)
        }
        times.sort()
        return BenchResult(name: name, tokens: batch.tokenCount, medianSeconds: times[times.count / 2])
    }
}
