import FineGrain
@testable import FineGrainTrainer
import XCTest

final class TaskBatchTests: XCTestCase {
    func testScoredGroupBecomesAValidRolloutBatch() throws {
        let task = try AdditionTask()
        var rng = SplitMix64(seed: 21)
        var groups: [Int] = [], responses: [[Int32]] = [], scores: [TaskScore] = []
        for g in 0 ..< 3 {
            let p = task.sampleProblem(rng: &rng)
            for _ in 0 ..< 4 {
                let r = try task.demonstration(p, noise: 0.3, rng: &rng)
                groups.append(g); responses.append(r); scores.append(task.score(p, response: r))
            }
        }
        responses[0] = []  // an empty response has no steps and still fits
        scores[0] = task.score(AdditionTask.Problem(a: 1, b: 1), response: [])
        let b = try TaskBatch.rollouts(groups: groups, responses: responses, scores: scores) { $0.correct ? 1 : -1 }
        XCTAssertEqual(b.count, 12)
        XCTAssertEqual(b.groupCount, 3)
        XCTAssertEqual(b.outcome, scores.map(\.outcome))
        XCTAssertEqual(b.stepEnds, scores.flatMap(\.stepEnds))
        XCTAssertEqual(b.stepReward, scores.flatMap { $0.stepRewards(correct: 1, wrong: -1) })
        XCTAssertEqual(b.stepOffsets?.first, 0)
        XCTAssertEqual(b.stepOffsets?[1], 0)
        XCTAssertThrowsError(try TaskBatch.rollouts(groups: [0], responses: responses, scores: scores))
        XCTAssertThrowsError(try TaskBatch.rollouts(groups: groups, responses: responses, scores: []))
        // A score whose steps overrun the response is rejected by FineGrain's validation.
        XCTAssertThrowsError(try TaskBatch.rollouts(groups: [0], responses: [[5]], scores: [scores[1]]))
    }
}
