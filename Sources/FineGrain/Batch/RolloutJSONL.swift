import Foundation

/// Reader and writer for the rollout JSONL contract (DESIGN.md, "Contracts" 1): one response per line,
///
///     {"group": "q17", "tokens": [5, 9, 2], "reward": 1.0, "mask": [1, 1, 1],
///      "logprobs": [...], "old_logprobs": [...], "ref_logprobs": [...], "entropies": [...],
///      "values": [...], "token_rewards": [...], "step_ends": [2, 3], "step_rewards": [0.9, 0.1],
///      "rewards": {"helpful": 0.3, "safe": 1.0}}
///
/// Only `group`, `tokens` and one reward source are required (a method that needs more names the missing
/// field). `group` may be a string or an integer. Output lines are the input objects, every field kept,
/// plus `"advantages"` and, where defined, `"returns"`.
public enum RolloutJSONL {
    /// Per-token float fields read into typed columns of `RolloutBatch` (immutable; key paths are not
    /// Sendable-annotated in this toolchain, hence `nonisolated(unsafe)`).
    nonisolated(unsafe) static let tokenFields: [(String, WritableKeyPath<RolloutBatch, [Double]?>)] = [
        ("logprobs", \.logprob), ("old_logprobs", \.oldLogprob), ("ref_logprobs", \.refLogprob),
        ("entropies", \.entropy), ("values", \.value), ("token_rewards", \.tokenReward),
    ]
    /// Fields with a fixed meaning; every other top-level field is either an extra column (below) or
    /// echoed back untouched.
    static let knownFields: Set<String> = ["group", "tokens", "mask", "reward", "reward_baseline", "step_ends",
        "step_rewards", "rewards", "logprobs", "old_logprobs", "ref_logprobs", "entropies", "values", "token_rewards",
        "advantages", "returns"]

    /// Extra columns, read generically so that a method can add inputs without touching this reader:
    /// * a field named `step_*` whose value is an array of numbers with one entry per step end becomes a
    ///   per-step column in `extraStepColumns` (e.g. `step_labels`, `step_relevance`);
    /// * any other field whose value is an array of numbers with one entry per token becomes a per-token
    ///   column in `extraTokenColumns` (e.g. `sum_pi_squared`, `rollout_is_weights`, `prm_logprobs`).
    /// A field that is token-length on some lines and missing or of another length on others is an error
    /// naming it; a numeric array that is token-length on no line is just echoed back.

    /// Parsed rollouts: the batch plus the original objects (to echo them back with advantages).
    public struct Document: Sendable {
        public var batch: RolloutBatch
        public var records: [[String: JSONValue]]
    }

    /// Splits JSONL text into non-empty lines and parses each as a JSON object.
    public static func parseLines(_ data: Data) throws -> [[String: JSONValue]] {
        var out = [[String: JSONValue]]()
        var lineNo = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNo += 1
            let trimmed = line.drop { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
            if trimmed.isEmpty || trimmed.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            let value: JSONValue
            do { value = try JSONValue.parse(Data(line)) } catch {
                throw FineGrainError.invalidField(field: "line \(lineNo)", reason: "not valid JSON")
            }
            guard let obj = value.objectValue else {
                throw FineGrainError.invalidField(field: "line \(lineNo)", reason: "expected a JSON object per line")
            }
            out.append(obj)
        }
        return out
    }

    /// Reads a JSONL document into a validated batch.
    public static func read(_ data: Data) throws -> Document {
        try decode(records: try parseLines(data))
    }

