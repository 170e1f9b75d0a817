/// Every advantage estimator, in the order `finegrain methods` lists them. Add a new estimator here.
///
/// verl's names and parameter names (`gamma`, `lam`, `epsilon`, `norm_adv_by_std_in_grpo`, `f_norm`,
/// `handle_zero_tail`) are kept so a verl config carries over; `dr_grpo`, `trl_grpo` and
/// `openrlhf_group_norm` are FineGrain's additions (see `GRPO.swift`, `GroupNormConventions.swift`).
let creditEstimators: [AdvantageEstimator] = [
    GAE.estimator,
    GRPO.estimator,
    DrGRPO.estimator,
    GRPOVectorized.estimator,
    GRPOPassK.estimator,
    RLOO.estimator,
    RLOOVectorized.estimator,
    ReinforcePlusPlus.estimator,
    ReinforcePlusPlusBaseline.estimator,
    ReMax.estimator,
    OPO.estimator,
    GPG.estimator,
    GDPO.estimator,
    OptimalTokenBaseline.estimator,
    TIROptimalTokenBaseline.estimator,
    TRLGRPO.estimator,
    OpenRLHFGroupNorm.estimator,
]
    + SegmentRM.estimators
    + FineGrainedRLHF.estimators
    + RTO.estimators
    + TEMPO.estimators
    + HAPOTokenGroupAverage.estimators
    + DTPOAdvantage.estimators
    + GatedRewardAccumulation.estimators
    + TPGRPO.estimators
    + PURE.estimators
    + PRIME.estimators
    + SPO.estimators
