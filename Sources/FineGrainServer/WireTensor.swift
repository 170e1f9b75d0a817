import ExtrasBase64
import FineGrain
import Foundation

/// A dense tensor on the wire, in one of two encodings:
///
/// - plain JSON: nested lists, `[[...], ...]` for `[B, R]`, `[...]` for `[B]`;
/// - compact: `{"dtype": "float32", "shape": [B, R], "data": "<base64>"}`, the C-order little-endian bytes
///   of the array in standard base64. dtypes: float32, float64, int32, int64, uint8, bool.
///
/// The compact form exists because at 256 x 1024 tokens parsing ~260 k JSON numbers per column costs
/// more than computing any estimator; base64 float32 is 5.3 bytes per token and decodes at memory speed.
/// Values are widened to Double (the library's column type) on the way in.
struct WireTensor {
    var shape: [Int]
    var values: [Double]   // [product(shape)], C order
    /// True when the request sent this tensor in the compact form (the response then answers in kind).
    var wasCompact: Bool

    var rows: Int { shape.first ?? 0 }
    var width: Int { shape.count > 1 ? shape[1] : 1 }

    enum Encoding: String { case json, base64 }

    /// Decodes field `field` (named in every error) from either encoding; `rank` is 1 or 2.
    static func decode(_ v: JSONValue, field: String, rank: Int) throws -> WireTensor {
        if let o = v.objectValue { return try decodeCompact(o, field: field, rank: rank) }
        guard let outer = v.arrayValue else {
            throw FineGrainError.invalidField(field: field, reason: "must be nested JSON lists or {\"dtype\", \"shape\", \"data\"}")
        }
        if rank == 1 {
            return WireTensor(shape: [outer.count], values: try v.doubles(field: field), wasCompact: false)
        }
        let width = outer.first?.arrayValue?.count ?? 0
        var values = [Double](); values.reserveCapacity(outer.count * width)
        for (i, row) in outer.enumerated() {
            guard let items = row.arrayValue else {
                throw FineGrainError.invalidField(field: "\(field)[\(i)]", reason: "is not a list (expected shape [B, R])")
            }
            guard items.count == width else {
                throw FineGrainError.invalidField(field: field, reason: "row \(i) has \(items.count) columns, row 0 has \(width)")
            }
            values.append(contentsOf: try row.doubles(field: "\(field)[\(i)]"))
        }
        return WireTensor(shape: [outer.count, width], values: values, wasCompact: false)
    }

    private static func decodeCompact(_ o: [String: JSONValue], field: String, rank: Int) throws -> WireTensor {
        guard let dtype = o["dtype"]?.stringValue else {
            throw FineGrainError.invalidField(field: "\(field).dtype", reason: "missing or not a string")
        }
        guard let shapeJSON = o["shape"]?.arrayValue, shapeJSON.count == rank,
              let shape = Optional(shapeJSON.compactMap { $0.doubleValue.flatMap { $0 >= 0 && $0 == $0.rounded() ? Int($0) : nil } }),
              shape.count == rank else {
            throw FineGrainError.invalidField(field: "\(field).shape", reason: "must be a list of \(rank) non-negative integers")
        }
        guard let text = o["data"]?.stringValue, let data = try? Base64.decode(string: text) else {
            throw FineGrainError.invalidField(field: "\(field).data", reason: "missing or not standard base64")
        }
        let count = shape.reduce(1, *)
        guard let size = Self.byteSize[dtype] else {
            throw FineGrainError.invalidField(field: "\(field).dtype", reason: "'\(dtype)' is not one of float32, float64, int32, int64, uint8, bool")
        }
        guard data.count == count * size else {
            throw FineGrainError.invalidField(field: "\(field).data",
                                              reason: "has \(data.count) bytes; shape \(shape) of \(dtype) needs \(count * size)")
        }
        var values = [Double](repeating: 0, count: count)
        values.withUnsafeMutableBufferPointer { out in
            data.withUnsafeBytes { raw in
                switch dtype {
                case "float32": for i in 0 ..< count { out[i] = Double(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self)))) }
                case "float64": for i in 0 ..< count { out[i] = Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i &* 8, as: UInt64.self))) }
                case "int32": for i in 0 ..< count { out[i] = Double(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: i &* 4, as: Int32.self))) }
                case "int64": for i in 0 ..< count { out[i] = Double(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: i &* 8, as: Int64.self))) }
                default: for i in 0 ..< count { out[i] = Double(raw[i]) }   // uint8, bool
                }
            }
        }
        return WireTensor(shape: shape, values: values, wasCompact: true)
    }

    private static let byteSize: [String: Int] = ["float32": 4, "float64": 8, "int32": 4, "int64": 8, "uint8": 1, "bool": 1]

    /// Encodes `values` (`[rows * width]`, C order) as float32 in the chosen encoding.
    static func encode(_ values: [Double], rows: Int, width: Int, as encoding: Encoding) -> JSONValue {
        switch encoding {
        case .json:
            return .array((0 ..< rows).map { r in .numbers(Array(values[r * width ..< (r + 1) * width])) })
        case .base64:
            var bytes = [UInt8](repeating: 0, count: values.count * 4)
            bytes.withUnsafeMutableBytes { raw in
                for i in 0 ..< values.count {
                    raw.storeBytes(of: Float(values[i]).bitPattern.littleEndian, toByteOffset: i &* 4, as: UInt32.self)
                }
            }
            return .object(["dtype": .string("float32"), "shape": .array([.number(Double(rows)), .number(Double(width))]),
                            "data": .string(Base64.encodeToString(bytes: bytes))])
        }
    }
}
