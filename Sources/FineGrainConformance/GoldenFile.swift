import FineGrain
import Foundation

/// One golden file in the schema of `shared/golden/README.md` (verl and paper files alike).
public struct GoldenFile: Sendable {
    public let path: String
    public let function: String
    public let module: String
    public let dtype: String
    /// verl files carry `verl_version`; paper files carry `reference`.
    public let isVerl: Bool
    public let notes: JSONValue
    public let cases: [GoldenCase]

    public var fileName: String { (path as NSString).lastPathComponent }

    public init(path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let doc = try JSONValue.parse(data)
        guard let fn = doc["function"]?.stringValue, let cs = doc["cases"]?.arrayValue else {
            throw FineGrainError.invalidField(field: "function", reason: "\(path) is not a golden file (no 'function' or 'cases')")
        }
        self.path = path
        function = fn
        module = doc["module"]?.stringValue ?? ""
        dtype = doc["dtype"]?.stringValue ?? "float64"
        isVerl = doc["verl_version"] != nil
        notes = doc["notes"] ?? .null
        cases = try cs.map(GoldenCase.init(json:))
    }
}

/// One case: inputs, params, and the reference outputs (nil = the reference raised).
public struct GoldenCase: Sendable {
    public let id: String
    public let variant: String
    public let inputs: [String: JSONValue]
    public let params: [String: JSONValue]
    public let outputs: [String: JSONValue]?

    public var isErrorCase: Bool { outputs == nil }

    init(json: JSONValue) throws {
        guard let id = json["id"]?.stringValue else {
            throw FineGrainError.invalidField(field: "cases[].id", reason: "missing")
        }
        self.id = id
        variant = json["variant"]?.stringValue ?? ""
        inputs = json["inputs"]?.objectValue ?? [:]
        params = json["params"]?.objectValue ?? [:]
        outputs = json["outputs"]?.objectValue
    }

    public init(id: String, variant: String, inputs: [String: JSONValue], params: [String: JSONValue], outputs: [String: JSONValue]?) {
        self.id = id; self.variant = variant; self.inputs = inputs; self.params = params; self.outputs = outputs
    }

    // ---- typed access for adapters; errors name the field

    public func input(_ key: String) throws -> JSONValue {
        guard let v = inputs[key] else { throw FineGrainError.missingField(field: key, method: id) }
        return v
    }
    public func hasInput(_ key: String) -> Bool { !(inputs[key]?.isNull ?? true) }
    public func matrix(_ key: String) throws -> [[Double]] { try input(key).doubleMatrix(field: key) }
    public func vector(_ key: String) throws -> [Double] { try input(key).doubles(field: key) }

    /// Group ids from an `index` input (integers or strings).
    public func groups(_ key: String = "index") throws -> [GroupID] {
        guard let a = try input(key).arrayValue else { throw FineGrainError.invalidField(field: key, reason: "expected an array") }
        return try a.map {
            if let s = $0.stringValue { return .string(s) }
            if case let .number(d) = $0, d == d.rounded() { return .int(Int(d)) }
            throw FineGrainError.invalidField(field: key, reason: "group ids must be integers or strings")
        }
    }

    /// The case's params as registry `ParamValue`s, optionally renamed and filtered.
    public func registryParams(only keys: [String]? = nil, rename: [String: String] = [:]) -> [String: ParamValue] {
        var out = [String: ParamValue]()
        for (k, v) in params {
            if let keys, !keys.contains(k) { continue }
            if let p = ParamValue(json: v) { out[rename[k] ?? k] = p }
        }
        return out
    }

    public func param(_ key: String) -> JSONValue? { params[key] }
}
