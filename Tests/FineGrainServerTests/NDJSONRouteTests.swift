import FineGrain
@testable import FineGrainServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import XCTest

/// `POST /v1/advantages` with a JSON-lines body, through a real socket: the lines that come back are the
/// CLI's (`RolloutJSONL.write` of the annotated input), the numbers are the JSON route's, and every bad
/// request is a JSON error naming the field or line while the server keeps serving.
final class NDJSONRouteTests: XCTestCase {
    func app() -> some ApplicationProtocol {
        var c = ServiceConfiguration()
        c.port = 0; c.maxBodyBytes = 1 << 16
        return FineGrainService.application(c)
    }

    static let lines = """
    {"group": "a", "tokens": [1, 2], "reward": 1, "id": "x"}
    {"group": "a", "tokens": [3], "reward": 0}

    {"group": 7, "tokens": [4, 5, 6], "reward": 0.5}

    """

    static func headers(_ type: String) -> HTTPFields { [.contentType: type] }

    func testLinesInAnnotatedLinesOutAsTheCLIWritesThem() async throws {
        let doc = try RolloutJSONL.read(Data(Self.lines.utf8))
        let out = try Registry.advantages("grpo", batch: doc.batch, params: ["epsilon": .number(1e-6)])
        let expected = String(decoding: try RolloutJSONL.write(RolloutJSONL.annotate(doc, with: out)), as: UTF8.self)
        try await app().test(.live) { client in
            for type in ["application/x-ndjson", "application/jsonl; charset=utf-8", "Application/NDJSON"] {
                try await client.execute(uri: "/v1/advantages?estimator=grpo&param=epsilon=1e-6", method: .post,
                                         headers: Self.headers(type), body: ByteBuffer(string: Self.lines)) { r in
                    XCTAssertEqual(r.status, .ok, type)
                    XCTAssertEqual(r.headers[.contentType], "application/x-ndjson")
                    let text = String(buffer: r.body)
                    XCTAssertEqual(text, expected, type)
                    let rows = try RolloutJSONL.parseLines(Data(text.utf8))
                    XCTAssertEqual(rows.count, 3)
                    XCTAssertEqual(rows[0]["id"], .string("x"))
                    // Hand-worked GRPO: group a has rewards {1, 0}, mean 0.5, unbiased std sqrt(0.5).
                    let a = try XCTUnwrap(rows[0]["advantages"]?.doubles(field: "a"))
                    XCTAssertEqual(a, [0.5 / (0.5.squareRoot() + 1e-6), 0.5 / (0.5.squareRoot() + 1e-6)])
                    let diagnostics = try XCTUnwrap(r.headers[NDJSONEndpoint.diagnosticsHeader])
                    XCTAssertNotNil(try JSONValue.parse(Data(diagnostics.utf8)).objectValue)
                }
            }
            // `params` as a URL-encoded JSON object gives the same answer; `param=` entries override it.
            let query = "estimator=grpo&params=%7B%22epsilon%22%3A0.5%7D&param=epsilon=1e-6"
            try await client.execute(uri: "/v1/advantages?" + query, method: .post, headers: Self.headers("application/x-ndjson"),
                                     body: ByteBuffer(string: Self.lines)) { r in
                XCTAssertEqual(String(buffer: r.body), expected)
            }
            // Without a JSON-lines content type the body is still the JSON object of DESIGN.md's contract 4.
            try await client.execute(uri: "/v1/advantages", method: .post, headers: Self.headers("application/json"),
                                     body: ByteBuffer(string: Self.lines)) { r in
                XCTAssertEqual(r.status, .badRequest)
            }
        }
    }

    func testBadRequestsNameTheFieldAndTheServerKeepsServing() async throws {
        let cases: [(query: String, body: String, status: HTTPResponse.Status, says: String)] = [
            ("", Self.lines, .badRequest, "estimator"),
            ("estimator=nope", Self.lines, .notFound, "unknown estimator 'nope'"),
            ("estimator=grpo", "{\"group\": \"a\", \"tokens\": [1], \"reward\": 1}\n{bad\n", .badRequest, "line 2"),
            ("estimator=grpo", "[1, 2]\n", .badRequest, "line 1"),
            ("estimator=grpo", "\n\n", .badRequest, "empty"),
            ("estimator=grpo", "{\"group\": \"a\", \"tokens\": [1], \"reward\": \"NaN\"}\n", .badRequest, "reward"),
            ("estimator=grpo&param=epsilon=x", Self.lines, .badRequest, "epsilon"),
            ("estimator=grpo&param==1", Self.lines, .badRequest, "param"),
            ("estimator=grpo&params=%5B1%5D", Self.lines, .badRequest, "params"),
        ]
        try await app().test(.live) { client in
            for c in cases {
                try await client.execute(uri: "/v1/advantages?" + c.query, method: .post, headers: Self.headers("application/x-ndjson"),
                                         body: ByteBuffer(string: c.body)) { r in
                    XCTAssertEqual(r.status, c.status, c.query)
                    XCTAssertEqual(r.headers[.contentType], "application/json", c.query)
                    let message = try XCTUnwrap(JSONValue.parse(Data(buffer: r.body)).objectValue?["error"]?.stringValue, c.query)
                    XCTAssertTrue(message.contains(c.says), "\(c.query): \(message)")
                }
            }
            try await client.execute(uri: "/v1/advantages?estimator=rloo", method: .post, headers: Self.headers("application/x-ndjson"),
                                     body: ByteBuffer(string: Self.lines)) { r in
                XCTAssertEqual(r.status, .ok)
            }
        }
    }
}
