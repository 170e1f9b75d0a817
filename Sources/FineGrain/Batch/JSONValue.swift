import Foundation

/// A JSON document as a plain enum. Used at the boundaries only (rollout JSONL, golden files, parameters);
/// hot loops never see it. Non-finite numbers are read from and written as the strings
/// "NaN", "Infinity", "-Infinity" (the golden-file convention).
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
}

extension JSONValue: Codable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let d = try? c.decode(Double.self) { self = .number(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSONValue].self) { self = .array(a); return }
        if let o = try? c.decode([String: JSONValue].self) { self = .object(o); return }
        throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a JSON value")
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case let .bool(b): try c.encode(b)
        case let .number(d):
            if d.isNaN { try c.encode("NaN") }
            else if d == .infinity { try c.encode("Infinity") }
            else if d == -.infinity { try c.encode("-Infinity") }
            else { try c.encode(d) }
        case let .string(s): try c.encode(s)
        case let .array(a): try c.encode(a)
        case let .object(o): try c.encode(o)
        }
    }
}

extension JSONValue {
    /// Parses one JSON document (`JSONText`'s byte-level reader).
    public static func parse(_ data: Data) throws -> JSONValue {
        try JSONText.parse(data)
    }

    /// Parses one JSON document straight from bytes (a server's receive buffer: no copy into `Data`).
    public static func parse(bytes: UnsafeRawBufferPointer) throws -> JSONValue {
        try JSONText.parse(bytes: bytes)
    }

    /// Serialises compactly with sorted keys (stable output for tests and diffs).
    public func serialized() throws -> Data {
        JSONText.serialize(self)
    }

    public var isNull: Bool { if case .null = self { return true }; return false }

    /// A number, accepting the golden files' "NaN" / "Infinity" / "-Infinity" strings.
    public var doubleValue: Double? {
        switch self {
        case let .number(d): return d
        case let .bool(b): return b ? 1 : 0
        case let .string(s):
            switch s {
            case "NaN", "nan": return .nan
            case "Infinity", "inf": return .infinity
            case "-Infinity", "-inf": return -.infinity
            default: return nil
            }
        default: return nil
        }
    }

    public var boolValue: Bool? { if case let .bool(b) = self { return b }; return nil }
    public var stringValue: String? { if case let .string(s) = self { return s }; return nil }
    public var arrayValue: [JSONValue]? { if case let .array(a) = self { return a }; return nil }
    public var objectValue: [String: JSONValue]? { if case let .object(o) = self { return o }; return nil }

    public subscript(key: String) -> JSONValue? { objectValue?[key] }

    /// `[Double]` from a JSON array of numbers; `field` names it in the error.
    public func doubles(field: String) throws -> [Double] {
        guard let a = arrayValue else { throw FineGrainError.invalidField(field: field, reason: "expected an array of numbers") }
        var out = [Double](); out.reserveCapacity(a.count)
        for (i, v) in a.enumerated() {
            guard let d = v.doubleValue else {
                throw FineGrainError.invalidField(field: field, reason: "element \(i) is not a number")
            }
            out.append(d)
        }
        return out
    }

    /// `[[Double]]` from a JSON array of arrays of numbers.
    public func doubleMatrix(field: String) throws -> [[Double]] {
        guard let a = arrayValue else { throw FineGrainError.invalidField(field: field, reason: "expected an array of arrays") }
        return try a.enumerated().map { try $0.element.doubles(field: "\(field)[\($0.offset)]") }
    }

    /// JSON array of numbers from doubles.
    public static func numbers(_ xs: [Double]) -> JSONValue { .array(xs.map { .number($0) }) }
}
