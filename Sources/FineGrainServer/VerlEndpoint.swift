import FineGrain
import NIOCore

/// `POST /v1/advantages` with a verl-layout batch: the padded `[B, R]` tensors a verl estimator receives
/// (`token_level_rewards`, `response_mask`, `index` = `uid`, and `values`, `old_log_probs`, ... where the
/// estimator needs them), in plain JSON lists or compact base64 (`WireTensor`).
///
/// Body: `{"estimator": name, "params": {...}, "verl": {field: tensor, ...}, "encoding": "base64"|"json"}`.
/// Answer: `{"advantages": [B, R], "returns": [B, R], "diagnostics": {...}}` as float32 tensors, in the
/// requested encoding (default: compact if any input tensor was compact); with
/// `"omit_returns_if_advantages": true`, `"returns_are_advantages": true` replaces an identical `returns`
/// (`VerlAnswer`). Lossless short forms (`WireShortForms`): sparse rewards and a row-lengths mask in the
/// request; with `"row_values_if_constant": true`, per-row values in the answer.
///
/// Every row keeps the full width R, exactly as verl computes (outputs at padded positions are verl's
/// values too: the conformance adapters check every position the same way).
enum VerlEndpoint {
    /// The `[B, R]` fields and where they go in the batch.
    static let tokenFields: Set<String> = ["token_level_rewards", "response_mask", "values", "old_log_probs", "ref_log_prob",
                                           "log_probs", "entropies", "sum_pi_squared", "rollout_is_weights"]
    static let rowFields: Set<String> = ["reward_baselines"]
    static let groupFields: Set<String> = ["index", "uid"]

    /// `sources`: where tensors sent by reference live (`TensorSources`: the server's shared-memory
    /// directory, nil when it has none, and a framed body's binary part). A framed request is answered
    /// framed: dense answer tensors go into the answer's binary part (`answerInFrame`).
    static func advantages(_ body: [String: JSONValue], sources: TensorSources = .none, answerInFrame: Bool = false) throws -> (ServiceAnswer, tokens: Int) {
        guard let name = body["estimator"]?.stringValue else {
            throw FineGrainError.invalidField(field: "estimator", reason: "missing or not a string")
        }
        let params = try Endpoints.decodeParams(body["params"])
        guard let fields = body["verl"]?.objectValue else {
            throw FineGrainError.invalidField(field: "verl", reason: "must be an object of verl tensors")
        }
        for key in fields.keys where !tokenFields.contains(key) && !rowFields.contains(key) && !groupFields.contains(key) {
            throw FineGrainError.invalidField(field: "verl.\(key)",
                                              reason: "unknown field; expected one of \((tokenFields.union(rowFields).union(groupFields)).sorted().joined(separator: ", "))")
        }
        func flag(_ key: String) throws -> Bool {
            guard let v = body[key], !v.isNull else { return false }
            guard let b = v.boolValue else { throw FineGrainError.invalidField(field: key, reason: "must be true or false") }
            return b
        }
        let omit = try flag("omit_returns_if_advantages"), rowValues = try flag("row_values_if_constant")
        var area: AnswerDestination?
        if let v = body["answer_shm"], !v.isNull {   // checked before any work
            guard let shared = sources.shared else { throw SharedMemory.off }
            area = .shared(try shared.answerArea(v))
        }
        let (batch, width, anyCompact) = try decodeBatch(fields, sources: sources)
        if answerInFrame, area == nil {   // room for advantages and returns as float32
            area = .frame(ByteBufferAllocator().buffer(capacity: 2 * 4 * batch.tokenCount))
        }
        let out = try Registry.advantages(name, batch: batch, params: params)
        let encoding = try responseEncoding(body["encoding"], default: anyCompact ? .base64 : .json)
        let answer = try VerlAnswer.write(out, rows: batch.count, width: width, encoding: encoding, omitReturnsIfAdvantages: omit,
                                          rowValuesMask: rowValues ? batch.mask : nil, area: &area)
        if case let .frame(frame)? = area { return (.framed(header: answer, frame: frame), batch.tokenCount) }
        return (.bytes(answer), batch.tokenCount)
    }

    static func responseEncoding(_ v: JSONValue?, default d: WireTensor.Encoding) throws -> WireTensor.Encoding {
        guard let v, !v.isNull else { return d }
        guard let s = v.stringValue, let e = WireTensor.Encoding(rawValue: s) else {
            throw FineGrainError.invalidField(field: "encoding", reason: "must be \"json\" or \"base64\"")
        }
        return e
    }

