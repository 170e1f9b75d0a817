/// A parameter value: what the CLI's `--param key=value`, a service request's `params` object and a golden
/// file's `params` all decode into.
public enum ParamValue: Sendable, Equatable, CustomStringConvertible {
    case number(Double)
    case bool(Bool)
    case string(String)
    case null

    public var description: String {
        switch self {
        case let .number(d): return d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)
        case let .bool(b): return String(b)
        case let .string(s): return s
        case .null: return "null"
        }
    }

    /// Parses a command-line value: `true`/`false`, `null`, a number, or else a string.
    public init(parsing text: String) {
        switch text.lowercased() {
        case "true": self = .bool(true)
        case "false": self = .bool(false)
        case "null": self = .null  // not "none": several methods take the string "none" (prime_norm, scale_rewards)
        default: self = Double(text).map(ParamValue.number) ?? .string(text)
        }
    }

    public init?(json: JSONValue) {
        switch json {
        case let .number(d): self = .number(d)
        case let .bool(b): self = .bool(b)
        case let .string(s): self = .string(s)
        case .null: self = .null
        default: return nil
        }
    }

    public var json: JSONValue {
        switch self {
        case let .number(d): return .number(d)
        case let .bool(b): return .bool(b)
        case let .string(s): return .string(s)
        case .null: return .null
        }
    }
}

/// The type a method declares for one of its parameters.
public enum ParamKind: String, Sendable {
    case number, integer, bool, string
}

/// One declared parameter: name, type, default (`.null` = optional, no default), one-line doc,
/// and for string parameters the allowed choices.
public struct ParamSpec: Sendable {
    public let name: String
    public let kind: ParamKind
    public let defaultValue: ParamValue
    public let doc: String
    public let choices: [String]

    public init(_ name: String, _ kind: ParamKind, _ defaultValue: ParamValue, _ doc: String, choices: [String] = []) {
        self.name = name; self.kind = kind; self.defaultValue = defaultValue; self.doc = doc; self.choices = choices
    }

    public static func number(_ name: String, _ value: Double?, _ doc: String) -> ParamSpec {
        ParamSpec(name, .number, value.map(ParamValue.number) ?? .null, doc)
    }
    public static func integer(_ name: String, _ value: Int?, _ doc: String) -> ParamSpec {
        ParamSpec(name, .integer, value.map { .number(Double($0)) } ?? .null, doc)
    }
    public static func bool(_ name: String, _ value: Bool, _ doc: String) -> ParamSpec {
        ParamSpec(name, .bool, .bool(value), doc)
    }
    public static func string(_ name: String, _ value: String?, _ doc: String, choices: [String] = []) -> ParamSpec {
        ParamSpec(name, .string, value.map(ParamValue.string) ?? .null, doc, choices: choices)
    }
}

/// Validated parameters of one method call: every key is declared, every value has its declared type,
/// every missing key holds its default. Built by `Params.resolve`; read with the typed accessors.
public struct Params: Sendable {
    public let method: String
    private var values: [String: ParamValue]

    /// Checks `given` against `specs` and fills defaults. Unknown keys and wrong types throw, naming the key.
    public static func resolve(_ given: [String: ParamValue], specs: [ParamSpec], method: String) throws -> Params {
        var out = [String: ParamValue]()
        let known = Dictionary(uniqueKeysWithValues: specs.map { ($0.name, $0) })
        for key in given.keys.sorted() where known[key] == nil {
            let names = specs.map(\.name).joined(separator: ", ")
            throw FineGrainError.invalidParameter(name: key, method: method,
                reason: "unknown parameter (accepted: \(names.isEmpty ? "none" : names))")
        }
        for spec in specs {
            let v = given[spec.name] ?? spec.defaultValue
            out[spec.name] = try check(v, spec, method: method)
        }
        return Params(method: method, values: out)
    }

    private static func check(_ v: ParamValue, _ spec: ParamSpec, method: String) throws -> ParamValue {
        func bad(_ reason: String) -> FineGrainError { .invalidParameter(name: spec.name, method: method, reason: reason) }
        switch (spec.kind, v) {
        case (_, .null): return .null
        case let (.number, .number(d)):
            guard !d.isNaN else { throw bad("is NaN") }
            return v
        case let (.integer, .number(d)):
            guard d.isFinite, d == d.rounded() else { throw bad("expected an integer, got \(d)") }
            return v
        case (.bool, .bool): return v
        case let (.bool, .number(d)) where d == 0 || d == 1: return .bool(d == 1)
        case let (.string, .string(s)):
            if !spec.choices.isEmpty && !spec.choices.contains(s) {
                throw bad("'\(s)' is not one of \(spec.choices.joined(separator: ", "))")
            }
            return v
        default:
            throw bad("expected \(spec.kind.rawValue), got '\(v)'")
        }
    }

    /// Parameters with no declared specs (internal use, e.g. composing methods).
    public init(method: String, values: [String: ParamValue]) { self.method = method; self.values = values }

    public func value(_ key: String) -> ParamValue { values[key] ?? .null }

    public func isSet(_ key: String) -> Bool { if case .null = value(key) { return false }; return true }

    public func double(_ key: String) throws -> Double {
        guard case let .number(d) = value(key) else {
            throw FineGrainError.invalidParameter(name: key, method: method, reason: "required number is not set")
        }
        return d
    }
    public func optionalDouble(_ key: String) -> Double? { if case let .number(d) = value(key) { return d }; return nil }
    public func int(_ key: String) throws -> Int { Int(try double(key)) }
    public func optionalInt(_ key: String) -> Int? { optionalDouble(key).map { Int($0) } }
    public func bool(_ key: String) throws -> Bool {
        guard case let .bool(b) = value(key) else {
            throw FineGrainError.invalidParameter(name: key, method: method, reason: "required bool is not set")
        }
        return b
    }
    public func string(_ key: String) throws -> String {
        guard case let .string(s) = value(key) else {
            throw FineGrainError.invalidParameter(name: key, method: method, reason: "required string is not set")
        }
        return s
    }
    public func optionalString(_ key: String) -> String? { if case let .string(s) = value(key) { return s }; return nil }

    /// Throws unless `check` holds, naming the parameter.
    public func require(_ key: String, _ ok: Bool, _ reason: String) throws {
        if !ok { throw FineGrainError.invalidParameter(name: key, method: method, reason: reason) }
    }
}
