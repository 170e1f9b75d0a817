import FineGrain
import Foundation

/// The benchmark cases: each prepares its inputs once (untimed) and returns the timed closure.
/// Estimators run their `compute` directly (validation is its own case, `validate`), exactly as verl's
/// functions receive already-built tensors.
enum BenchCases {
    static let estimatorCases: [(String, String, [String: ParamValue])] = [
        ("gae", "gae", ["gamma": .number(1), "lam": .number(0.95)]),
        ("reinforce_plus_plus", "reinforce_plus_plus", ["gamma": .number(1)]),
        ("grpo", "grpo", [:]),
        ("grpo_vectorized", "grpo_vectorized", [:]),
        ("rloo", "rloo", [:]),
        ("rloo_vectorized", "rloo_vectorized", [:]),
        ("reinforce_plus_plus_baseline", "reinforce_plus_plus_baseline", [:]),
        ("opo", "opo", [:]),
    ]

    static var names: [String] {
        estimatorCases.map(\.0) + ["ppo_clip_fwd_bwd", "kl_k3", "validate"]
    }

    static func prepare(_ name: String, batch: RolloutBatch) throws -> () throws -> Void {
        if let (_, est, params) = estimatorCases.first(where: { $0.0 == name }) {
            let e = try Registry.estimator(est)
            let p = try Params.resolve(params, specs: e.info.params, method: est)
            return { _ = try e.compute(batch, p) }
        }
        switch name {
        case "ppo_clip_fwd_bwd":
            let loss = try Registry.loss("vanilla")
            let p = try Params.resolve(["loss_agg_mode": .string("token-mean")], specs: loss.info.params, method: "vanilla")
            let input = LossInput(batch: batch, advantages: batch.extraTokenColumns["advantages"])
            return { _ = try loss.compute(input, p) }
        case "kl_k3":
            let kl = try Registry.kl("low_var_kl")
            let lp = batch.logprob!, ref = batch.refLogprob!
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