    /// Builds a validated batch from rollout objects (JSONL lines or a service request's `rollouts`).
    public static func decode(records: [[String: JSONValue]]) throws -> Document {
        guard !records.isEmpty else {
            throw FineGrainError.invalidField(field: "rollouts", reason: "the batch is empty (0 responses)")
        }
        var groups = [GroupID](), lengths = [Int](), tokens = [Int32](), mask = [UInt8]()
        for (r, rec) in records.enumerated() {
            func bad(_ f: String, _ why: String) -> FineGrainError { .invalidField(field: f, reason: "response \(r): \(why)") }
            switch rec["group"] {
            case let .string(s)?: groups.append(.string(s))
            case let .number(d)? where d == d.rounded() && abs(d) < 9e15: groups.append(.int(Int(d)))
            case nil, .null?: throw bad("group", "missing (every response needs a group id)")
            default: throw bad("group", "must be a string or an integer")
            }
            guard let toks = rec["tokens"]?.arrayValue else { throw bad("tokens", "missing or not an array") }
            for (t, v) in toks.enumerated() {
                guard case let .number(d) = v, d == d.rounded(), d >= Double(Int32.min), d <= Double(Int32.max) else {
                    throw bad("tokens", "token \(t) is not a 32-bit integer")
                }
                tokens.append(Int32(d))
            }
            lengths.append(toks.count)
            if let m = rec["mask"], !m.isNull {
                guard let ma = m.arrayValue, ma.count == toks.count else {
                    throw bad("mask", "must be an array with one 0/1 entry per token (\(toks.count))")
                }
                for (t, v) in ma.enumerated() {
                    guard let d = v.doubleValue, d == 0 || d == 1 else { throw bad("mask", "entry \(t) must be 0 or 1") }
                    mask.append(d == 1 ? 1 : 0)
                }
            } else {
                mask.append(contentsOf: repeatElement(1, count: toks.count))
            }
        }
        var batch = RolloutBatch(groups: groups, lengths: lengths, tokens: tokens, mask: mask)
        batch.outcome = try responseColumn(records, "reward")
        batch.rewardBaseline = try responseColumn(records, "reward_baseline")
        for (field, path) in tokenFields {
            batch[keyPath: path] = try tokenColumn(records, field, batch: batch)
        }
        try decodeSteps(records, into: &batch)
        try decodeExtraColumns(records, into: &batch)
        try decodeNamedRewards(records, into: &batch)
        try batch.validate()
        return Document(batch: batch, records: records)
    }

    /// A per-response number column: absent everywhere -> nil; present on some lines only -> error.
    static func responseColumn(_ records: [[String: JSONValue]], _ field: String) throws -> [Double]? {
        let present = records.map { !($0[field]?.isNull ?? true) }
        guard present.contains(true) else { return nil }
        if let r = present.firstIndex(of: false) {
            throw FineGrainError.invalidField(field: field, reason: "response \(r): missing while other responses have it")
        }
        return try records.enumerated().map { r, rec in
            guard let d = rec[field]!.doubleValue else {
                throw FineGrainError.invalidField(field: field, reason: "response \(r): not a number")
            }
            return d
        }
    }

    /// A per-token float column: absent everywhere -> nil; a length that differs from `tokens` -> error.
    public static func tokenColumn(_ records: [[String: JSONValue]], _ field: String, batch: RolloutBatch) throws -> [Double]? {
        guard records.contains(where: { !($0[field]?.isNull ?? true) }) else { return nil }
        return try raggedColumn(records, field, offsets: batch.offsets, unit: "tokens")
    }

    /// Concatenates every record's numeric array `field`, checking record `r` has
    /// `offsets[r+1] - offsets[r]` entries (`unit` names what they count in the error).
    static func raggedColumn(_ records: [[String: JSONValue]], _ field: String, offsets: [Int], unit: String) throws -> [Double] {
        var out = [Double](); out.reserveCapacity(offsets.last ?? 0)
        for (r, rec) in records.enumerated() {
            guard let v = rec[field], !v.isNull else {
                throw FineGrainError.invalidField(field: field, reason: "response \(r): missing while other responses have it")
            }
            guard let a = v.arrayValue else {
                throw FineGrainError.invalidField(field: field, reason: "response \(r): expected an array of numbers")
            }
            let want = offsets[r + 1] - offsets[r]
            guard a.count == want else {
                throw FineGrainError.invalidField(field: field, reason: "response \(r): has \(a.count) entries but \(unit) has \(want)")
            }
            for (t, x) in a.enumerated() {
                guard let d = x.doubleValue else {
                    throw FineGrainError.invalidField(field: field, reason: "response \(r): entry \(t) is not a number")
                }
                out.append(d)
            }
        }
        return out
    }

