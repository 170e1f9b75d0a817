import FineGrain

/// The reward routes: score response texts with a built-in `AnswerVerifier`.
enum RewardEndpoints {
    /// `POST /v1/rewards`: `{"verifier": name, "responses": [str], "labels": [str]}` ->
    /// `{"rewards": [float], "verifier": name}`.
    static func rewards(_ body: [String: JSONValue]) throws -> JSONValue {
        guard let name = body["verifier"]?.stringValue else {
            throw FineGrainError.invalidField(field: "verifier", reason: "missing or not a string (one of \(AnswerVerifier.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let verifier = try AnswerVerifier.named(name)
        let responses = try strings(body["responses"], field: "responses")
        let labels = try strings(body["labels"], field: "labels")
        let scores = try verifier.score(responses: responses, labels: labels)
        return .object(["rewards": .numbers(scores), "verifier": .string(name)])
    }

    /// OpenRLHF's remote reward API (`--reward.remote_url`, specs/integrations.md §2):
    /// `{"query": [str], "prompts": [str], "labels": [str]}` -> `{"rewards": [float], "scores": [float],
    /// "extra_logs": {"verifier_<name>": [float]}}`. `query` is the decoded prompt + response; the response is
    /// the text after the prompt when the query contains it (else the whole query). `scores` equal `rewards`
    /// (the verifiers answer in {0, 1}, which is what OpenRLHF's dynamic filtering expects).
    static func openRLHF(_ body: [String: JSONValue], verifier: AnswerVerifier) throws -> JSONValue {
        let queries = try strings(body["query"], field: "query")
        let labels = try strings(body["labels"], field: "labels")
        var prompts = [String]()
        if let p = body["prompts"], !p.isNull {
            prompts = try strings(p, field: "prompts")
            guard prompts.count == queries.count else {
                throw FineGrainError.invalidField(field: "prompts", reason: "has \(prompts.count) entries for \(queries.count) queries")
            }
        }
        guard labels.count == queries.count else {
            throw FineGrainError.invalidField(field: "labels", reason: "has \(labels.count) entries for \(queries.count) queries")
        }
        let responses = queries.enumerated().map { i, q -> String in
            guard i < prompts.count, !prompts[i].isEmpty, let r = q.range(of: prompts[i]) else { return q }
            return String(q[r.upperBound...])
        }
        let scores = try verifier.score(responses: responses, labels: labels)
        return .object(["rewards": .numbers(scores), "scores": .numbers(scores),
                        "extra_logs": .object(["verifier_\(verifier.rawValue)": .numbers(scores)])])
    }

    static func strings(_ v: JSONValue?, field: String) throws -> [String] {
        guard let a = v?.arrayValue else { throw FineGrainError.invalidField(field: field, reason: "missing or not a list of strings") }
        return try a.enumerated().map { i, x in
            guard let s = x.stringValue else { throw FineGrainError.invalidField(field: "\(field)[\(i)]", reason: "is not a string") }
            return s
        }
    }
}
