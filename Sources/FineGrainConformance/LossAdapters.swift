import FineGrain

/// Conformance adapters for policy / value losses, KL estimators and loss aggregation.
///
/// Every adapter decodes verl's padded `[B][T]` tensors into the ragged layout keeping the full width
/// (`trimTrailingPadding: false`, so verl's default `loss_scale_factor = T` equals FineGrain's longest-row
/// default), runs the method through the registry and pads gradients back to `[B][T]` (0 at masked positions,
/// which is autograd's value there).
let lossAdapters: [ConformanceAdapter] = policyLossAdapters + [valueLossAdapter, klPenaltyAdapter, aggLossAdapter]

/// verl function name -> FineGrain registry name.
let policyLossNames: [(String, String)] = [
    ("compute_policy_loss_vanilla", "vanilla"), ("compute_policy_loss_gspo", "gspo"),
    ("compute_policy_loss_gpg", "gpg"), ("compute_policy_loss_clip_cov", "clip_cov"),
    ("compute_policy_loss_kl_cov", "kl_cov"), ("compute_policy_loss_sapo", "sapo"),
    ("compute_policy_loss_cispo", "cispo"), ("compute_policy_loss_dppo_tv", "dppo_tv"),
    ("compute_policy_loss_dppo_kl", "dppo_kl"), ("compute_policy_loss_geo_mean", "geo_mean"),
    ("compute_policy_loss_dro", "dro"), ("compute_policy_loss_reinforce", "reinforce"),
]

/// The ragged skeleton of a padded mask plus a column decoder for the same layout.
struct PaddedLayout {
    let batch: RolloutBatch
    let width: Int
    init(mask: [[Double]]) throws {
        batch = try VerlLayout.batch(responseMask: mask, groups: nil, trimTrailingPadding: false)
        width = mask[0].count
    }
    func column(_ c: GoldenCase, _ key: String) throws -> [Double] {
        let m = try c.matrix(key)
        for (i, row) in m.enumerated() where row.count != width {
            throw FineGrainError.invalidField(field: key, reason: "row \(i) has \(row.count) columns, the mask has \(width)")
        }
        return try VerlLayout.ragged(m, like: batch, field: key)
    }
    func padded(_ x: [Double]) -> JSONValue { .matrix(VerlLayout.padded(x, like: batch, width: width)) }
    var input: LossInput { LossInput(offsets: batch.offsets, mask: batch.mask) }
}

let policyLossAdapters: [ConformanceAdapter] = policyLossNames.map { fn, name in
    ConformanceAdapter(fn) { c in
        let layout = try PaddedLayout(mask: try c.matrix("response_mask"))
        var input = layout.input
        input.logprob = try layout.column(c, "log_prob")
        input.oldLogprob = try layout.column(c, c.hasInput("rollout_log_prob") ? "rollout_log_prob" : "old_log_prob")
        input.advantages = try layout.column(c, "advantages")
        if c.hasInput("rollout_is_weights") { input.rolloutISWeights = try layout.column(c, "rollout_is_weights") }
        let out = try Registry.loss(name, input: input, params: c.registryParams())
        var result: [String: JSONValue] = ["pg_loss": .number(out.value), "grad_log_prob": layout.padded(out.gradient)]
        for (k, v) in out.metrics { result[k] = .number(v) }
        return result
    }
}

let valueLossAdapter = ConformanceAdapter("compute_value_loss") { c in
    let layout = try PaddedLayout(mask: try c.matrix("response_mask"))
    var input = layout.input
    input.vpreds = try layout.column(c, "vpreds")
    input.values = try layout.column(c, "values")
    input.returns = try layout.column(c, "returns")
    let out = try Registry.loss("value_loss", input: input, params: c.registryParams())
    return ["vf_loss": .number(out.value), "vf_clipfrac": .number(out.metrics["vf_clipfrac"] ?? .nan),
            "grad_vpreds": layout.padded(out.gradient)]
}

let klPenaltyAdapter = ConformanceAdapter("kl_penalty") { c in
    let lp = try c.matrix("logprob"), ref = try c.matrix("ref_logprob")
    guard lp.count == ref.count, zip(lp, ref).allSatisfy({ $0.count == $1.count }) else {
        throw FineGrainError.invalidField(field: "ref_logprob", reason: "shape differs from logprob")
    }
    guard let name = c.param("kl_penalty")?.stringValue else {
        throw FineGrainError.invalidParameter(name: "kl_penalty", method: "kl_penalty", reason: "missing estimator name")
    }
    let out = try KLPenalty.compute(name, logprob: lp.flatMap { $0 }, ref: ref.flatMap { $0 })
    var k = 0
    func reshape(_ x: [Double]) -> JSONValue {
        k = 0
        return .matrix(lp.map { row in defer { k += row.count }; return Array(x[k ..< k + row.count]) })
    }
    return ["kl": reshape(out.values), "grad_logprob": reshape(out.gradient)]
}

let aggLossAdapter = ConformanceAdapter("agg_loss") { c in
    let layout = try PaddedLayout(mask: try c.matrix("loss_mask"))
    let x = try layout.column(c, "loss_mat")
    let p = try Params.resolve(c.registryParams(), specs: Aggregation.specs(defaultMode: .tokenMean), method: "agg_loss")
    let agg = try Aggregation.from(p)
    return ["loss": .number(try agg.aggregate(x, offsets: layout.batch.offsets, mask: layout.batch.mask))]
}
