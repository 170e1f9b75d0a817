import FineGrain
import Hummingbird
import Foundation

/// Builds request bodies the way a Python client does (tests, `finegrain-service-bench`): a ragged batch
/// padded to verl's `[B, R]` layout, each tensor in plain JSON or compact base64.
public enum ServiceRequests {
    /// `POST /v1/advantages` in the verl form: `token_level_rewards`, `response_mask`, `index` (the batch's
    /// group ids) and, where present, `values`, `old_log_probs`, `ref_log_prob`, padded to `width` columns.
    public static func verlAdvantages(estimator: String, batch: RolloutBatch, width: Int, params: [String: JSONValue] = [:],
                                      encoding: String) throws -> Data {
        let base64 = encoding == "base64"
        func tensor(_ column: [Double], int: Bool = false) -> JSONValue {
            var padded = [Double](repeating: 0, count: batch.count * width)
            for r in 0 ..< batch.count {
                for (t, i) in batch.range(r).enumerated() where t < width { padded[r * width + t] = column[i] }
            }
            if !base64 { return WireTensor.encode(padded, rows: batch.count, width: width, as: .json) }
            if !int { return WireTensor.encode(padded, rows: batch.count, width: width, as: .base64) }
            var bytes = Data(count: padded.count * 4)
            bytes.withUnsafeMutableBytes { raw in
                for i in 0 ..< padded.count { raw.storeBytes(of: Int32(padded[i]).littleEndian, toByteOffset: i * 4, as: Int32.self) }
            }
            return .object(["dtype": .string("int32"), "shape": .array([.number(Double(batch.count)), .number(Double(width))]),
                            "data": .string(bytes.base64EncodedString())])
        }
        var fields: [String: JSONValue] = [
            "response_mask": tensor(batch.mask.map(Double.init), int: true),
            "token_level_rewards": tensor(batch.tokenReward ?? [Double](repeating: 0, count: batch.tokenCount)),
            "index": .array(batch.group.map { .string(batch.groupIDs[$0].description) }),
        ]
        if let v = batch.value { fields["values"] = tensor(v) }
        if let v = batch.oldLogprob { fields["old_log_probs"] = tensor(v) }
        if let v = batch.refLogprob { fields["ref_log_prob"] = tensor(v) }
        return try JSONValue.object(["estimator": .string(estimator), "params": .object(params), "verl": .object(fields),
                                     "encoding": .string(encoding)]).serialized()
    }

    /// Decodes a `[B, R]` output tensor of a response (either encoding) to a flat C-order array.
    public static func tensor(_ v: JSONValue, field: String) throws -> (shape: [Int], values: [Double]) {
        let t = try WireTensor.decode(v, field: field, rank: 2)
        return (t.shape, t.values)
    }
}

/// The server's work without the socket, for `finegrain-service-bench`'s round-trip ratio.
public enum InProcessService {
    /// Parse the JSON body, decode the batch and compute the advantages (no answer encoding): what the
    /// issue's "decoding plus computing" means. Returns the token count.
    public static func decodeAndComputeAdvantages(_ body: Data) throws -> Int {
        guard let o = try JSONValue.parse(body).objectValue else { throw FineGrainError.invalidField(field: "body", reason: "not an object") }
        let name = o["estimator"]?.stringValue ?? ""
        let params = try Endpoints.decodeParams(o["params"])
        if let fields = o["verl"]?.objectValue {
            let (batch, _, _) = try VerlEndpoint.decodeBatch(fields)
            return try Registry.advantages(name, batch: batch, params: params).advantages.count
        }
        let (_, _, _, doc) = try Endpoints.decode(o, methodField: "estimator")
        return try Registry.advantages(name, batch: doc.batch, params: params).advantages.count
    }

    /// The whole server-side pipeline of `POST /v1/advantages`: parse, decode, compute, encode the answer.
    public static func advantagesRoute(_ body: Data) -> (status: Int, answer: Data) {
        let (status, data, _) = FineGrainService.compute(ByteBuffer(bytes: body)) { b in
            b["verl"] != nil ? try VerlEndpoint.advantages(b) : try Endpoints.advantages(b)
        }
        return (Int(status.code), data)
    }
}
