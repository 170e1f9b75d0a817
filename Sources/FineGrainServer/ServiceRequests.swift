import FineGrain
import Hummingbird
import Foundation

/// Builds request bodies the way a Python client does (tests, `finegrain-service-bench`): a ragged batch
/// padded to verl's `[B, R]` layout, each tensor in plain JSON or compact base64.
public enum ServiceRequests {
    /// `POST /v1/advantages` in the verl form: `token_level_rewards`, `response_mask`, `index` (the batch's
    /// group ids) and, where present, `values`, `old_log_probs`, `ref_log_prob`, padded to `width` columns.
    ///
    /// `encoding`: `"json"` (nested lists), `"base64"` (dense compact tensors, uint8 mask) or `"short"`: what
    /// the Python client sends by default, the lossless short forms where they are smaller (sparse rewards,
    /// a row-lengths mask; `WireShortForms`) and the answer flags `omit_returns_if_advantages` and
    /// `row_values_if_constant`. `omitReturnsIfAdvantages` sets the first flag for the other encodings.
    /// `"shm"`: the short forms, with every dense tensor written to file `name` in `sharedMemory` and sent
    /// by reference, and the answer asked into file `name + "-answer"` (both files made here; `SharedMemory`).
    public static func verlAdvantages(estimator: String, batch: RolloutBatch, width: Int, params: [String: JSONValue] = [:],
                                      encoding: String, omitReturnsIfAdvantages: Bool = false,
                                      sharedMemory: (directory: String, name: String)? = nil) throws -> Data {
        guard encoding != "framed" else { throw FineGrainError.invalidField(field: "encoding", reason: "\"framed\" bodies come from verlAdvantagesFramed") }
        return try parts(estimator: estimator, batch: batch, width: width, params: params, encoding: encoding,
                         omitReturnsIfAdvantages: omitReturnsIfAdvantages, sharedMemory: sharedMemory).header
    }

    /// A framed body (`FramedBody`): the short forms, with every dense tensor in the frame after the JSON
    /// part; `headerLength` goes in the `FineGrain-Header-Length` HTTP header.
    public static func verlAdvantagesFramed(estimator: String, batch: RolloutBatch, width: Int,
                                            params: [String: JSONValue] = [:]) throws -> (body: Data, headerLength: Int) {
        let (header, frame) = try parts(estimator: estimator, batch: batch, width: width, params: params, encoding: "framed",
                                        omitReturnsIfAdvantages: true, sharedMemory: nil)
        return (header + frame, header.count)
    }

    private static func parts(estimator: String, batch: RolloutBatch, width: Int, params: [String: JSONValue],
                              encoding: String, omitReturnsIfAdvantages: Bool,
                              sharedMemory: (directory: String, name: String)?) throws -> (header: Data, frame: Data) {
        let shm = encoding == "shm" ? sharedMemory : nil
        if encoding == "shm", shm == nil { throw FineGrainError.invalidField(field: "encoding", reason: "\"shm\" needs a shared-memory directory") }
        let framed = encoding == "framed"
        let base64 = encoding != "json", short = encoding == "short" || shm != nil || framed
        var shared = Data()   // the bytes of the tensors sent by reference (the shm file or the frame)
        let shape = JSONValue.array([.number(Double(batch.count)), .number(Double(width))])
        func padded(_ column: [Double]) -> [Double] {
            var padded = [Double](repeating: 0, count: batch.count * width)
            for r in 0 ..< batch.count {
                for (t, i) in batch.range(r).enumerated() where t < width { padded[r * width + t] = column[i] }
            }
            return padded
        }
        func tensor(_ column: [Double]) -> JSONValue {
            let p = padded(column)
            let nonZero = p.indices.filter { p[$0] != 0 }
            // Sparse when that is smaller; by reference, only when it is also small inline (one reward per row).
            if short, nonZero.count * 8 < p.count * 4, (shm == nil && !framed) || nonZero.count * 8 <= 1 << 16 {
                var idx = Data(), val = Data()
                for i in nonZero {
                    withUnsafeBytes(of: Int32(i).littleEndian) { idx.append(contentsOf: $0) }
                    withUnsafeBytes(of: Float(p[i]).bitPattern.littleEndian) { val.append(contentsOf: $0) }
                }
                return .object(["dtype": .string("float32"), "shape": shape, "indices": .string(idx.base64EncodedString()),
                                "data": .string(val.base64EncodedString())])
            }
            if shm != nil || framed {
                let offset = shared.count
                for x in p { withUnsafeBytes(of: Float(x).bitPattern.littleEndian) { shared.append(contentsOf: $0) } }
                if framed { return .object(["dtype": .string("float32"), "shape": shape, "frame_offset": .number(Double(offset))]) }
                return .object(["dtype": .string("float32"), "shape": shape, "shm": .string(shm!.name), "offset": .number(Double(offset))])
            }
            return WireTensor.encode(p, rows: batch.count, width: width, as: base64 ? .base64 : .json)
        }
        func maskTensor() -> JSONValue {
            let m = padded(batch.mask.map(Double.init))
            guard base64 else { return WireTensor.encode(m, rows: batch.count, width: width, as: .json) }
            let rows = (0 ..< batch.count).map { Array(m[$0 * width ..< ($0 + 1) * width]) }
            let lengths = rows.map { row in row.firstIndex(of: 0) ?? width }
            if short, zip(rows, lengths).allSatisfy({ row, n in row[n...].allSatisfy { $0 == 0 } }) {
                var d = Data()
                for n in lengths { withUnsafeBytes(of: Int32(n).littleEndian) { d.append(contentsOf: $0) } }
                return .object(["shape": shape, "lengths": .string(d.base64EncodedString())])
            }
            return .object(["dtype": .string("uint8"), "shape": shape, "data": .string(Data(m.map { UInt8($0) }).base64EncodedString())])
        }
        var fields: [String: JSONValue] = [
            "response_mask": maskTensor(),
            "token_level_rewards": tensor(batch.tokenReward ?? [Double](repeating: 0, count: batch.tokenCount)),
            "index": .array(batch.group.map { .string(batch.groupIDs[$0].description) }),
        ]
        if let v = batch.value { fields["values"] = tensor(v) }
        if let v = batch.oldLogprob { fields["old_log_probs"] = tensor(v) }
        if let v = batch.refLogprob { fields["ref_log_prob"] = tensor(v) }
        var doc: [String: JSONValue] = ["estimator": .string(estimator), "params": .object(params), "verl": .object(fields),
                                        "encoding": .string(base64 ? "base64" : "json")]
        if omitReturnsIfAdvantages || short { doc["omit_returns_if_advantages"] = .bool(true) }
        if short { doc["row_values_if_constant"] = .bool(true) }
        if let shm {
            let capacity = 2 * batch.count * width * 4   // advantages and returns as float32
            try shared.write(to: URL(fileURLWithPath: shm.directory + "/" + shm.name))
            try Data(count: capacity).write(to: URL(fileURLWithPath: shm.directory + "/" + shm.name + "-answer"))
            doc["answer_shm"] = .object(["name": .string(shm.name + "-answer"), "offset": .number(0), "capacity": .number(Double(capacity))])
        }
        return (try JSONValue.object(doc).serialized(), framed ? shared : Data())
    }

