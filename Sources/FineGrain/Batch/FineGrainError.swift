/// Every error FineGrain throws. Each names the field (or parameter, or method) at fault and the reason,
/// so that a CLI user, a service client or a trainer can fix the input without reading the source.
public enum FineGrainError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A field of the input is malformed: wrong length, NaN, out of range, ...
    case invalidField(field: String, reason: String)
    /// A method needs a field the input does not carry.
    case missingField(field: String, method: String)
    /// A parameter has the wrong type, an out-of-range value, or is unknown to the method.
    case invalidParameter(name: String, method: String, reason: String)
    /// No method of that kind is registered under that name.
    case unknownMethod(kind: String, name: String, known: [String])
    /// The input is well-formed but the method cannot compute on it (e.g. whitening fewer than 2 tokens).
    case unsupported(method: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidField(field, reason):
            return "invalid field '\(field)': \(reason)"
        case let .missingField(field, method):
            return "missing field '\(field)': required by '\(method)'"
        case let .invalidParameter(name, method, reason):
            return "invalid parameter '\(name)' for '\(method)': \(reason)"
        case let .unknownMethod(kind, name, known):
            return "unknown \(kind) '\(name)'; known: \(known.joined(separator: ", "))"
        case let .unsupported(method, reason):
            return "'\(method)' cannot run on this input: \(reason)"
        }
    }
}
