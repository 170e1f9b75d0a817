import FineGrain
import NIOCore

/// `POST /v1/losses` with a verl-layout batch: the padded `[B, R]` tensors a verl policy (or value) loss
/// receives, in plain JSON lists or the compact forms (`WireTensor`).
///
/// Body: `{"loss": name, "params": {...}, "verl": {field: tensor, ...}, "encoding": "base64"|"json"}` with
/// fields `response_mask` and, as the loss reads them, `log_prob`, `old_log_prob`, `advantages`,
/// `rollout_is_weights`, `ref_log_prob`, `entropy`, `values`, `vpreds`, `returns` (verl's names; the
/// plural `log_probs` / `old_log_probs` / `entropies` are accepted too). Answer:
/// `{"loss": value, "metrics": {...}, "gradient": [B, R]}` where `gradient` is d loss / d (the
/// differentiated input: `log_prob` for policy losses, `vpreds` for value losses), float32 in the compact
/// encoding. verl's `global_batch_info` (`dp_size`, `batch_num_tokens`, `global_batch_size`) go in `params`.
///
/// This is what `finegrain.verl` registers as `finegrain_<loss>` policy losses: the Python side turns the
/// gradient into a surrogate `sum(g * log_prob)` whose autograd gradient is exactly `g`.
enum VerlLossEndpoint {
    /// Wire name -> the `LossInput` column it fills.
    static let fields: [String: WritableKeyPath<LossInput, [Double]?> & Sendable] = [
        "log_prob": \.logprob, "log_probs": \.logprob, "old_log_prob": \.oldLogprob, "old_log_probs": \.oldLogprob,
        "advantages": \.advantages, "rollout_is_weights": \.rolloutISWeights, "ref_log_prob": \.refLogprob,
        "entropy": \.entropy, "entropies": \.entropy, "values": \.values, "vpreds": \.vpreds, "returns": \.returns,
    ]

    /// `sources` / `answerInFrame`: tensors by reference and a framed answer, as in `VerlEndpoint.advantages`.
    static func losses(_ body: [String: JSONValue], sources: TensorSources = .none, answerInFrame: Bool = false) throws -> (ServiceAnswer, tokens: Int) {
        guard let name = body["loss"]?.stringValue else {
            throw FineGrainError.invalidField(field: "loss", reason: "missing or not a string")
        }
        let params = try Endpoints.decodeParams(body["params"])
        guard let wire = body["verl"]?.objectValue else {
            throw FineGrainError.invalidField(field: "verl", reason: "must be an object of verl tensors")
        }
        for key in wire.keys where key != "response_mask" && fields[key] == nil {
            throw FineGrainError.invalidField(field: "verl.\(key)",
                                              reason: "unknown field; expected response_mask or one of \(fields.keys.sorted().joined(separator: ", "))")
        }
        guard let maskJSON = wire["response_mask"] else {
            throw FineGrainError.missingField(field: "verl.response_mask", method: name)
        }
        let mask = try WireTensor.decodeMask(maskJSON, field: "verl.response_mask", sources: sources)
        let (b, width) = (mask.shape[0], mask.shape[1])
        guard b > 0 else { throw FineGrainError.invalidField(field: "verl.response_mask", reason: "the batch is empty (0 rows)") }
        var input = LossInput(offsets: (0 ... b).map { $0 * width }, mask: mask.mask)
        var anyCompact = mask.wasCompact
        for (key, json) in wire where key != "response_mask" {
            let t = try WireTensor.decode(json, field: "verl.\(key)", rank: 2, sources: sources)
            guard t.shape == mask.shape else {
                throw FineGrainError.invalidField(field: "verl.\(key)", reason: "has shape \(t.shape); response_mask has \(mask.shape)")
            }
            if let i = WireTensor.firstNonFinite(t.values) {
                throw FineGrainError.invalidField(field: "verl.\(key)", reason: "row \(i / max(width, 1)) column \(i % max(width, 1)) is \(t.values[i]); must be finite")
            }
            anyCompact = anyCompact || t.wasCompact
            input[keyPath: fields[key]!] = t.values
        }
        let out = try Registry.loss(name, input: input, params: params)
        let encoding = try VerlEndpoint.responseEncoding(body["encoding"], default: anyCompact ? .base64 : .json)
        var buffer = ByteBufferAllocator().buffer(capacity: answerInFrame ? 4096 : b * width * 16 / 3 + 1024)
        buffer.writeStaticString(#"{"gradient":"#)
        var area: AnswerDestination? = answerInFrame ? .frame(ByteBufferAllocator().buffer(capacity: 4 * b * width)) : nil
        try VerlAnswer.writeTensor(out.gradient, rows: b, width: width, encoding: encoding, to: &buffer, area: &area)
        buffer.writeStaticString(#","loss":"#)
        buffer.writeBytes(try JSONValue.number(out.value).serialized())
        buffer.writeStaticString(#","metrics":"#)
        buffer.writeBytes(try JSONValue.object(out.metrics.mapValues(JSONValue.number)).serialized())
        buffer.writeStaticString("}")
        if case let .frame(frame)? = area { return (.framed(header: buffer, frame: frame), b * width) }
        return (.bytes(buffer), b * width)
    }
}