    static func decodeSteps(_ records: [[String: JSONValue]], into batch: inout RolloutBatch) throws {
        let hasEnds = records.contains { !($0["step_ends"]?.isNull ?? true) }
        let hasRewards = records.contains { !($0["step_rewards"]?.isNull ?? true) }
        guard hasEnds || hasRewards else { return }
        guard hasEnds else { throw FineGrainError.invalidField(field: "step_ends", reason: "step_rewards given without step_ends") }
        var so = [0], ends = [Int](), rewards = [Double]()
        for (r, rec) in records.enumerated() {
            func bad(_ f: String, _ why: String) -> FineGrainError { .invalidField(field: f, reason: "response \(r): \(why)") }
            let e = try (rec["step_ends"] ?? .array([])).doubles(field: "step_ends")
            for x in e {
                guard x == x.rounded() else { throw bad("step_ends", "step ends must be integers") }
                ends.append(Int(x))
            }
            so.append(ends.count)
            if hasRewards {
                let sr = try (rec["step_rewards"] ?? .array([])).doubles(field: "step_rewards")
                guard sr.count == e.count else { throw bad("step_rewards", "has \(sr.count) entries for \(e.count) step ends") }
                rewards.append(contentsOf: sr)
            }
        }
        batch.stepOffsets = so; batch.stepEnds = ends
        batch.stepReward = hasRewards ? rewards : nil
    }

    static func decodeExtraColumns(_ records: [[String: JSONValue]], into batch: inout RolloutBatch) throws {
        var names = Set<String>()
        for rec in records { for (k, v) in rec where !knownFields.contains(k) && v.arrayValue != nil { names.insert(k) } }
        for name in names.sorted() {
            let isStep = name.hasPrefix("step_")
            let offsets = isStep ? (batch.stepOffsets ?? []) : batch.offsets
            func want(_ r: Int) -> Int { offsets.isEmpty ? -1 : offsets[r + 1] - offsets[r] }
            // Which lines carry a numeric array of the right length?
            var matches = 0
            for (r, rec) in records.enumerated() {
                if let a = rec[name]?.arrayValue, a.count == want(r), a.allSatisfy({ $0.doubleValue != nil }) { matches += 1 }
            }
            guard matches > 0 else { continue }  // not a column: echoed back only
            let out = try raggedColumn(records, name, offsets: offsets, unit: isStep ? "step ends" : "tokens")
            if isStep { batch.extraStepColumns[name] = out } else { batch.extraTokenColumns[name] = out }
        }
    }

    static func decodeNamedRewards(_ records: [[String: JSONValue]], into batch: inout RolloutBatch) throws {
        var names = Set<String>()
        for rec in records { if let o = rec["rewards"]?.objectValue { names.formUnion(o.keys) } }
        for name in names.sorted() {
            batch.namedRewards[name] = try records.enumerated().map { r, rec in
                guard let d = rec["rewards"]?[name]?.doubleValue else {
                    throw FineGrainError.invalidField(field: "rewards.\(name)", reason: "response \(r): missing or not a number")
                }
                return d
            }
        }
    }

    /// The input objects with `advantages` (and `returns` where defined) added, one per response.
    public static func annotate(_ doc: Document, with out: AdvantageOutput) -> [[String: JSONValue]] {
        doc.records.enumerated().map { r, rec in
            var o = rec
            let range = doc.batch.range(r)
            o["advantages"] = .numbers(Array(out.advantages[range]))
            if let ret = out.returns { o["returns"] = .numbers(Array(ret[range])) }
            return o
        }
    }

    /// Serialises objects as JSONL (sorted keys, one object per line, trailing newline).
    public static func write(_ records: [[String: JSONValue]]) throws -> Data {
        var data = Data()
        for rec in records {
            data.append(try JSONValue.object(rec).serialized())
            data.append(0x0A)
        }
        return data
    }
}
