import FineGrain

/// A problem of some task, its type erased (compare with `==`; problems of different tasks differ).
public struct AnyTaskProblem: Sendable, Equatable {
    public let base: any Sendable & Equatable
    public init(_ base: any Sendable & Equatable) { self.base = base }
    public static func == (l: AnyTaskProblem, r: AnyTaskProblem) -> Bool { l.base.isEqual(to: r.base) }
}

extension Equatable {
    fileprivate func isEqual(to other: Any) -> Bool { (other as? Self) == self }
}

/// Any `VerifiableTask`, its problem type erased, so a trainer can pick a task by name at run time.
/// Passing it a problem from another task is not a crash: `prompt` returns just BOS, `score` scores 0
/// with no steps, and `demonstration` throws.
public struct AnyVerifiableTask: VerifiableTask {
    public typealias Problem = AnyTaskProblem
    public let name: String
    public let vocabulary: Vocabulary
    public let maxPromptLength: Int
    public let maxResponseLength: Int
    private let sample: @Sendable (inout SplitMix64) -> AnyTaskProblem
    private let promptOf: @Sendable (AnyTaskProblem) -> [Int32]?
    private let demo: @Sendable (AnyTaskProblem, Double, inout SplitMix64) throws -> [Int32]
    private let scoreOf: @Sendable (AnyTaskProblem, [Int32]) -> TaskScore?
    private let text: @Sendable (AnyTaskProblem) -> String?
    /// The wrapped task.
    public let base: any VerifiableTask

    public init<T: VerifiableTask>(_ task: T) {
        name = task.name
        vocabulary = task.vocabulary
        maxPromptLength = task.maxPromptLength
        maxResponseLength = task.maxResponseLength
        base = task
        sample = { AnyTaskProblem(task.sampleProblem(rng: &$0)) }
        promptOf = { p in (p.base as? T.Problem).map { task.prompt($0) } }
        let name = task.name
        demo = { p, noise, rng in
            guard let q = p.base as? T.Problem else {
                throw FineGrainError.invalidField(field: "problem", reason: "not a problem of task '\(name)'")
            }
            return try task.demonstration(q, noise: noise, rng: &rng)
        }
        scoreOf = { p, r in (p.base as? T.Problem).map { task.score($0, response: r) } }
        text = { p in (p.base as? T.Problem).map { task.describe($0) } }
    }

    public func sampleProblem(rng: inout SplitMix64) -> AnyTaskProblem { sample(&rng) }
    public func prompt(_ problem: AnyTaskProblem) -> [Int32] { promptOf(problem) ?? [Vocabulary.bos] }
    public func demonstration(_ problem: AnyTaskProblem, noise: Double, rng: inout SplitMix64) throws -> [Int32] {
        try demo(problem, noise, &rng)
    }
    public func score(_ problem: AnyTaskProblem, response: [Int32]) -> TaskScore {
        scoreOf(problem, response) ?? TaskScore(correct: false, wellFormed: false, steps: [])
    }
    public func describe(_ problem: AnyTaskProblem) -> String { text(problem) ?? "<problem of another task>" }
}

/// The tasks by name, with their parameters as strings (as a CLI passes them).
public enum TaskCatalog {
    public static let names = ["addition", "path"]

    /// `addition`: `digits` (`3` or `3-4`), `carry` (`true` | `own`). `path`: `layers`, `width`.
    /// Throws on an unknown task or parameter, or a bad value.
    public static func make(_ name: String, parameters: [String: String] = [:]) throws -> AnyVerifiableTask {
        func int(_ key: String, _ value: String) throws -> Int {
            guard let v = Int(value) else { throw FineGrainError.invalidParameter(name: key, method: name, reason: "expected an integer, got '\(value)'") }
            return v
        }
        func known(_ keys: Set<String>) throws {
            if let bad = parameters.keys.sorted().first(where: { !keys.contains($0) }) {
                throw FineGrainError.invalidParameter(name: bad, method: name, reason: "unknown; known: \(keys.sorted().joined(separator: ", "))")
            }
        }
        switch name {
        case "addition":
            try known(["digits", "carry"])
            var digits = 3 ... 4
            if let d = parameters["digits"] {
                let parts = d.split(separator: "-").map(String.init)
                guard parts.count == 1 || parts.count == 2 else {
                    throw FineGrainError.invalidParameter(name: "digits", method: name, reason: "expected N or LO-HI, got '\(d)'")
                }
                let lo = try int("digits", parts[0]), hi = try int("digits", parts.last!)
                guard lo <= hi else { throw FineGrainError.invalidParameter(name: "digits", method: name, reason: "low end above high end in '\(d)'") }
                digits = lo ... hi
            }
            var carry = AdditionTask.CarryGrading.trueCarry
            if let c = parameters["carry"] {
                guard let g = AdditionTask.CarryGrading(rawValue: c) else {
                    throw FineGrainError.invalidParameter(name: "carry", method: name, reason: "expected 'true' or 'own', got '\(c)'")
                }
                carry = g
            }
            return AnyVerifiableTask(try AdditionTask(digits: digits, carryGrading: carry))
        case "path":
            try known(["layers", "width"])
            let layers = try parameters["layers"].map { try int("layers", $0) } ?? 4
            let width = try parameters["width"].map { try int("width", $0) } ?? 3
            return AnyVerifiableTask(try PathTask(layers: layers, width: width))
        default:
            throw FineGrainError.unknownMethod(kind: "task", name: name, known: names)
        }
    }
}
