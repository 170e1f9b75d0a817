/// The actor objective a trainer minimises, as verl's `dp_actor` combines it:
/// `pg_loss + kl_coef · agg(KL(logprob, ref)) − entropy_coeff · agg(entropy)`, with the policy loss's
/// aggregation (`loss_agg_mode`, `dp_size`, global counts) reused for the KL and entropy terms.
///
/// Papers: the policy-loss term cites its own paper (see the registry); the KL term uses the estimators of
/// J. Schulman's "Approximating KL Divergence" (2020) (`KLPenalty`); the entropy bonus follows PPO,
/// "Proximal Policy Optimization Algorithms" (2017).
///
/// `gradient` is `∂/∂logprob` of `pg_loss + kl_coef·agg(KL)`. The entropy bonus has no gradient w.r.t. the
/// sampled-token log-probs (it depends on the whole distribution): its gradient flows through the logits
/// (`Entropy.withGradient`), so only its value is returned here and it is not part of `gradient`.
public struct PolicyObjective: Sendable {
    public var loss: String
    public var params: [String: ParamValue]
    public var klCoef: Double
    public var klType: String
    public var entropyCoeff: Double

    public init(loss: String = "vanilla", params: [String: ParamValue] = [:], klCoef: Double = 0,
                klType: String = "low_var_kl", entropyCoeff: Double = 0) {
        self.loss = loss; self.params = params; self.klCoef = klCoef; self.klType = klType; self.entropyCoeff = entropyCoeff
    }

    public struct Output: Sendable {
        /// pg_loss + kl_coef·kl_loss − entropy_coeff·entropy_loss.
        public var value: Double
        public var pgLoss: Double
        /// agg(KL), nil when kl_coef == 0.
        public var klLoss: Double?
        /// agg(entropy), nil when entropy_coeff == 0.
        public var entropyLoss: Double?
        public var metrics: [String: Double]
        /// ∂(pg_loss + kl_coef·kl_loss)/∂logprob `[N]`.
        public var gradient: [Double]
    }

    public func compute(_ input: LossInput) throws -> Output {
        let pg = try Registry.loss(loss, input: input, params: params)
        var value = pg.value, grad = pg.gradient, metrics = pg.metrics
        let aggKeys = Set(Aggregation.specs(defaultMode: .tokenMean).map(\.name))
        let aggParams = try Params.resolve(params.filter { aggKeys.contains($0.key) },
                                           specs: Aggregation.specs(defaultMode: .tokenMean), method: loss)
        let agg = try Aggregation.from(aggParams)
        var klLoss: Double?, entLoss: Double?
        if klCoef != 0 {
            let lp = try input.require(input.logprob, "logprobs", method: loss)
            let ref = try input.require(input.refLogprob, "ref_logprobs", method: "kl loss (\(klType))")
            let kl = try KLPenalty.compute(klType, logprob: lp, ref: ref)
            let (v, g) = agg.valueAndGradient(kl.values, derivative: kl.gradient, offsets: input.offsets, mask: input.mask)
            klLoss = v; value += klCoef * v
            for t in 0 ..< grad.count { grad[t] += klCoef * g[t] }
            metrics["kl_loss"] = v
        }
        if entropyCoeff != 0 {
            let h = try input.require(input.entropy, "entropies", method: "entropy bonus")
            let v = try agg.aggregate(h, offsets: input.offsets, mask: input.mask, method: loss)
            entLoss = v; value -= entropyCoeff * v
            metrics["entropy"] = v
        }
        return Output(value: value, pgLoss: pg.value, klLoss: klLoss, entropyLoss: entLoss, metrics: metrics, gradient: grad)
    }
}
