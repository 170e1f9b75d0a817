import FineGrain
import NIOCore

/// Lossless short forms of the compact encoding for what verl batches usually hold. At 256 x 1024 the
/// dense compact form still moves ~5.3 bytes per token each way, and on loopback that transfer, not the
/// estimator, is most of a round trip; these forms make it proportional to what the tensor really holds:
///
/// - sparse (request): `{"dtype": D, "shape": [B, R], "indices": "<base64 int32>", "data": "<base64 D>"}`:
///   the listed C-order flat indices (strictly increasing; `"indices_dtype": "int64"` allowed) hold the
///   values, every other entry is 0. Outcome rewards (one non-zero per row) take 8 bytes a row.
/// - lengths (request, `response_mask` only): `{"shape": [B, R], "lengths": "<base64 int32 [B]>"}`: row r
///   is 1 on columns `0 ..< lengths[r]` and 0 after, verl's usual right-padded mask.
/// - row values (answer, when the request sets `"row_values_if_constant": true`):
///   `{"dtype": "float32", "shape": [B, R], "row_values": "<base64 float32 [B]>"}` means entry [r, t] is
///   `row_values[r] * response_mask[r, t]`. Sent only when that reproduces every float32 entry exactly,
///   which is what outcome estimators (GRPO, RLOO, REINFORCE++ baseline, ...) compute in verl:
///   a per-row score broadcast over the mask. The client expands it with the mask it sent.
///
/// The Python client picks these forms automatically when they are exact and smaller.
extension WireTensor {
    static func decodeSparse(_ o: [String: JSONValue], field: String, rank: Int) throws -> WireTensor {
        let dense = try denseHeader(o, field: field, rank: rank)
        let count = dense.shape.reduce(1, *)
        let indices = try integers(o["indices"], dtype: o["indices_dtype"]?.stringValue ?? "int32", field: "\(field).indices")
        // One value per index: the length check of the dense decode names a mismatch.
        var values = try decodeCompact(["dtype": o["dtype"] ?? .null, "shape": .array([.number(Double(indices.count))]),
                                        "data": o["data"] ?? .null], field: field, rank: 1).values
        var out = [Double](repeating: 0, count: count)
        var previous = -1
        for (k, i) in indices.enumerated() {
            guard i > previous, i < count else {
                throw FineGrainError.invalidField(field: "\(field).indices",
                                                  reason: "entry \(k) is \(i); indices must be strictly increasing and below \(count) (shape \(dense.shape))")
            }
            out[i] = values[k]
            previous = i
        }
        values = out
        return WireTensor(shape: dense.shape, values: values, wasCompact: true)
    }

    /// `response_mask` as row lengths: `[B]` int32 (or `"lengths_dtype": "int64"`), each in `0 ... R`.
    static func decodeLengthsMask(_ o: [String: JSONValue], field: String) throws -> (shape: [Int], mask: [UInt8]) {
        let shape = try denseHeader(o, field: field, rank: 2).shape
        let lengths = try integers(o["lengths"], dtype: o["lengths_dtype"]?.stringValue ?? "int32", field: "\(field).lengths")
        let (b, r) = (shape[0], shape[1])
        guard lengths.count == b else {
            throw FineGrainError.invalidField(field: "\(field).lengths", reason: "has \(lengths.count) entries for \(b) rows")
        }
        var mask = [UInt8](repeating: 0, count: b * r)
        for (row, n) in lengths.enumerated() {
            guard n >= 0, n <= r else {
                throw FineGrainError.invalidField(field: "\(field).lengths", reason: "row \(row) is \(n); must be in 0 ... \(r)")
            }
            mask.withUnsafeMutableBufferPointer { m in
                for t in 0 ..< n { m[row &* r &+ t] = 1 }
            }
        }
        return (shape, mask)
    }

    /// The `shape` of a short form (no `data` needed).
    private static func denseHeader(_ o: [String: JSONValue], field: String, rank: Int) throws -> (shape: [Int], Void) {
        guard let shapeJSON = o["shape"]?.arrayValue, shapeJSON.count == rank,
              let shape = Optional(shapeJSON.compactMap { $0.doubleValue.flatMap { $0 >= 0 && $0 == $0.rounded() ? Int($0) : nil } }),
              shape.count == rank else {
            throw FineGrainError.invalidField(field: "\(field).shape", reason: "must be a list of \(rank) non-negative integers")
        }
        return (shape, ())
    }

    /// A base64 int32 / int64 vector.
    private static func integers(_ v: JSONValue?, dtype: String, field: String) throws -> [Int] {
        guard dtype == "int32" || dtype == "int64" else {
            throw FineGrainError.invalidField(field: "\(field)_dtype", reason: "'\(dtype)' must be int32 or int64")
        }
        guard var text = v?.stringValue else { throw FineGrainError.invalidField(field: field, reason: "missing or not a base64 string") }
        let size = dtype == "int32" ? 4 : 8
        let values: [Double]? = text.withUTF8 { u in
            guard let bytes = Base64Columns.decodedCount(u), bytes % size == 0 else { return nil }
            return Base64Columns.decodeDoubles(u, dtype: dtype, count: bytes / size)
        }
        guard let values else {
            throw FineGrainError.invalidField(field: field, reason: "is not standard base64 of whole \(dtype) values")
        }
        return values.map { Int($0) }
    }

    // MARK: answer

    /// `values` as `row_values` when every row is one float32 value times `mask` (see above), else nil.
    static func rowValues(_ values: [Double], mask: [UInt8], rows: Int, width: Int) -> [Double]? {
        guard values.count == rows &* width, mask.count == values.count else { return nil }
        var out = [Double](repeating: 0, count: rows)
        let exact: Bool = values.withUnsafeBufferPointer { v in
            mask.withUnsafeBufferPointer { m in
                for r in 0 ..< rows {
                    let base = r &* width
                    var t0 = 0
                    while t0 < width, m[base &+ t0] == 0 { t0 &+= 1 }
                    let d = t0 < width ? v[base &+ t0] : 0
                    // Fast test on the Doubles (what an outcome estimator writes: one score broadcast over
                    // the mask): masked entries carry d's exact bits, padded ones are +-0. Branch-free.
                    let db = d.bitPattern
                    var diff: UInt64 = 0
                    for t in 0 ..< width {
                        let xb = v[base &+ t].bitPattern
                        diff |= m[base &+ t] != 0 ? (xb ^ db) : (xb << 1)
                    }
                    let f = Float(d)
                    if diff != 0 {
                        // Equal as float32 is enough (that is what the dense answer carries).
                        var bad = false
                        for t in 0 ..< width {
                            let x = Float(v[base &+ t])
                            bad = bad || (m[base &+ t] != 0 ? x.bitPattern != f.bitPattern : x != 0)
                        }
                        if bad { return false }
                    }
                    out[r] = Double(f)
                }
                return true
            }
        }
        return exact ? out : nil
    }

    /// Writes `{"dtype": "float32", "row_values": "<base64>", "shape": [rows, width]}`.
    static func writeRowValues(_ rowValues: [Double], rows: Int, width: Int, to buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"dtype":"float32","row_values":"#)
        rowValues.withUnsafeBufferPointer { Base64Columns.appendFloat32String($0, to: &buffer) }
        buffer.writeString(#","shape":[\#(rows),\#(width)]}"#)
    }
}
