/// Every policy / value loss and KL estimator. Add a new one here.
let registeredLosses: [Loss] = [
    Loss(info: PPOClip.info("vanilla"), compute: PPOClip.compute),
    Loss(info: PPOClip.info("ppo_clip"), compute: PPOClip.compute),
    Loss(info: GSPO.info, compute: GSPO.compute),
    Loss(info: GPGLoss.info, compute: GPGLoss.compute),
    Loss(info: ClipCov.info, compute: ClipCov.compute),
    Loss(info: KLCov.info, compute: KLCov.compute),
    Loss(info: SAPO.info, compute: SAPO.compute),
    Loss(info: CISPO.info, compute: CISPO.compute),
    Loss(info: DPPO.info(.tv), compute: { try DPPO.compute(.tv, $0, $1) }),
    Loss(info: DPPO.info(.kl), compute: { try DPPO.compute(.kl, $0, $1) }),
    Loss(info: GeoMean.info, compute: GeoMean.compute),
    Loss(info: DRO.info, compute: DRO.compute),
    Loss(info: Reinforce.info, compute: Reinforce.compute),
    Loss(info: ValueLoss.info, compute: ValueLoss.compute),
]
    + PRIMELoss.losses

let registeredKLEstimators: [KLEstimator] = KLPenalty.names.map(KLPenalty.make)
