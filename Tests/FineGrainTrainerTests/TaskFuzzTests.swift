import FineGrain
@testable import FineGrainTrainer
import XCTest

/// Random token sequences (any id, in or out of the vocabulary) never crash the oracles, score 0 unless
/// they happen to be right, and always give strictly increasing step ends within the response.
final class TaskFuzzTests: XCTestCase {
    func fuzz<T: VerifiableTask>(_ task: T, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        for i in 0 ..< 3000 {
            let p = task.sampleProblem(rng: &rng)
            var r: [Int32]
            if i % 2 == 0 {
                // Mutate a demonstration: near-misses exercise the parser harder than noise does.
                r = (try? task.demonstration(p, noise: 0, rng: &rng)) ?? []
                for _ in 0 ..< 1 + Int(rng.next() % 3) where !r.isEmpty {
                    let k = Int(rng.next() % UInt64(r.count))
                    switch rng.next() % 3 {
                    case 0: r[k] = Int32(rng.next() % UInt64(task.vocabulary.size + 2)) - 1
                    case 1: r.remove(at: k)
                    default: r.insert(Int32(rng.next() % UInt64(task.vocabulary.size)), at: k)
                    }
                }
            } else {
                r = (0 ..< Int(rng.next() % UInt64(task.maxResponseLength + 4))).map { _ in Int32(rng.next() % UInt64(task.vocabulary.size + 3)) - 1 }
            }
            let s = task.score(p, response: r)
            var last = 0
            for e in s.stepEnds {
                XCTAssertGreaterThan(e, last, task.vocabulary.render(r))
                last = e
            }
            XCTAssertLessThanOrEqual(last, r.count)
            XCTAssertEqual(s.outcome, s.correct ? 1 : 0)
            if s.correct { XCTAssertTrue(r.contains(Vocabulary.eos)) }
            if !r.isEmpty { XCTAssertFalse(s.steps.isEmpty) }
            XCTAssertEqual(s.firstErrorStep == nil, s.steps.allSatisfy(\.correct))
        }
    }

    func testAdditionOracleSurvivesGarbage() throws {
        fuzz(try AdditionTask(), seed: 1)
        fuzz(try AdditionTask(digits: 1 ... 2, carryGrading: .ownCarry), seed: 2)
    }

    func testPathOracleSurvivesGarbage() throws {
        fuzz(try PathTask(), seed: 3)
        fuzz(try PathTask(layers: 2, width: 2), seed: 4)
    }
}
