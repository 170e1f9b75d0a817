import FineGrain

/// Multi-digit addition written as a scratchpad of digit-and-carry steps, least-significant digit first.
///
/// Prompt: `<bos>347+285=`. Response: one step per digit position `i` (operands padded with 0s to the
/// longer length `n`), written `x+y+c=ks;` — the two digits, the carry into the position, and the
/// two-digit column sum (`k` the carry out, `s` the result digit) — then the answer, most-significant
/// digit first, after `=`, then EOS:
///
///     347+285=   7+5+0=12;4+8+1=13;3+2+1=06;=632<eos>
///
/// The oracle grades a step correct iff its digits are the operands' digits at that position, its
/// carry-in equals the reference carry (see `CarryGrading`), and `ks` is their sum. The answer is one
/// more step, correct iff it equals the true sum. The outcome is 1 iff the answer (the digits between the
/// last `=` and EOS) equals the true sum; a response without a readable answer or without EOS scores 0.
/// Step errors do not zero the outcome: only the answer counts.
public struct AdditionTask: VerifiableTask {
    /// The carry a step's carry-in is checked against.
    public enum CarryGrading: String, Sendable, CaseIterable {
        /// The carry of the correct computation: after a wrong carry, later steps that build on it are
        /// wrong too (errors propagate, as they do to the answer).
        case trueCarry = "true"
        /// The carry-out the response itself wrote in its previous step: each step is graded as local
        /// arithmetic, so a step that correctly continues from an earlier mistake counts as correct.
        case ownCarry = "own"
    }

    public struct Problem: Sendable, Equatable {
        public var a: Int
        public var b: Int
        public init(a: Int, b: Int) { self.a = a; self.b = b }
        public var sum: Int { a + b }
    }

    public let name = "addition"
    public let vocabulary: Vocabulary
    /// Number of digits of each operand, drawn uniformly and independently (leading digit non-zero).
    public let digits: ClosedRange<Int>
    public let carryGrading: CarryGrading

    /// Throws when `digits` is outside 1...9.
    public init(digits: ClosedRange<Int> = 3 ... 4, carryGrading: CarryGrading = .trueCarry) throws {
        guard digits.lowerBound >= 1, digits.upperBound <= 9 else {
            throw FineGrainError.invalidParameter(name: "digits", method: "addition", reason: "must lie within 1...9, got \(digits)")
        }
        self.digits = digits
        self.carryGrading = carryGrading
        self.vocabulary = try Vocabulary("0123456789+=;")
    }

    /// Tokens of one digit step (`x+y+c=ks;`).
    public static let stepLength = 9

    public var maxPromptLength: Int { 2 * digits.upperBound + 3 }
    /// `n` steps, `=`, up to `n + 1` answer digits, EOS.
    public var maxResponseLength: Int { Self.stepLength * digits.upperBound + digits.upperBound + 3 }

    public func sampleProblem(rng: inout SplitMix64) -> Problem {
        func number() -> Int {
            let span = UInt64(digits.count)
            let n = digits.lowerBound + Int(rng.next() % span)
            var v = 1 + Int(rng.next() % 9)
            for _ in 1 ..< n { v = v * 10 + Int(rng.next() % 10) }
            return v
        }
        let a = number()
        return Problem(a: a, b: number())
    }

    public func prompt(_ problem: Problem) -> [Int32] {
        [Vocabulary.bos] + tokens("\(problem.a)+\(problem.b)=")
    }

    public func describe(_ problem: Problem) -> String { "\(problem.a)+\(problem.b)" }

    /// Number of digit steps (the longer operand's length).
    public func stepCount(_ problem: Problem) -> Int {
        max(String(problem.a).count, String(problem.b).count)
    }

    static func digit(_ v: Int, _ k: Int) -> Int {
        var v = v
        for _ in 0 ..< k { v /= 10 }
        return v % 10
    }

