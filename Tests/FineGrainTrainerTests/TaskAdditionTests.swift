import FineGrain
@testable import FineGrainTrainer
import XCTest

final class TaskAdditionTests: XCTestCase {
    let task = try! AdditionTask()
    let p = AdditionTask.Problem(a: 347, b: 285)

    func enc(_ s: String, eos: Bool = true) -> [Int32] { try! task.vocabulary.encode(s) + (eos ? [Vocabulary.eos] : []) }

    func testPromptAndCorrectSolution() throws {
        XCTAssertEqual(try task.vocabulary.decode(task.prompt(p)), "<bos>347+285=")
        let r = enc("7+5+0=12;4+8+1=13;3+2+1=06;=632")
        let s = task.score(p, response: r)
        XCTAssertEqual(s.outcome, 1)
        XCTAssertTrue(s.correct && s.wellFormed)
        XCTAssertEqual(s.stepEnds, [9, 18, 27, 32])
        XCTAssertEqual(s.stepRewards, [1, 1, 1, 1])
        XCTAssertNil(s.firstErrorStep)
        var rng = SplitMix64(seed: 3)
        XCTAssertEqual(try task.demonstration(p, noise: 0, rng: &rng), r)
    }

    func testUnequalLengthsAndFinalCarry() {
        let q = AdditionTask.Problem(a: 9999, b: 2)
        let s = task.score(q, response: enc("9+2+0=11;9+0+1=10;9+0+1=10;9+0+1=10;=10001"))
        XCTAssertEqual(s.outcome, 1)
        XCTAssertEqual(s.stepRewards, [1, 1, 1, 1, 1])
        XCTAssertEqual(task.maxResponseLength, 43)
        XCTAssertLessThanOrEqual(task.maxPromptLength + task.maxResponseLength, 96)
    }

    func testWrongCarryMiddleStepTrueVsOwnGrading() throws {
        // Step 1 forgets the carry (4+8+0=12), so step 2 continues from carry 1 consistently; answer 622.
        let r = enc("7+5+0=12;4+8+0=12;3+2+1=06;=622")
        let t = task.score(p, response: r)
        XCTAssertEqual(t.outcome, 0)
        XCTAssertEqual(t.stepRewards, [1, 0, 1, 0])  // step 2's carry-in 1 is the true carry
        XCTAssertEqual(t.firstErrorStep, 1)
        XCTAssertTrue(t.wellFormed)
        // Step 1 writes a wrong carry-out (4+8+1=03), and step 2 builds on it (3+2+0=05).
        let r2 = enc("7+5+0=12;4+8+1=03;3+2+0=05;=532")
        XCTAssertEqual(task.score(p, response: r2).stepRewards, [1, 0, 0, 0])
        let own = try AdditionTask(carryGrading: .ownCarry)
        XCTAssertEqual(own.score(p, response: r2).stepRewards, [1, 0, 1, 0])
        XCTAssertEqual(own.score(p, response: r2).firstErrorStep, 1)
    }

    func testMalformedResponses() {
        let cases: [[Int32]] = [
            [], [Vocabulary.eos], enc("7+5+0=12;"), enc("=632", eos: false), enc("=63;2"), enc(";;;;"),
            enc("7+5=12;=632"), [Vocabulary.pad, Vocabulary.bos, 99, -4, Vocabulary.eos], enc("=="), enc("7+5+0=12=632"),
            enc("7+5+0=12;4+8+1=13;3+2+1=06;0+0+0=00;=632"),
        ]
        for (i, r) in cases.enumerated() {
            let s = task.score(p, response: r)
            XCTAssertFalse(s.wellFormed, "case \(i)")
            checkEnds(s, r, "case \(i)")
            // Only the answer decides the outcome: cases 6, 9, 10 have bad steps but a readable right answer.
            XCTAssertEqual(s.outcome, [6, 9, 10].contains(i) ? 1 : 0, "case \(i)")
        }
        // A missing `;` before the answer: one wrong step, then the (correct) answer.
        let s = task.score(p, response: enc("7+5+0=12=632"))
        XCTAssertEqual(s.steps.map(\.end), [8, 13])
        // Extra step beyond the operands is wrong; the answer still counts.
        let x = task.score(p, response: enc("7+5+0=12;4+8+1=13;3+2+1=06;0+0+0=00;=632"))
        XCTAssertEqual(x.stepRewards, [1, 1, 1, 0, 1])
        XCTAssertEqual(x.outcome, 1)
        // Tokens after EOS are ignored.
        XCTAssertEqual(task.score(p, response: enc("7+5+0=12;4+8+1=13;3+2+1=06;=632") + [5, 5]).outcome, 1)
        // The answer must be canonical.
        XCTAssertEqual(task.score(p, response: enc("7+5+0=12;4+8+1=13;3+2+1=06;=0632")).outcome, 0)
    }

