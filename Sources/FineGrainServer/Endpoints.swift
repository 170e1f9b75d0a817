import FineGrain

/// The request/response shapes of the JSON routes, independent of the HTTP framework (so they are
/// testable without a socket as well as through one).
enum Endpoints {
    /// `POST /v1/advantages`: `{"estimator": name, "params": {...}, "rollouts": [rollout objects]}` ->
    /// `{"rollouts": [the same objects plus "advantages" / "returns"], "diagnostics": {...}}`.
    static func advantages(_ body: [String: JSONValue]) throws -> (JSONValue, tokens: Int) {
        let (name, params, _, doc) = try decode(body, methodField: "estimator")
        let out = try Registry.advantages(name, batch: doc.batch, params: params)
        return (.object([
            "rollouts": .array(RolloutJSONL.annotate(doc, with: out).map(JSONValue.object)),
            "diagnostics": .object(out.diagnostics.mapValues(JSONValue.number)),
        ]), doc.batch.tokenCount)
    }

    /// `POST /v1/losses`: `{"loss": name, "params": {...}, "rollouts": [objects with logprobs,
    /// old_logprobs, advantages, ...]}` -> `{"loss": value, "metrics": {...}, "gradients": [[d loss / d logprob]
    /// per rollout]}`.
    static func losses(_ body: [String: JSONValue]) throws -> (JSONValue, tokens: Int) {
        let (name, params, records, doc) = try decode(body, methodField: "loss")
        var input = LossInput(batch: doc.batch, advantages: try RolloutJSONL.tokenColumn(records, "advantages", batch: doc.batch))
        input.vpreds = doc.batch.extraTokenColumns["vpreds"]
        input.returns = try RolloutJSONL.tokenColumn(records, "returns", batch: doc.batch)
        let out = try Registry.loss(name, input: input, params: params)
        let grads = (0 ..< doc.batch.count).map { JSONValue.numbers(Array(out.gradient[doc.batch.range($0)])) }
        return (.object(["loss": .number(out.value), "metrics": .object(out.metrics.mapValues(JSONValue.number)),
                         "gradients": .array(grads)]), doc.batch.tokenCount)
    }

    /// The method name, its params, the rollout objects and the validated batch of a request body.
    static func decode(_ body: [String: JSONValue], methodField: String) throws
        -> (String, [String: ParamValue], [[String: JSONValue]], RolloutJSONL.Document) {
        guard let name = body[methodField]?.stringValue else {
            throw FineGrainError.invalidField(field: methodField, reason: "missing or not a string")
        }
        let params = try decodeParams(body["params"])
        guard let rollouts = body["rollouts"]?.arrayValue else {
            throw FineGrainError.invalidField(field: "rollouts", reason: "missing or not an array of rollout objects")
        }
        let records = try rollouts.enumerated().map { i, r -> [String: JSONValue] in
            guard let o = r.objectValue else { throw FineGrainError.invalidField(field: "rollouts[\(i)]", reason: "not a JSON object") }
            return o
        }
        return (name, params, records, try RolloutJSONL.decode(records: records))
    }

    static func decodeParams(_ v: JSONValue?) throws -> [String: ParamValue] {
        guard let v, !v.isNull else { return [:] }
        guard let o = v.objectValue else { throw FineGrainError.invalidField(field: "params", reason: "must be a JSON object") }
        var out = [String: ParamValue]()
        for (k, x) in o {
            guard let p = ParamValue(json: x) else {
                throw FineGrainError.invalidParameter(name: k, method: "params", reason: "must be a number, bool, string or null")
            }
            out[k] = p
        }
        return out
    }
}
