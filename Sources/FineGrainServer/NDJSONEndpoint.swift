import FineGrain
import Foundation
import HTTPTypes
import Hummingbird

/// `POST /v1/advantages` with a rollout JSON-lines body (DESIGN.md, "Contracts" 1 and 4: NDJSON beside the
/// JSON request, not instead of it): the same lines `finegrain advantages` reads, so a JSONL file on disk
/// can be sent as it is (`curl --data-binary @rollouts.jsonl -H 'Content-Type: application/x-ndjson'
/// 'http://127.0.0.1:8321/v1/advantages?estimator=grpo'`).
///
/// - Selected by the request's `Content-Type`: `application/x-ndjson`, `application/ndjson`,
///   `application/jsonl`, `application/jsonlines` or `application/x-jsonlines` (parameters such as
///   `; charset=utf-8` ignored). Any other type keeps the JSON-object body.
/// - The estimator and its parameters travel in the query, since every body line is a rollout:
///   `estimator=NAME` (required), `param=KEY=VALUE` (repeatable; values parsed as the CLI's `--param`:
///   number, true/false, else string) and/or `params=<JSON object>` (URL-encoded).
/// - The answer is `application/x-ndjson`: the input lines plus `"advantages"` (and `"returns"` where
///   defined), in input order, exactly as `finegrain advantages` writes them; the estimator's diagnostics
///   are a JSON object in the `FineGrain-Diagnostics` response header. Errors stay JSON objects
///   (`{"error": "line 3: not valid JSON"}`, 400; unknown estimator 404).
enum NDJSONEndpoint {
    static let mediaTypes: Set<String> = ["application/x-ndjson", "application/ndjson", "application/jsonl",
                                          "application/jsonlines", "application/x-jsonlines"]
    static let diagnosticsHeader = HTTPField.Name("FineGrain-Diagnostics")!

    /// Whether the request's body is JSON lines (by its `Content-Type`).
    static func accepts(_ request: Request) -> Bool {
        guard let type = request.headers[.contentType] else { return false }
        let base = type.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        return base.map(mediaTypes.contains) ?? false
    }

    /// The estimator name and parameters from the query string.
    static func method(_ query: Parameters) throws -> (String, [String: ParamValue]) {
        guard let name = query["estimator"].map(String.init), !name.isEmpty else {
            throw FineGrainError.invalidField(field: "estimator", reason: "missing: with a JSON-lines body the estimator goes in the query (?estimator=grpo)")
        }
        var params = [String: ParamValue]()
        if let text = query["params"], !text.isEmpty {
            guard let doc = try? JSONValue.parse(Data(text.utf8)), doc.objectValue != nil else {
                throw FineGrainError.invalidField(field: "params", reason: "must be a URL-encoded JSON object")
            }
            params = try Endpoints.decodeParams(doc)
        }
        for item in query.getAll("param") {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                throw FineGrainError.invalidField(field: "param", reason: "expected key=value, got '\(item)'")
            }
            params[String(item[..<eq])] = ParamValue(parsing: String(item[item.index(after: eq)...]))
        }
        return (name, params)
    }

    /// The annotated lines of a JSON-lines body, or the error that names the line or field.
    static func advantages(_ body: ByteBuffer, estimator: String, params: [String: ParamValue]) -> FineGrainService.Outcome {
        do {
            let doc = try RolloutJSONL.read(Data(buffer: body, byteTransferStrategy: .noCopy))
            let out = try Registry.advantages(estimator, batch: doc.batch, params: params)
            let lines = try RolloutJSONL.write(RolloutJSONL.annotate(doc, with: out))
            let diagnostics = try JSONValue.object(out.diagnostics.mapValues(JSONValue.number)).serialized()
            return FineGrainService.Outcome(.ok, ByteBuffer(bytes: lines), tokens: doc.batch.tokenCount,
                                            contentType: "application/x-ndjson",
                                            diagnostics: String(decoding: diagnostics, as: UTF8.self))
        } catch {
            return .refused(error)
        }
    }
}