    /// A full-width ragged batch from verl's padded fields: with every row R long, the ragged column of a
    /// `[B, R]` tensor is its C-order buffer, so no copy beyond the decode is needed.
    static func decodeBatch(_ fields: [String: JSONValue], sources: TensorSources = .none) throws -> (RolloutBatch, width: Int, anyCompact: Bool) {
        guard let maskJSON = fields["response_mask"] else {
            throw FineGrainError.missingField(field: "verl.response_mask", method: "verl layout")
        }
        guard fields["token_level_rewards"] != nil else {
            throw FineGrainError.missingField(field: "verl.token_level_rewards", method: "verl layout")
        }
        let mask = try WireTensor.decodeMask(maskJSON, field: "verl.response_mask", sources: sources)
        let (b, width) = (mask.shape[0], mask.shape[1])
        guard b > 0 else { throw FineGrainError.invalidField(field: "verl.response_mask", reason: "the batch is empty (0 rows)") }
        let maskBytes = mask.mask
        var groups: [GroupID]?
        if let key = groupFields.first(where: { fields[$0] != nil }), let g = fields[key] {
            groups = try decodeGroups(g, field: "verl.\(key)", rows: b)
        }
        var batch = RolloutBatch(groups: groups ?? (0 ..< b).map { GroupID.int($0) },
                                 lengths: [Int](repeating: width, count: b), mask: maskBytes)
        var anyCompact = mask.wasCompact
        for (key, json) in fields where tokenFields.contains(key) && key != "response_mask" {
            let t = try WireTensor.decode(json, field: "verl.\(key)", rank: 2, sources: sources)
            guard t.shape == mask.shape else {
                throw FineGrainError.invalidField(field: "verl.\(key)", reason: "has shape \(t.shape); response_mask has \(mask.shape)")
            }
            anyCompact = anyCompact || t.wasCompact
            if let i = WireTensor.firstNonFinite(t.values) {
                throw FineGrainError.invalidField(field: "verl.\(key)", reason: "row \(i / max(width, 1)) column \(i % max(width, 1)) is \(t.values[i]); must be finite")
            }
            switch key {
            case "token_level_rewards": batch.tokenReward = t.values
            case "values": batch.value = t.values
            case "old_log_probs": batch.oldLogprob = t.values
            case "ref_log_prob": batch.refLogprob = t.values
            case "log_probs": batch.logprob = t.values
            case "entropies": batch.entropy = t.values
            default: batch.extraTokenColumns[key] = t.values
            }
        }
        if let json = fields["reward_baselines"] {
            let t = try WireTensor.decode(json, field: "verl.reward_baselines", rank: 1, sources: sources)
            guard t.values.count == b else {
                throw FineGrainError.invalidField(field: "verl.reward_baselines", reason: "has \(t.values.count) entries for \(b) rows")
            }
            anyCompact = anyCompact || t.wasCompact
            if let i = t.values.firstIndex(where: { !$0.isFinite }) {
                throw FineGrainError.invalidField(field: "verl.reward_baselines", reason: "row \(i) is \(t.values[i]); must be finite")
            }
            batch.rewardBaseline = t.values
        }
        return (batch, width, anyCompact)
    }

    /// `uid` / `index`: one id per row, strings or integers (compact int tensors allowed too).
    static func decodeGroups(_ v: JSONValue, field: String, rows: Int) throws -> [GroupID] {
        var ids: [GroupID]
        if v.objectValue != nil {
            ids = try WireTensor.decode(v, field: field, rank: 1).values.map { .int(Int($0)) }
        } else {
            guard let a = v.arrayValue else { throw FineGrainError.invalidField(field: field, reason: "must be a list of group ids") }
            ids = try a.enumerated().map { i, x in
                if let s = x.stringValue { return .string(s) }
                if let d = x.doubleValue, d.isFinite, d == d.rounded() { return .int(Int(d)) }
                throw FineGrainError.invalidField(field: "\(field)[\(i)]", reason: "must be a string or an integer")
            }
        }
        guard ids.count == rows else { throw FineGrainError.invalidField(field: field, reason: "has \(ids.count) group ids for \(rows) rows") }
        return ids
    }
}
