/// Every advantage estimator, in the order `finegrain methods` lists them. Add a new estimator here.
let creditEstimators: [AdvantageEstimator] = []
