import FineGrain
@testable import FineGrainTrainer
import XCTest

final class TaskPathTests: XCTestCase {
    let task = try! PathTask()
    // S -> a, b; a -> d, e; b -> f (dead: f has no edges); d -> g (dead: g has no edges); e -> h; h -> k (goal).
    let p = PathTask.Problem(
        successors: [[1, 2], [4, 5], [6], [], [7], [8], [], [], [11], [], [], [], []], goal: 11
    )

    func enc(_ s: String, eos: Bool = true) -> [Int32] { try! task.vocabulary.encode(s) + (eos ? [Vocabulary.eos] : []) }

    func testPromptAndCorrectPath() throws {
        XCTAssertEqual(try task.vocabulary.decode(task.prompt(p)), "<bos>Sa,Sb,ad,ae,bf,dg,eh,hk?k=")
        XCTAssertEqual(task.live(p), [true, true, false, false, false, true, false, false, true, false, false, true, false])
        let r = enc("aehk")
        let s = task.score(p, response: r)
        XCTAssertEqual(s.outcome, 1)
        XCTAssertTrue(s.wellFormed)
        XCTAssertEqual(s.stepEnds, [1, 2, 3, 5])
        XCTAssertEqual(s.stepRewards, [1, 1, 1, 1])
        var rng = SplitMix64(seed: 0)
        XCTAssertEqual(try task.demonstration(p, noise: 0, rng: &rng), r)
    }

    func testWrongTurnDoomsTheRest() {
        // a -> d is an edge but d is dead: step 1 wrong, and so is everything after.
        let s = task.score(p, response: enc("adgj"))
        XCTAssertEqual(s.stepRewards, [1, 0, 0, 0])
        XCTAssertEqual(s.firstErrorStep, 1)
        XCTAssertEqual(s.outcome, 0)
        // First move into the dead branch.
        XCTAssertEqual(task.score(p, response: enc("bfil")).firstErrorStep, 0)
        // A jump along no edge, even onto a live node, is wrong and so is the rest.
        let j = task.score(p, response: enc("aehj"))
        XCTAssertEqual(j.stepRewards, [1, 1, 1, 0])
        let k = task.score(p, response: enc("ahhk"))
        XCTAssertEqual(k.stepRewards, [1, 0, 0, 0])
        XCTAssertEqual(k.outcome, 0)
    }

    func testMalformed() {
        let cases: [[Int32]] = [[], [Vocabulary.eos], enc("aeh"), enc("aehk", eos: false), enc("aehkk"), enc("ae,k"), [99, -1, 0], enc("S")]
        for (i, r) in cases.enumerated() {
            let s = task.score(p, response: r)
            XCTAssertEqual(s.outcome, 0, "case \(i)")
            XCTAssertFalse(s.wellFormed, "case \(i)")
            var last = 0
            for e in s.stepEnds { XCTAssertGreaterThan(e, last); last = e }
            XCTAssertLessThanOrEqual(last, r.count)
            if !r.isEmpty { XCTAssertFalse(s.steps.isEmpty, "case \(i)") }
        }
        XCTAssertEqual(task.score(p, response: enc("aehkk")).stepRewards, [1, 1, 1, 1, 0])
        XCTAssertEqual(task.score(p, response: enc("aehk") + enc("ab")).outcome, 1)  // after EOS: ignored
        XCTAssertThrowsError(try PathTask(layers: 1))
        XCTAssertThrowsError(try PathTask(layers: 9, width: 3))
    }

    func testSampledProblemsHaveDeadFirstChoices() throws {
        var rng = SplitMix64(seed: 5)
        var maxTotal = 0
        for _ in 0 ..< 1000 {
            let q = task.sampleProblem(rng: &rng)
            let live = task.live(q)
            XCTAssertTrue(live[0])
            XCTAssertTrue(q.successors[0].contains { !live[$0] })
            XCTAssertTrue(q.successors[0].contains { live[$0] })
            for (v, s) in q.successors.enumerated() {
                XCTAssertTrue(s.allSatisfy { task.layer($0) == task.layer(v) + 1 })
            }
            XCTAssertEqual(task.layer(q.goal), task.layers)
            let pr = task.prompt(q)
            XCTAssertLessThanOrEqual(pr.count, task.maxPromptLength)
            let d = try task.demonstration(q, noise: 0, rng: &rng)
            XCTAssertEqual(task.score(q, response: d).outcome, 1, task.vocabulary.render(pr + d))
            maxTotal = max(maxTotal, pr.count + d.count)
        }
        XCTAssertLessThanOrEqual(task.maxPromptLength + task.maxResponseLength, 96)
        XCTAssertLessThanOrEqual(maxTotal, 80)
        var a = SplitMix64(seed: 9), b = SplitMix64(seed: 9)
        for _ in 0 ..< 20 {
            let qa = task.sampleProblem(rng: &a), qb = task.sampleProblem(rng: &b)
            XCTAssertEqual(qa, qb)
            XCTAssertEqual(try task.demonstration(qa, noise: 0.4, rng: &a), try task.demonstration(qb, noise: 0.4, rng: &b))
        }
    }

    func testNoisyDemonstrations() throws {
        for noise in [0.1, 0.2, 0.3, 0.5] {
            var rng = SplitMix64(seed: 13)
            var wrong = 0, firstWrong = 0
            let n = 2000
            for _ in 0 ..< n {
                let q = task.sampleProblem(rng: &rng)
                let d = try task.demonstration(q, noise: noise, rng: &rng)
                let s = task.score(q, response: d)
                XCTAssertTrue(s.wellFormed)
                XCTAssertEqual(s.correct, s.firstErrorStep == nil)
                if !s.correct { wrong += 1 }
                if s.firstErrorStep == 0 { firstWrong += 1 }
            }
            let rate = Double(wrong) / Double(n)
            print("path noise \(noise): answer error rate \(rate), first move wrong \(Double(firstWrong) / Double(n))")
            if noise == 0.3 { XCTAssertTrue((0.3 ... 0.9).contains(rate), "\(rate)") }
        }
    }
}
