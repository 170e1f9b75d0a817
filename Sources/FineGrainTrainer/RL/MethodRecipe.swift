import FineGrain

/// How the trainer runs one credit-assignment method: which registry estimator turns the scored group into
/// token advantages (and with which parameters), which loss trains the policy, and which extra models the
/// estimator needs. Every method is reached through `Registry` by name; nothing here re-implements one.
public struct MethodRecipe: Sendable {
    public enum Signal: Sendable, Equatable {
        /// Outcome reward only.
        case outcome
        /// The task oracle's exact per-step rewards (`step_ends` / `step_rewards`): PURE's PRM scores.
        case oracleSteps
        /// Oracle step correctness as Fine-Grained RLHF's per-segment factuality labels (+1 / -1).
        case oracleSegmentLabels
        /// An implicit PRM (a copy of the policy trained online with PRIME's cross-entropy loss).
        case implicitPRM
    }

    public let name: String
    public let summary: String
    public let estimator: String
    public let estimatorParams: [String: ParamValue]
    public let loss: String
    public let lossParams: [String: ParamValue]
    /// A critic (value model) is trained beside the policy and its values fed to the estimator (GAE).
    public let needsCritic: Bool
    public let signal: Signal

    /// The built-in recipes. Any other registered estimator name also works (outcome reward, PPO-clip loss)
    /// when it needs nothing beyond rewards, tokens, log-probs and values.
    public static let builtIn: [MethodRecipe] = [
        MethodRecipe(name: "grpo", summary: "GRPO: group-normalised outcome, the sparse baseline",
                     estimator: "grpo", estimatorParams: [:], loss: "vanilla", lossParams: [:], needsCritic: false, signal: .outcome),
        MethodRecipe(name: "dr_grpo", summary: "Dr. GRPO: group mean-centred outcome, constant-normalised token sum",
                     estimator: "dr_grpo", estimatorParams: [:], loss: "vanilla",
                     lossParams: ["loss_agg_mode": .string("seq-mean-token-sum-norm")], needsCritic: false, signal: .outcome),
        MethodRecipe(name: "rloo", summary: "RLOO: leave-one-out baseline",
                     estimator: "rloo", estimatorParams: [:], loss: "vanilla", lossParams: [:], needsCritic: false, signal: .outcome),
        MethodRecipe(name: "ppo_gae", summary: "PPO with a learned critic and GAE",
                     estimator: "gae", estimatorParams: ["gamma": .number(1), "lam": .number(0.95)], loss: "vanilla",
                     lossParams: [:], needsCritic: true, signal: .outcome),
        MethodRecipe(name: "tempo", summary: "TEMPO: prefix-tree TD corrections on top of GRPO",
                     estimator: "tempo", estimatorParams: [:], loss: "vanilla", lossParams: [:], needsCritic: false, signal: .outcome),
        MethodRecipe(name: "pure", summary: "PURE: min-form credit over the oracle PRM's step scores plus the verifiable reward",
                     estimator: "pure", estimatorParams: [:], loss: "vanilla", lossParams: [:], needsCritic: false, signal: .oracleSteps),
        MethodRecipe(name: "prime", summary: "PRIME: implicit token rewards from a PRM trained online, plus the outcome",
                     estimator: "prime", estimatorParams: [:], loss: "vanilla", lossParams: [:], needsCritic: false, signal: .implicitPRM),
        MethodRecipe(name: "fg_rlhf", summary: "Fine-Grained RLHF: oracle segment rewards at step ends, critic + GAE",
                     estimator: "fine_grained_rlhf", estimatorParams: ["kl_coef": .number(0)], loss: "vanilla", lossParams: [:],
                     needsCritic: true, signal: .oracleSegmentLabels),
    ]

    public static var names: [String] { builtIn.map(\.name) }

    /// A built-in recipe, or a plain outcome recipe for any other registered estimator.
    public static func named(_ name: String) throws -> MethodRecipe {
        if let r = builtIn.first(where: { $0.name == name }) { return r }
        guard let e = Registry.estimators[name] else {
            throw FineGrainError.unknownMethod(kind: "training method", name: name, known: names + Registry.estimators.keys.sorted())
        }
        let critic = e.info.requires.contains("values")
        return MethodRecipe(name: name, summary: e.info.summary, estimator: name, estimatorParams: [:], loss: "vanilla",
                            lossParams: [:], needsCritic: critic, signal: .outcome)
    }
}
