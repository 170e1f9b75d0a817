import FineGrain
@testable import FineGrainServer
import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest

/// Every route through a real socket (`.live`): results equal the in-process registry, errors are JSON
/// 4xx with a message naming the field, and the server keeps serving after bad requests.
private func body(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

private func object(_ b: ByteBuffer) throws -> [String: JSONValue] {
    try XCTUnwrap(JSONValue.parse(Data(b.readableBytesView)).objectValue)
}

final class ServiceTests: XCTestCase {
    func app(token: String? = nil) -> some ApplicationProtocol {
        var c = ServiceConfiguration()
        c.port = 0; c.bearerToken = token; c.maxBodyBytes = 1 << 16
        return FineGrainService.application(c)
    }

    static let request = """
    {"estimator": "grpo", "params": {"epsilon": 1e-6}, "rollouts": [
      {"group": "a", "tokens": [1, 2], "reward": 1, "id": "x"},
      {"group": "a", "tokens": [3], "reward": 0},
      {"group": 7, "tokens": [4, 5, 6], "reward": 0.5}]}
    """

    func testAdvantagesEqualTheRegistryAndKeepFields() async throws {
        let request = Self.request
        try await app().test(.live) { client in
            try await client.execute(uri: "/v1/advantages", method: .post, body: body(request)) { r in
                XCTAssertEqual(r.status, .ok)
                let o = try object(r.body)
                let rows = try XCTUnwrap(o["rollouts"]?.arrayValue)
                XCTAssertEqual(rows.count, 3)
                XCTAssertEqual(rows[0]["id"], .string("x"))
                let a = try XCTUnwrap(rows[0]["advantages"]?.doubles(field: "a"))
                XCTAssertEqual(a.count, 2)
                XCTAssertEqual(a[0], 0.5 / (0.5.squareRoot() + 1e-6), accuracy: 1e-12)
                // A group of one keeps R / (1 + eps), as verl.
                XCTAssertEqual(try XCTUnwrap(rows[2]["advantages"]?.doubles(field: "a"))[0], 0.5 / (1 + 1e-6), accuracy: 1e-12)
            }
        }
    }

    func testErrorsAreJSONAndTheServerKeepsServing() async throws {
        let request = Self.request
        try await app().test(.live) { client in
            let cases: [(String, HTTPResponse.Status, String)] = [
                ("{not json", .badRequest, "not valid JSON"),
                ("[1, 2]", .badRequest, "must be a JSON object"),
                (String(Self.request.dropLast(40)), .badRequest, "malformed or truncated"),
                ("{\"estimator\": \"nope\", \"rollouts\": [{\"group\": 1, \"tokens\": [1], \"reward\": 1}]}", .notFound, "unknown estimator 'nope'"),
                ("{\"estimator\": \"grpo\", \"rollouts\": [{\"group\": 1, \"tokens\": [1], \"reward\": \"NaN\"}]}", .badRequest, "invalid field 'reward'"),
                ("{\"estimator\": \"gae\", \"rollouts\": [{\"group\": 1, \"tokens\": [1, 2], \"reward\": 1}]}", .badRequest, "missing field 'values'"),
                ("{\"estimator\": \"grpo\", \"params\": {\"epsilonn\": 1}, \"rollouts\": [{\"group\": 1, \"tokens\": [1], \"reward\": 1}]}", .badRequest, "unknown parameter"),
                ("{\"estimator\": \"grpo\"}", .badRequest, "invalid field 'rollouts'"),
            ]
            for (text, status, fragment) in cases {
                try await client.execute(uri: "/v1/advantages", method: .post, body: body(text)) { r in
                    XCTAssertEqual(r.status, status, text)
                    let message = try object(r.body)["error"]?.stringValue ?? ""
                    XCTAssertTrue(message.contains(fragment), "\(message) lacks \(fragment)")
                }
            }
            let big = "{\"estimator\": \"grpo\", \"pad\": \"" + String(repeating: "x", count: 1 << 17) + "\"}"
            try await client.execute(uri: "/v1/advantages", method: .post, body: body(big)) { r in
                XCTAssertEqual(r.status, .contentTooLarge)
            }
            try await client.execute(uri: "/v1/advantages", method: .post, body: body(request)) { r in
                XCTAssertEqual(r.status, .ok, "server stopped serving after bad requests")
            }
        }
    }

    func testMethodsHealthAndToken() async throws {
        try await app(token: "s3cret").test(.live) { client in
            try await client.execute(uri: "/healthz", method: .get) { r in XCTAssertEqual(r.status, .ok) }
            try await client.execute(uri: "/v1/methods", method: .get) { r in XCTAssertEqual(r.status, .unauthorized) }
            // OpenRLHF cannot set headers: its route takes the token in the URL too, the others do not.
            let q = #"{"query": ["1 + 1 = 2"], "labels": ["2"]}"#
            try await client.execute(uri: "/v1/openrlhf/reward?token=s3cret", method: .post, body: body(q)) { r in XCTAssertEqual(r.status, .ok) }
            try await client.execute(uri: "/v1/openrlhf/reward?token=wrong", method: .post, body: body(q)) { r in XCTAssertEqual(r.status, .unauthorized) }
            try await client.execute(uri: "/v1/methods?token=s3cret", method: .get) { r in XCTAssertEqual(r.status, .unauthorized) }
            try await client.execute(uri: "/v1/methods", method: .get, headers: [.authorization: "Bearer s3cret"]) { r in
                XCTAssertEqual(r.status, .ok)
                let methods = try XCTUnwrap(object(r.body)["methods"]?.arrayValue)
                XCTAssertEqual(methods.count, Registry.allMethods.count)
            }
        }
    }

    func testLossRouteReturnsValueMetricsAndGradient() async throws {
        let text = """
        {"loss": "vanilla", "params": {"loss_agg_mode": "token-mean"}, "rollouts": [
          {"group": 0, "tokens": [1, 2], "logprobs": [-1.0, -0.5], "old_logprobs": [-1.0, -0.5], "advantages": [1.0, 1.0]},
          {"group": 0, "tokens": [3], "logprobs": [-2.0], "old_logprobs": [-2.0], "advantages": [-1.0]}]}
        """
        try await app().test(.live) { client in
            try await client.execute(uri: "/v1/losses", method: .post, body: body(text)) { r in
                XCTAssertEqual(r.status, .ok)
                let o = try object(r.body)
                // On-policy PPO: loss = mean(-A) = -1/3, gradient -A / 3 per token.
                XCTAssertEqual(try XCTUnwrap(o["loss"]?.doubleValue), -1.0 / 3, accuracy: 1e-12)
                let g = try XCTUnwrap(o["gradients"]?.arrayValue)
                XCTAssertEqual(try g[0].doubles(field: "g"), [-1.0 / 3, -1.0 / 3])
                XCTAssertEqual(try g[1].doubles(field: "g")[0], 1.0 / 3, accuracy: 1e-15)
            }
        }
    }
}
