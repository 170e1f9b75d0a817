import FineGrain
import Foundation

/// Everything one training run depends on. Two runs with equal configs produce identical metrics (every
/// random draw comes from one seeded `SplitMix64`, and the kernels' summation orders are fixed), which is
/// what makes checkpoint/resume exact.
public struct RLConfig: Codable, Sendable, Equatable {
    /// Task name (`TaskCatalog.names`) and its string parameters.
    public var task = "addition"
    public var taskParameters: [String: String] = [:]
    /// Method name: a `MethodRecipe` (e.g. `grpo`, `ppo_gae`, `pure`, `prime`, `fg_rlhf`, `tempo`).
    public var method = "grpo"
    /// Extra estimator parameters (`key=value` as on the command line), applied over the recipe's own.
    public var estimatorParameters: [String: String] = [:]
    public var seed: UInt64 = 0

    // RL phase
    public var steps = 100
    /// Prompts per step; each is sampled `groupSize` times (verl's `rollout.n`).
    public var promptsPerStep = 8
    public var groupSize = 8
    public var learningRate: Float = 1e-4
    public var temperature: Float = 1
    public var topP: Float = 1
    /// Coefficient of the k3 KL to the frozen reference, added to the loss (verl `use_kl_loss`).
    public var klCoef = 0.01
    public var clipRatio = 0.2
    public var maxGradNorm: Float = 1
    /// Learning rate of the critic (GAE methods) and of the implicit PRM (PRIME).
    public var auxLearningRate: Float = 1e-3

    // Evaluation and bookkeeping
    public var evalEvery = 10
    public var evalProblems = 256
    /// Problems of the evaluation set are drawn from this seed (the same for every method and run seed).
    public var evalSeed: UInt64 = 9_000_001
    public var checkpointEvery = 20

    // Supervised warm start on noisy demonstrations
    public var warmStartSteps = 700
    public var warmStartBatch = 32
    public var warmStartLearningRate: Float = 3e-3
    public var warmStartNoise = 0.05

    // Model
    public var dModel = 64
    public var nLayers = 2
    public var nHeads = 4

    public init() {}

    /// Throws naming the first bad field.
    public func validate() throws {
        func bad(_ f: String, _ why: String) -> FineGrainError { .invalidParameter(name: f, method: "train", reason: why) }
        if steps < 0 { throw bad("steps", "must be >= 0, got \(steps)") }
        if promptsPerStep < 1 { throw bad("prompts_per_step", "must be >= 1, got \(promptsPerStep)") }
        if groupSize < 2 { throw bad("group_size", "must be >= 2 (group baselines need a group), got \(groupSize)") }
        if !(learningRate > 0) { throw bad("learning_rate", "must be > 0, got \(learningRate)") }
        if !(temperature > 0) { throw bad("temperature", "must be > 0 for sampling, got \(temperature)") }
        if !(topP > 0 && topP <= 1) { throw bad("top_p", "must be in (0, 1], got \(topP)") }
        if !(klCoef >= 0) { throw bad("kl_coef", "must be >= 0, got \(klCoef)") }
        if evalEvery < 1 { throw bad("eval_every", "must be >= 1, got \(evalEvery)") }
        if evalProblems < 1 { throw bad("eval_problems", "must be >= 1, got \(evalProblems)") }
        if checkpointEvery < 1 { throw bad("checkpoint_every", "must be >= 1, got \(checkpointEvery)") }
        if warmStartSteps < 0 { throw bad("warm_start_steps", "must be >= 0, got \(warmStartSteps)") }
        if !(warmStartNoise >= 0 && warmStartNoise <= 1) { throw bad("warm_start_noise", "must be in [0, 1], got \(warmStartNoise)") }
        _ = try MethodRecipe.named(method)
    }

    /// The parts of the config that determine the warm-started weights (shared by every method).
    var warmStartKey: String {
        let params = taskParameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        return "\(task)[\(params)]-s\(seed)-d\(dModel)l\(nLayers)h\(nHeads)-w\(warmStartSteps)b\(warmStartBatch)n\(warmStartNoise)lr\(warmStartLearningRate)"
    }
}
