import FineGrain
import Foundation

/// Elementwise tolerance `|got - want| <= atol + rtol * |want|`, NaN equal to NaN.
public struct Tolerance: Sendable {
    public let rtol: Double
    public let atol: Double
    public init(rtol: Double, atol: Double) { self.rtol = rtol; self.atol = atol }
    /// Double port against float64 references.
    public static let float64 = Tolerance(rtol: 1e-9, atol: 1e-10)
    /// Double port against references that computed in float32 internally.
    public static let float32Reference = Tolerance(rtol: 1e-5, atol: 1e-6)
}

/// Runs one golden function through FineGrain's implementation.
///
/// `run` decodes the case's inputs and params, calls the library (through the registry wherever the
/// function is a registered method) and returns outputs keyed like the file's `outputs`. For error cases it
/// must throw. `tolerance` may relax specific output keys (e.g. a float32 part of a paper file);
/// `compareOnlyWhereMask` lists outputs that verl leaves unzeroed at masked positions, mapped to the input
/// mask that selects the positions to compare.
public struct ConformanceAdapter: Sendable {
    public let function: String
    public let run: @Sendable (GoldenCase) throws -> [String: JSONValue]
    public let tolerance: @Sendable (_ outputKey: String, _ file: GoldenFile) -> Tolerance?
    public let compareOnlyWhereMask: [String: String]

    public init(_ function: String,
                compareOnlyWhereMask: [String: String] = [:],
                tolerance: @escaping @Sendable (String, GoldenFile) -> Tolerance? = { _, _ in nil },
                run: @escaping @Sendable (GoldenCase) throws -> [String: JSONValue]) {
        self.function = function; self.run = run; self.tolerance = tolerance
        self.compareOnlyWhereMask = compareOnlyWhereMask
    }
}

/// The result of one file.
public struct FileResult: Sendable {
    public let file: String
    public let function: String
    public let passed: Int
    public let total: Int
    public let maxAbsError: Double
    /// id and reason of the first failing case.
    public let firstFailure: (id: String, reason: String)?
    public let unknownFunction: Bool

    public var ok: Bool { !unknownFunction && passed == total }

    /// The line `finegrain conformance` prints (DESIGN.md "Contracts", item 2).
    public var line: String {
        if unknownFunction { return "FAIL \(file) 0/\(total) unknown function '\(function)'" }
        let err = String(format: "%.1e", maxAbsError)
        if let f = firstFailure { return "FAIL \(file) \(passed)/\(total) first_failure=\(f.id) \(f.reason)" }
        return "PASS \(file) \(passed)/\(total) max_abs_err=\(err)"
    }
}

public enum Conformance {
    /// Every adapter, keyed by the golden file's `function`.
    public static let adapters: [String: ConformanceAdapter] = {
        var out = [String: ConformanceAdapter]()
        let groups: [[ConformanceAdapter]] = [
            creditAdapters, lossAdapters, statsAdapters,
            segmentRMAdapters, fineGrainedRLHFAdapters, rtoAdapters,
            tempoAdapters, hapoAdvantageAdapters, dtpoAdvantageAdapters,
            pureAdapters, primeAdapters, spoAdapters,
        ]
        for a in groups.joined() {
            precondition(out[a.function] == nil, "two conformance adapters for \(a.function)")
            out[a.function] = a
        }
        return out
    }()

    /// The adapter of a file: keyed `"<module>::<function>"` where two references share a function name (the PURE
    /// verl branch's `compute_rloo_outcome_advantage`), else by `function`.
    public static func adapter(for file: GoldenFile) -> ConformanceAdapter? {
        adapters["\(file.module)::\(file.function)"] ?? adapters[file.function]
    }

    /// Default tolerance of a file for a Double port (golden/README.md, "Tolerance").
    public static func defaultTolerance(_ file: GoldenFile) -> Tolerance {
        if file.function == "compute_grpo_vectorized_outcome_advantage" { return .float32Reference }
        if file.dtype != "float64" && file.dtype.hasPrefix("float32") { return .float32Reference }
        return .float64
    }