    /// Corruptions, each drawn with equal chance for a step hit by noise: a flipped carry-in (a forgotten
    /// or invented carry, with the sum computed from it), an arithmetic slip (sum off by one), or a
    /// misread operand digit (off by one, with the sum computed from it). Later steps continue from the
    /// carry actually written. The answer is copied from the scratchpad's digits; with probability
    /// `noise` two adjacent answer digits are swapped (or, when they are equal, one is off by one).
    public func demonstration(_ problem: Problem, noise: Double, rng: inout SplitMix64) throws -> [Int32] {
        try checkNoise(noise)
        let n = stepCount(problem)
        var text = "", resultDigits: [Int] = [], carry = 0
        for k in 0 ..< n {
            var x = Self.digit(problem.a, k), y = Self.digit(problem.b, k), c = carry
            var s = x + y + c
            if rng.uniform() < noise {
                switch rng.next() % 3 {
                case 0: c = 1 - c; s = x + y + c
                case 1: s = s == 0 ? 1 : (s == 19 ? 18 : s + (rng.next() % 2 == 0 ? 1 : -1))
                default:
                    if rng.next() % 2 == 0 { x = (x + 1 + 8 * Int(rng.next() % 2)) % 10 } else { y = (y + 1 + 8 * Int(rng.next() % 2)) % 10 }
                    s = x + y + c
                }
            }
            text += "\(x)+\(y)+\(c)=\(s / 10)\(s % 10);"
            carry = s / 10
            resultDigits.append(s % 10)
        }
        var answer = Array(resultDigits.reversed())
        if carry == 1 { answer.insert(1, at: 0) }
        while answer.count > 1, answer[0] == 0 { answer.removeFirst() }
        if rng.uniform() < noise {
            if answer.count >= 2 {
                let i = Int(rng.next() % UInt64(answer.count - 1))
                if answer[i] != answer[i + 1] { answer.swapAt(i, i + 1) } else { answer[i + 1] = (answer[i + 1] + 1) % 10 }
            } else {
                answer[0] = (answer[0] + 1) % 10
            }
        }
        text += "=" + answer.map(String.init).joined()
        return tokens(text) + [Vocabulary.eos]
    }

    public func score(_ problem: Problem, response: [Int32]) -> TaskScore {
        let r = Array(untilEOS(response))
        let chars = r.map { vocabulary.symbol($0) }
        let n = stepCount(problem)
        var steps: [TaskStep] = [], wellFormed = true, correct = false, answered = false
        var trueCarry = 0, ownCarry: Int? = 0, pos = 0, k = 0
        while pos < r.count {
            if chars[pos] == "=" {
                // The answer: digits up to EOS.
                let body = chars[(pos + 1)...].prefix { $0 != nil }
                let digitsOnly = !body.isEmpty && body.allSatisfy { $0?.isNumber == true }
                let endsWithEOS = r.last == Vocabulary.eos && pos + 1 + body.count == r.count - 1
                let text = String(body.compactMap { $0 })
                correct = digitsOnly && endsWithEOS && text == String(problem.sum)
                if !(digitsOnly && endsWithEOS) { wellFormed = false }
                steps.append(TaskStep(end: r.count, reward: correct ? 1 : 0, correct: correct))
                answered = true
                break
            }
            var end = pos
            // A step runs to its `;`, or up to a `=` past its own (a missing `;` before the answer).
            while end < r.count, chars[end] != ";", chars[end] != "=" || end <= pos + 5 { end += 1 }
            if end < r.count, chars[end] == ";" { end += 1 }
            if end == pos { end = pos + 1 }
            let step = parseStep(chars[pos ..< end])
            if step == nil { wellFormed = false }
            let reference = carryGrading == .trueCarry ? trueCarry : (ownCarry ?? trueCarry)
            var ok = false
            if let (x, y, c, s) = step, k < n {
                ok = x == Self.digit(problem.a, k) && y == Self.digit(problem.b, k) && c == reference && s == x + y + c
            }
            if k >= n { wellFormed = false }
            steps.append(TaskStep(end: end, reward: ok ? 1 : 0, correct: ok))
            if k < n { trueCarry = (Self.digit(problem.a, k) + Self.digit(problem.b, k) + trueCarry) / 10 }
            ownCarry = step.map { $0.3 / 10 }
            k += 1
            pos = end
        }
        if !answered || k != n { wellFormed = false }
        return TaskScore(correct: correct, wellFormed: wellFormed, steps: steps)
    }

    /// Parses `x+y+c=ks;` into (x, y, c, 10k+s); nil when the step does not have that form.
    private func parseStep(_ s: ArraySlice<Character?>) -> (Int, Int, Int, Int)? {
        let c = Array(s)
        guard c.count == Self.stepLength, c[1] == "+", c[3] == "+", c[5] == "=", c[8] == ";" else { return nil }
        let d = [c[0], c[2], c[4], c[6], c[7]].compactMap { $0?.wholeNumberValue }
        guard d.count == 5, d[2] <= 1, d[3] <= 1 else { return nil }
        return (d[0], d[1], d[2], 10 * d[3] + d[4])
    }

    private func tokens(_ text: String) -> [Int32] {
        // Every character written by this task is a symbol of its vocabulary.
        text.map { (try? vocabulary.id($0)) ?? Vocabulary.pad }
    }
}
