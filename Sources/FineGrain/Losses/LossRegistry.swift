/// Every policy / value loss and KL estimator. Add a new one here.
let registeredLosses: [Loss] = []
let registeredKLEstimators: [KLEstimator] = []
