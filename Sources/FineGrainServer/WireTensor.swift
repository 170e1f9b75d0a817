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
    /// `sources`: where tensors sent by reference live (`{"shm": ...}` in the server's shared-memory
    /// directory, `{"frame_offset": ...}` in a framed body's binary part; `TensorSources`).
    static func decode(_ v: JSONValue, field: String, rank: Int, sources: TensorSources = .none) throws -> WireTensor {
        if let o = v.objectValue {
            if o["shm"] != nil || o["frame_offset"] != nil { return try sources.decode(o, field: field, rank: rank) }
            return o["indices"] != nil ? try decodeSparse(o, field: field, rank: rank) : try decodeCompact(o, field: field, rank: rank)
        }
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

    /// The checked header of a compact tensor: dtype, shape, the base64 text and the value count.
    private static func compactHeader(_ o: [String: JSONValue], field: String, rank: Int) throws -> (dtype: String, shape: [Int], text: String, count: Int) {
        guard let dtype = o["dtype"]?.stringValue else {
            throw FineGrainError.invalidField(field: "\(field).dtype", reason: "missing or not a string")
        }
        guard let shapeJSON = o["shape"]?.arrayValue, shapeJSON.count == rank,
              let shape = Optional(shapeJSON.compactMap { $0.doubleValue.flatMap { $0 >= 0 && $0 == $0.rounded() ? Int($0) : nil } }),
              shape.count == rank else {
            throw FineGrainError.invalidField(field: "\(field).shape", reason: "must be a list of \(rank) non-negative integers")
        }
        guard let text = o["data"]?.stringValue else {
            throw FineGrainError.invalidField(field: "\(field).data", reason: "missing or not a string")
        }
        guard Self.byteSize[dtype] != nil else {
            throw FineGrainError.invalidField(field: "\(field).dtype", reason: "'\(dtype)' is not one of float32, float64, int32, int64, uint8, bool")
        }
        return (dtype, shape, text, shape.reduce(1, *))
    }

    /// `text`'s decoded length, checked against `count` values of `dtype`.
    private static func checkLength(_ u: UnsafeBufferPointer<UInt8>, dtype: String, shape: [Int], count: Int, field: String) throws -> Bool {
        guard let bytes = Base64Columns.decodedCount(u) else { return false }
        let size = Self.byteSize[dtype]!
        guard bytes == count * size else {
            throw FineGrainError.invalidField(field: "\(field).data",
                                              reason: "has \(bytes) bytes; shape \(shape) of \(dtype) needs \(count * size)")
        }
        return true
    }

    private static func notBase64(_ field: String) -> FineGrainError {
        .invalidField(field: "\(field).data", reason: "is not standard base64 (RFC 4648 alphabet, padded with =)")
    }

    static func decodeCompact(_ o: [String: JSONValue], field: String, rank: Int) throws -> WireTensor {
        var (dtype, shape, text, count) = try compactHeader(o, field: field, rank: rank)
        let decoded: [Double]? = try text.withUTF8 { u in
            guard try checkLength(u, dtype: dtype, shape: shape, count: count, field: field) else { return nil }
            return Base64Columns.decodeDoubles(u, dtype: dtype, count: count)
        }
        guard let values = decoded else { throw notBase64(field) }
        return WireTensor(shape: shape, values: values, wasCompact: true)
    }

    /// A `[B, R]` 0/1 mask as bytes. A compact uint8 / bool mask (what the Python client sends) decodes
    /// straight into the byte array; any other form goes through `decode` and is checked value by value.
    static func decodeMask(_ v: JSONValue, field: String, sources: TensorSources = .none) throws -> (shape: [Int], mask: [UInt8], wasCompact: Bool) {
        let fromValues = { (t: WireTensor) throws -> [UInt8] in
            var notBinary = false
            let bytes = t.values.withUnsafeBufferPointer { m in
                [UInt8](unsafeUninitializedCapacity: m.count) { out, n in
                    for i in 0 ..< m.count {
                        notBinary = notBinary || (m[i] != 0 && m[i] != 1)
                        out[i] = m[i] == 1 ? 1 : 0
                    }
                    n = m.count
                }
            }
            if notBinary, let i = t.values.firstIndex(where: { $0 != 0 && $0 != 1 }) {
                throw FineGrainError.invalidField(field: field, reason: "row \(i / max(t.width, 1)) column \(i % max(t.width, 1)) is \(t.values[i]); must be 0 or 1")
            }
            return bytes
        }
        if let o = v.objectValue, o["lengths"] != nil {
            let (shape, mask) = try decodeLengthsMask(o, field: field)
            return (shape, mask, true)
        }
        guard let o = v.objectValue, o["shm"] == nil, o["frame_offset"] == nil, o["dtype"]?.stringValue == "uint8" || o["dtype"]?.stringValue == "bool" else {
            let t = try decode(v, field: field, rank: 2, sources: sources)
            return (t.shape, try fromValues(t), t.wasCompact)
        }
        var (dtype, shape, text, count) = try compactHeader(o, field: field, rank: 2)
        var ok = true, largest: UInt8 = 0
        let mask = try text.withUTF8 { u in
            try [UInt8](unsafeUninitializedCapacity: count) { out, n in
                n = 0
                guard try checkLength(u, dtype: dtype, shape: shape, count: count, field: field) else { ok = false; return }
                ok = Base64Columns.decode(u) { bytes, first in
                    for k in 0 ..< bytes.count { largest |= bytes[k]; out[first &+ k] = bytes[k] }
                }
                n = ok ? count : 0
            }
        }
        guard ok else { throw notBase64(field) }
        if largest > 1, let i = mask.firstIndex(where: { $0 > 1 }) {
            let width = max(shape[1], 1)
            throw FineGrainError.invalidField(field: field, reason: "row \(i / width) column \(i % width) is \(mask[i]); must be 0 or 1")
        }
        return (shape, mask, true)
    }

    /// The index of the first NaN or infinity in `values`, if any. One branch-free pass (`x * 0` is 0 for
    /// finite x and NaN otherwise) before the search, so the common all-finite case costs one read.
    static func firstNonFinite(_ values: [Double]) -> Int? {
        let any: Bool = values.withUnsafeBufferPointer { p in
            var acc = SIMD4<Double>.zero
            var i = 0
            while i &+ 4 <= p.count {
                acc += SIMD4(p[i], p[i &+ 1], p[i &+ 2], p[i &+ 3]) * 0
                i &+= 4
            }
            var tail = 0.0
            while i < p.count { tail += p[i] * 0; i &+= 1 }
            return !(acc.sum() + tail).isFinite
        }
        return any ? values.firstIndex(where: { !$0.isFinite }) : nil
    }

    static let byteSize: [String: Int] = ["float32": 4, "float64": 8, "int32": 4, "int64": 8, "uint8": 1, "bool": 1]

    /// Widens `bytes` (whole little-endian values of `dtype`) to Doubles at `out`.
    @inline(__always)
    static func widen(_ b: UnsafeRawBufferPointer, dtype: String, into o: UnsafeMutablePointer<Double>) {
        switch dtype {
        case "float32": for k in 0 ..< b.count / 4 { o[k] = Double(Float(bitPattern: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: k &* 4, as: UInt32.self)))) }
        case "float64": for k in 0 ..< b.count / 8 { o[k] = Double(bitPattern: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: k &* 8, as: UInt64.self))) }
        case "int32": for k in 0 ..< b.count / 4 { o[k] = Double(Int32(littleEndian: b.loadUnaligned(fromByteOffset: k &* 4, as: Int32.self))) }
        case "int64": for k in 0 ..< b.count / 8 { o[k] = Double(Int64(littleEndian: b.loadUnaligned(fromByteOffset: k &* 8, as: Int64.self))) }
        default: for k in 0 ..< b.count { o[k] = Double(b[k]) }   // uint8, bool
        }
    }

    /// The checked header of a tensor sent by reference (`{"dtype", "shape", ...}`): its dtype, byte size
    /// per value, shape and value count (overflow-checked).
    static func referenceHeader(_ o: [String: JSONValue], field: String, rank: Int) throws -> (dtype: String, size: Int, shape: [Int], count: Int) {
        guard let dtype = o["dtype"]?.stringValue, let size = byteSize[dtype] else {
            throw FineGrainError.invalidField(field: "\(field).dtype", reason: "missing or not one of float32, float64, int32, int64, uint8, bool")
        }
        guard let shapeJSON = o["shape"]?.arrayValue, shapeJSON.count == rank,
              let shape = Optional(shapeJSON.compactMap { $0.doubleValue.flatMap { $0 >= 0 && $0 == $0.rounded() && $0 < 1e12 ? Int($0) : nil } }),
              shape.count == rank else {
            throw FineGrainError.invalidField(field: "\(field).shape", reason: "must be a list of \(rank) non-negative integers")
        }
        var bytes = 1, overflow = false
        for d in shape + [size] where !overflow { (bytes, overflow) = bytes.multipliedReportingOverflow(by: d) }
        guard !overflow else { throw FineGrainError.invalidField(field: "\(field).shape", reason: "\(shape) is too large") }
        return (dtype, size, shape, bytes / size)
    }

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
