import FineGrain

/// One step of a scored response, as the oracle sees it.
public struct TaskStep: Sendable, Equatable {
    /// Exclusive token offset in the response where the step ends (strictly increasing, at most the
    /// response length): the `step_ends` of FineGrain's rollout contract.
    public var end: Int
    /// The oracle's process reward for the step (1 when correct, 0 when not): the `step_rewards`.
    public var reward: Double
    /// Whether the step is correct by the task's oracle.
    public var correct: Bool

    public init(end: Int, reward: Double, correct: Bool) {
        self.end = end; self.reward = reward; self.correct = correct
    }
}

/// What the oracle says about one response.
public struct TaskScore: Sendable, Equatable {
    /// Outcome reward: 1 when the final answer is correct, 0 otherwise (malformed responses score 0).
    public var outcome: Double
    /// Whether the final answer is correct (`outcome == 1`).
    public var correct: Bool
    /// Whether the response followed the task's format (ended with EOS, every part parsed).
    public var wellFormed: Bool
    /// The oracle's verdict per step, in order.
    public var steps: [TaskStep]

    public init(correct: Bool, wellFormed: Bool, steps: [TaskStep]) {
        self.correct = correct; self.outcome = correct ? 1 : 0
        self.wellFormed = wellFormed; self.steps = steps
    }

    /// Index of the first incorrect step, nil when every step is correct.
    public var firstErrorStep: Int? { steps.firstIndex { !$0.correct } }
    /// Step end offsets, ready for `RolloutBatch.stepEnds` (relative to the response start).
    public var stepEnds: [Int] { steps.map(\.end) }
    /// Step rewards, ready for `RolloutBatch.stepReward`.
    public var stepRewards: [Double] { steps.map(\.reward) }
    /// Step rewards remapped: `correct` for correct steps, `wrong` for the others (e.g. 1 / -1).
    public func stepRewards(correct: Double, wrong: Double) -> [Double] { steps.map { $0.correct ? correct : wrong } }
}

/// A synthetic, verifiable task with an oracle for every step (`Task` would shadow Swift's
/// concurrency `Task` in every module that imports the trainer, hence the longer name).
///
/// Problems are value types. A response is the token sequence the policy writes after the prompt,
/// normally ending with `Vocabulary.eos`; tokens after the first EOS are ignored by `score`.
public protocol VerifiableTask: Sendable {
    associatedtype Problem: Sendable, Equatable
    /// Registry name (`addition`, `path`).
    var name: String { get }
    var vocabulary: Vocabulary { get }
    /// Longest prompt `prompt` returns (BOS included).
    var maxPromptLength: Int { get }
    /// Longest response worth sampling (EOS included); every correct solution fits.
    var maxResponseLength: Int { get }

    /// Draws a problem.
    func sampleProblem(rng: inout SplitMix64) -> Problem
    /// The prompt tokens, starting with BOS.
    func prompt(_ problem: Problem) -> [Int32]
    /// A correct solution written as the task's scratchpad, ending with EOS, in which each step is
    /// corrupted with probability `noise` in a way a learner plausibly errs. Throws when `noise` is not
    /// in [0, 1].
    func demonstration(_ problem: Problem, noise: Double, rng: inout SplitMix64) throws -> [Int32]
    /// The oracle: outcome and per-step verdicts. Never fails; malformed responses score 0.
    func score(_ problem: Problem, response: [Int32]) -> TaskScore
    /// The problem in text (for logs and reports).
    func describe(_ problem: Problem) -> String
}

extension VerifiableTask {
    /// The response's tokens up to and including the first EOS (all of it when there is none).
    func untilEOS(_ response: [Int32]) -> ArraySlice<Int32> {
        if let e = response.firstIndex(of: Vocabulary.eos) { return response[...e] }
        return response[...]
    }

    func checkNoise(_ noise: Double) throws {
        guard noise.isFinite, noise >= 0, noise <= 1 else {
            throw FineGrainError.invalidParameter(name: "noise", method: name, reason: "must be in [0, 1], got \(noise)")
        }
    }
}
