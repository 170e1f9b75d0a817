import FineGrain

/// The reward routes: score response texts with a built-in `AnswerVerifier`, each item under its own
/// deadline (`ItemDeadlines`; `"item_timeout_s"` in the body, else the server's `--reward-item-timeout`).
enum RewardEndpoints {
    /// `POST /v1/rewards`: `{"verifier": name, "responses": [str], "labels": [str], "item_timeout_s": s}` ->
    /// `{"rewards": [float or null], "outcomes": ["ok" | "timeout" | "not_run"], "timeouts": n, "verifier": name}`.
    /// A timed-out item's reward is null, not 0: the caller decides what a timeout is worth.
    static func rewards(_ body: [String: JSONValue], defaultTimeout: Duration) throws -> JSONValue {
        guard let name = body["verifier"]?.stringValue else {
            throw FineGrainError.invalidField(field: "verifier", reason: "missing or not a string (one of \(AnswerVerifier.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let verifier = try AnswerVerifier.named(name)
        let responses = try strings(body["responses"], field: "responses")
        let labels = try strings(body["labels"], field: "labels")
        guard labels.count == responses.count else {
            throw FineGrainError.invalidField(field: "labels", reason: "has \(labels.count) entries for \(responses.count) responses")
        }
        let scored = score(verifier, responses, labels, limit: try timeout(body, default: defaultTimeout))
        return .object(["rewards": .array(scored.map { $0.reward.map(JSONValue.number) ?? .null }),
                        "outcomes": .array(scored.map { .string($0.outcome) }),
                        "timeouts": .number(Double(scored.filter { $0.reward == nil }.count)),
                        "verifier": .string(name)])
    }

    /// Each item's reward (nil unless scored in time) and outcome name.
    static func score(_ verifier: AnswerVerifier, _ responses: [String], _ labels: [String],
                      limit: Duration) -> [(reward: Double?, outcome: String)] {
        ItemDeadlines.run(count: responses.count, limit: limit) { i in verifier.score(response: responses[i], label: labels[i]) }
            .map { o in
                switch o {
                case let .done(r): return (r, "ok")
                case .timedOut: return (nil, "timeout")
                case .notRun: return (nil, "not_run")
                }
            }
    }

    /// `item_timeout_s` of the body (seconds, > 0), else the server's default.
    static func timeout(_ body: [String: JSONValue], default d: Duration) throws -> Duration {
        guard let v = body["item_timeout_s"], !v.isNull else { return d }
        guard let s = v.doubleValue, s.isFinite, s > 0, s <= 86_400 else {
            throw FineGrainError.invalidField(field: "item_timeout_s", reason: "must be a number of seconds in (0, 86400]")
        }
        return .nanoseconds(Int64(s * 1e9))
    }

    /// OpenRLHF's remote reward API (`--reward.remote_url`, specs/integrations.md §2):
    /// `{"query": [str], "prompts": [str], "labels": [str]}` -> `{"rewards": [float], "scores": [float],
    /// "extra_logs": {"verifier_<name>": [float]}}`. `query` is the decoded prompt + response; the response is
    /// the text after the prompt when the query contains it (else the whole query). `scores` equal `rewards`
    /// (the verifiers answer in {0, 1}, which is what OpenRLHF's dynamic filtering expects). OpenRLHF needs a
    /// number for every item, so a timed-out item scores 0 there and is flagged 1 in
    /// `extra_logs["verifier_timeout"]` (logged by OpenRLHF like every extra log).
    static func openRLHF(_ body: [String: JSONValue], verifier: AnswerVerifier, defaultTimeout: Duration) throws -> JSONValue {
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
        let scored = score(verifier, responses, labels, limit: try timeout(body, default: defaultTimeout))
        let scores = scored.map { $0.reward ?? 0 }
        return .object(["rewards": .numbers(scores), "scores": .numbers(scores),
                        "extra_logs": .object(["verifier_\(verifier.rawValue)": .numbers(scores),
                                               "verifier_timeout": .numbers(scored.map { $0.reward == nil ? 1 : 0 })])])
    }

    static func strings(_ v: JSONValue?, field: String) throws -> [String] {
        guard let a = v?.arrayValue else { throw FineGrainError.invalidField(field: field, reason: "missing or not a list of strings") }
        return try a.enumerated().map { i, x in
            guard let s = x.stringValue else { throw FineGrainError.invalidField(field: "\(field)[\(i)]", reason: "is not a string") }
            return s
        }
    }
}