    /// Runs every case of one file.
    public static func run(file: GoldenFile) -> FileResult {
        guard let adapter = adapter(for: file) else {
            return FileResult(file: file.fileName, function: file.function, passed: 0, total: file.cases.count,
                              maxAbsError: 0, firstFailure: nil, unknownFunction: true)
        }
        var passed = 0, maxErr = 0.0
        var first: (String, String)?
        for c in file.cases {
            switch check(c, adapter: adapter, file: file) {
            case let .success(err):
                passed += 1; maxErr = max(maxErr, err)
            case let .failure(reason):
                if first == nil { first = (c.id, reason.text) }
            }
        }
        return FileResult(file: file.fileName, function: file.function, passed: passed, total: file.cases.count,
                          maxAbsError: maxErr, firstFailure: first, unknownFunction: false)
    }

    public struct Mismatch: Error { public let text: String }

    /// Checks one case; success carries the max absolute error over compared numbers.
    public static func check(_ c: GoldenCase, adapter: ConformanceAdapter, file: GoldenFile) -> Result<Double, Mismatch> {
        let got: [String: JSONValue]
        do {
            got = try adapter.run(c)
        } catch {
            if c.isErrorCase { return .success(0) }
            return .failure(Mismatch(text: "threw: \(error)"))
        }
        guard let want = c.outputs else {
            return .failure(Mismatch(text: "reference raised but FineGrain returned a result (expected an error)"))
        }
        var maxErr = 0.0
        for key in want.keys.sorted() {
            guard let g = got[key] else { return .failure(Mismatch(text: "output '\(key)' not produced")) }
            let tol = adapter.tolerance(key, file) ?? defaultTolerance(file)
            var mask: JSONValue?
            if let mk = adapter.compareOnlyWhereMask[key] { mask = c.inputs[mk] }
            var path = key
            do {
                try compare(g, want[key]!, mask: mask, tol: tol, path: &path, maxErr: &maxErr)
            } catch let m as Mismatch {
                return .failure(m)
            } catch {
                return .failure(Mismatch(text: "\(error)"))
            }
        }
        return .success(maxErr)
    }

    /// Recursive elementwise comparison; `mask` (same shape, 0/1) skips positions where it is 0.
    static func compare(_ got: JSONValue, _ want: JSONValue, mask: JSONValue?, tol: Tolerance,
                        path: inout String, maxErr: inout Double) throws {
        if let m = mask?.doubleValue, m == 0 { return }
        switch want {
        case .null:
            guard got.isNull else { throw Mismatch(text: "\(path): want null, got \(got)") }
        case let .array(wa):
            guard let ga = got.arrayValue else { throw Mismatch(text: "\(path): want an array, got \(got)") }
            guard ga.count == wa.count else { throw Mismatch(text: "\(path): length \(ga.count), want \(wa.count)") }
            let ma = mask?.arrayValue
            for i in 0 ..< wa.count {
                var p = path + "[\(i)]"
                try compare(ga[i], wa[i], mask: ma.flatMap { i < $0.count ? $0[i] : nil }, tol: tol, path: &p, maxErr: &maxErr)
            }
        case let .object(wo):
            guard let go = got.objectValue else { throw Mismatch(text: "\(path): want an object") }
            for k in wo.keys.sorted() {
                guard let gv = go[k] else { throw Mismatch(text: "\(path).\(k) missing") }
                var p = path + ".\(k)"
                try compare(gv, wo[k]!, mask: nil, tol: tol, path: &p, maxErr: &maxErr)
            }
        case .bool, .string where want.doubleValue == nil:
            guard got == want else { throw Mismatch(text: "\(path): got \(got), want \(want)") }
        default:
            guard let w = want.doubleValue else { throw Mismatch(text: "\(path): unreadable reference \(want)") }
            guard let g = got.doubleValue else { throw Mismatch(text: "\(path): got \(got), want \(w)") }
            if w.isNaN || g.isNaN {
                guard w.isNaN && g.isNaN else { throw Mismatch(text: "\(path): got \(g), want \(w)") }
                return
            }
            if w.isInfinite || g.isInfinite {
                guard w == g else { throw Mismatch(text: "\(path): got \(g), want \(w)") }
                return
            }
            let err = abs(g - w)
            guard err <= tol.atol + tol.rtol * abs(w) else {
                throw Mismatch(text: "\(path): got \(g), want \(w) (abs err \(String(format: "%.2e", err)))")
            }
            maxErr = max(maxErr, err)
        }
    }
}

// MARK: - Helpers shared by adapters

extension JSONValue {
    /// `[[Double]]` -> JSON.
    public static func matrix(_ m: [[Double]]) -> JSONValue { .array(m.map { .numbers($0) }) }
}
