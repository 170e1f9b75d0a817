import FineGrain

/// Scored responses as a FineGrain `RolloutBatch`, the way the RL loop hands them to the registry.
public enum TaskBatch {
    /// A batch of `responses` (response tokens only, prompts excluded) with `group` ids, the oracle's
    /// outcome as `outcome`, and its steps as `stepOffsets` / `stepEnds` / `stepReward`, where a step's
    /// reward is `stepReward(step)` (by default the oracle's 1 / 0). All tokens are policy tokens.
    /// Throws naming the field when the counts differ or a step does not fit its response.
    public static func rollouts(groups: [Int], responses: [[Int32]], scores: [TaskScore],
                                stepReward: (TaskStep) -> Double = { $0.reward }) throws -> RolloutBatch {
        guard groups.count == responses.count else {
            throw FineGrainError.invalidField(field: "group", reason: "has \(groups.count) entries for \(responses.count) responses")
        }
        guard scores.count == responses.count else {
            throw FineGrainError.invalidField(field: "scores", reason: "has \(scores.count) entries for \(responses.count) responses")
        }
        var batch = RolloutBatch(groups: groups.map { .int($0) }, lengths: responses.map(\.count), tokens: responses.flatMap { $0 })
        batch.outcome = scores.map(\.outcome)
        var offsets = [0], ends: [Int] = [], rewards: [Double] = []
        for s in scores {
            ends += s.stepEnds
            rewards += s.steps.map(stepReward)
            offsets.append(ends.count)
        }
        batch.stepOffsets = offsets
        batch.stepEnds = ends
        batch.stepReward = rewards
        try batch.validate()
        return batch
    }
}