    /// Decodes a `[B, R]` output tensor of a response (any form the server sends, with the request's `mask`
    /// for `row_values`) to a flat C-order array.
    /// `frame`: a framed answer's binary part, for `{"frame_offset"}` tensors.
    public static func tensor(_ v: JSONValue, field: String, mask: [UInt8]? = nil, frame: ByteBuffer? = nil) throws -> (shape: [Int], values: [Double]) {
        if let o = v.objectValue, o["row_values"] != nil {
            let t = try WireTensor.decodeCompact(["dtype": o["dtype"] ?? .null, "shape": .array([o["shape"]?.arrayValue?.first ?? .null]),
                                                  "data": o["row_values"] ?? .null], field: field, rank: 1)
            guard let mask, let shape = o["shape"]?.arrayValue?.compactMap({ $0.doubleValue.map { Int($0) } }), shape.count == 2,
                  mask.count == shape[0] * shape[1] else {
                throw FineGrainError.invalidField(field: field, reason: "row_values needs the request's [B, R] mask")
            }
            let values = (0 ..< mask.count).map { i in t.values[i / shape[1]] * Double(mask[i]) }
            return (shape, values)
        }
        let t = try WireTensor.decode(v, field: field, rank: 2, sources: TensorSources(frame: frame))
        return (t.shape, t.values)
    }
}

/// The server's work without the socket, for `finegrain-service-bench`'s round-trip ratio.
public enum InProcessService {
    /// Parse the JSON body, decode the batch and compute the advantages (no answer encoding): what the
    /// issue's "decoding plus computing" means. Returns the token count.
    /// `sharedMemory`: the directory of `{"shm": ...}` references, as `finegrain serve --shm-dir` has it.
    /// `headerLength`: the body is framed (`FramedBody`) with a JSON part this long.
    public static func decodeAndComputeAdvantages(_ body: ByteBuffer, sharedMemory: String? = nil, headerLength: Int? = nil) throws -> Int {
        let json = headerLength.map { body.getSlice(at: body.readerIndex, length: $0)! } ?? body
        let frame = headerLength.map { body.getSlice(at: body.readerIndex + $0, length: body.readableBytes - $0)! }
        guard let o = try json.withUnsafeReadableBytes({ try JSONValue.parse(bytes: $0) }).objectValue else { throw FineGrainError.invalidField(field: "body", reason: "not an object") }
        let name = o["estimator"]?.stringValue ?? ""
        let params = try Endpoints.decodeParams(o["params"])
        if let fields = o["verl"]?.objectValue {
            let (batch, _, _) = try VerlEndpoint.decodeBatch(fields, sources: TensorSources(shared: sharedMemory.map(SharedMemory.init), frame: frame))
            return try Registry.advantages(name, batch: batch, params: params).advantages.count
        }
        let (_, _, _, doc) = try Endpoints.decode(o, methodField: "estimator")
        return try Registry.advantages(name, batch: doc.batch, params: params).advantages.count
    }

    /// The whole server-side pipeline of `POST /v1/advantages`: parse, decode, compute, encode the answer.
    public static func advantagesRoute(_ body: ByteBuffer, sharedMemory: String? = nil, headerLength: Int? = nil) -> (status: Int, answer: ByteBuffer) {
        let shared = sharedMemory.map(SharedMemory.init)
        let outcome = headerLength.map { FramedBody.advantages(body, headerLength: $0, shared: shared) }
            ?? FineGrainService.compute(body, FineGrainService.advantagesWork(shared))
        return (Int(outcome.status.code), outcome.body)
    }
}