    func checkEnds(_ s: TaskScore, _ r: [Int32], _ msg: String) {
        var last = 0
        for e in s.stepEnds {
            XCTAssertGreaterThan(e, last, msg)
            last = e
        }
        XCTAssertLessThanOrEqual(last, r.count, msg)
    }

    func testDemonstrationsNoiseFreeAlwaysCorrectAndDeterministic() throws {
        var rng = SplitMix64(seed: 42)
        for _ in 0 ..< 500 {
            let q = task.sampleProblem(rng: &rng)
            XCTAssertTrue(task.digits.contains(String(q.a).count) && task.digits.contains(String(q.b).count))
            let d = try task.demonstration(q, noise: 0, rng: &rng)
            let s = task.score(q, response: d)
            XCTAssertEqual(s.outcome, 1, task.vocabulary.render(d))
            XCTAssertNil(s.firstErrorStep)
            XCTAssertLessThanOrEqual(d.count, task.maxResponseLength)
            XCTAssertLessThanOrEqual(task.prompt(q).count, task.maxPromptLength)
            checkEnds(s, d, "")
            XCTAssertEqual(s.stepEnds.last, d.count)
        }
        var a = SplitMix64(seed: 7), b = SplitMix64(seed: 7)
        for _ in 0 ..< 20 {
            let qa = task.sampleProblem(rng: &a), qb = task.sampleProblem(rng: &b)
            XCTAssertEqual(qa, qb)
            XCTAssertEqual(try task.demonstration(qa, noise: 0.5, rng: &a), try task.demonstration(qb, noise: 0.5, rng: &b))
        }
    }

    func testNoisyDemonstrationsErrRealistically() throws {
        for noise in [0.05, 0.1, 0.2, 0.3] {
            var rng = SplitMix64(seed: 11)
            var wrong = 0, stepErrors = 0, steps = 0, n = 2000
            for _ in 0 ..< n {
                let q = task.sampleProblem(rng: &rng)
                let d = try task.demonstration(q, noise: noise, rng: &rng)
                let s = task.score(q, response: d)
                XCTAssertTrue(s.wellFormed)
                checkEnds(s, d, "")
                if !s.correct { wrong += 1; XCTAssertNotNil(s.firstErrorStep) }
                stepErrors += s.steps.filter { !$0.correct }.count
                steps += s.steps.count
            }
            let rate = Double(wrong) / Double(n)
            print("addition noise \(noise): answer error rate \(rate), wrong-step fraction \(Double(stepErrors) / Double(steps))")
            if noise == 0.3 { XCTAssertTrue((0.6 ... 0.95).contains(rate), "\(rate)") }
            if noise == 0.1 { XCTAssertTrue((0.25 ... 0.55).contains(rate), "\(rate)") }
        }
        var rng = SplitMix64(seed: 1)
        XCTAssertThrowsError(try task.demonstration(p, noise: 1.5, rng: &rng)) { e in
            XCTAssertEqual(e as? FineGrainError, .invalidParameter(name: "noise", method: "addition", reason: "must be in [0, 1], got 1.5"))
        }
        XCTAssertThrowsError(try AdditionTask(digits: 0 ... 3))
    }
}
