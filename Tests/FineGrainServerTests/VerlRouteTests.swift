import FineGrain
@testable import FineGrainServer
import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest

/// The verl-layout form of `/v1/advantages` through a real socket: both encodings equal the in-process
/// registry on the same full-width batch; malformed tensors are 400 with the field named.
final class VerlRouteTests: XCTestCase {
    func app() -> some ApplicationProtocol {
        var c = ServiceConfiguration()
        c.port = 0
        return FineGrainService.application(c)
    }

    /// A padded batch of uneven rows with a masked hole, 3 groups (one of them a singleton).
    func batch() -> (RolloutBatch, width: Int) {
        let width = 7
        var b = SyntheticBatch.verlBenchmark(responses: 7, maxLength: width, group: 3, seed: 11)
        b.mask[2] = 0
        // Full width as the route builds it: pad every row to `width` with mask 0 and zeros.
        var lengths = [Int](), mask = [UInt8](), rewards = [Double](), values = [Double]()
        for r in 0 ..< b.count {
            lengths.append(width)
            for t in 0 ..< width {
                let inRow = t < b.length(r)
                mask.append(inRow ? b.mask[b.offsets[r] + t] : 0)
                rewards.append(inRow ? b.tokenReward![b.offsets[r] + t] : 0)
                values.append(inRow ? b.value![b.offsets[r] + t] : 0)
            }
        }
        var full = RolloutBatch(groups: b.group.map { .string(b.groupIDs[$0].description) }, lengths: lengths, mask: mask)
        full.tokenReward = rewards; full.value = values
        return (full, width)
    }

    func testBothEncodingsEqualTheRegistry() async throws {
        let (b, width) = batch()
        for (estimator, params) in [("grpo", [String: JSONValue]()), ("gae", ["gamma": .number(0.99), "lam": .number(0.9)]),
                                    ("rloo", [:])] {
            let expected = try Registry.advantages(estimator, batch: b,
                                                   params: try Endpoints.decodeParams(.object(params)))
            for encoding in ["json", "base64", "short"] {
                let body = try ServiceRequests.verlAdvantages(estimator: estimator, batch: b, width: width, params: params, encoding: encoding)
                try await app().test(.live) { client in
                    try await client.execute(uri: "/v1/advantages", method: .post, body: ByteBuffer(data: body)) { r in
                        XCTAssertEqual(r.status, .ok, String(buffer: r.body))
                        let o = try XCTUnwrap(JSONValue.parse(Data(r.body.readableBytesView)).objectValue)
                        let adv = try ServiceRequests.tensor(try XCTUnwrap(o["advantages"]), field: "advantages", mask: b.mask)
                        if encoding == "short" {   // outcome estimators answer one value per row, GAE per token
                            XCTAssertEqual(o["advantages"]?["row_values"] != nil, estimator != "gae", estimator)
                        }
                        XCTAssertEqual(adv.shape, [b.count, width])
                        // base64 answers are float32; JSON answers carry the Double values.
                        let tol = encoding == "json" ? 1e-12 : 1e-6
                        for i in 0 ..< expected.advantages.count {
                            XCTAssertEqual(adv.values[i], expected.advantages[i], accuracy: tol * max(1, abs(expected.advantages[i])),
                                           "\(estimator) \(encoding) token \(i)")
                        }
                        if let ret = expected.returns {
                            let got = try ServiceRequests.tensor(try XCTUnwrap(o["returns"] ?? o["advantages"]), field: "returns", mask: b.mask)
                            for i in 0 ..< ret.count { XCTAssertEqual(got.values[i], ret[i], accuracy: tol * max(1, abs(ret[i]))) }
                        }
                    }
                }
            }
            print("verl route: \(estimator) json, base64 and short forms equal the registry on \(b.count) x \(width)")
        }
    }

    func testMalformedTensorsNameTheField() async throws {
        let m = #""response_mask": [[1, 1], [1, 0]]"#
        let cases: [(String, HTTPResponse.Status, String)] = [
            (#"{"estimator": "grpo", "verl": {"response_mask": [[1, 1]], "token_level_rewards": {"dtype": "float16", "shape": [1, 2], "data": "AAAAAA=="}}}"#,
             .badRequest, "verl.token_level_rewards.dtype"),
            (#"{"estimator": "grpo", "verl": {"response_mask": [[1, 1]], "token_level_rewards": {"dtype": "float32", "shape": [1, 2], "data": "AAAA"}}}"#,
             .badRequest, "has 3 bytes; shape [1, 2] of float32 needs 8"),
            (#"{"estimator": "grpo", "verl": {"response_mask": [[1, 1]], "token_level_rewards": {"dtype": "float32", "shape": [1, 2], "data": "@@@"}}}"#,
             .badRequest, "not standard base64"),
            ("{\"estimator\": \"grpo\", \"verl\": {\(m), \"token_level_rewards\": [[0, 1], [0]]}}", .badRequest, "row 1 has 1 columns"),
            ("{\"estimator\": \"grpo\", \"verl\": {\(m), \"token_level_rewards\": [[0, \"NaN\"], [0, 0]]}}", .badRequest, "'verl.token_level_rewards': row 0 column 1 is nan; must be finite"),
            ("{\"estimator\": \"grpo\", \"verl\": {\"response_mask\": [[1, 2]], \"token_level_rewards\": [[0, 1]]}}", .badRequest, "must be 0 or 1"),
            ("{\"estimator\": \"grpo\", \"verl\": {\(m), \"token_level_rewards\": [[0, 1], [0, 0]], \"index\": [\"a\"]}}", .badRequest, "1 group ids for 2 rows"),
            ("{\"estimator\": \"gae\", \"verl\": {\(m), \"token_level_rewards\": [[0, 1], [0, 0]]}}", .badRequest, "missing field 'values'"),
            ("{\"estimator\": \"nope\", \"verl\": {\(m), \"token_level_rewards\": [[0, 1], [0, 0]]}}", .notFound, "unknown estimator 'nope'"),
            ("{\"estimator\": \"grpo\", \"encoding\": \"xml\", \"verl\": {\(m), \"token_level_rewards\": [[0, 1], [0, 0]]}}", .badRequest, "encoding"),
        ]
        try await app().test(.live) { client in
            for (text, status, fragment) in cases {
                try await client.execute(uri: "/v1/advantages", method: .post, body: ByteBuffer(string: text)) { r in
                    XCTAssertEqual(r.status, status, text)
                    let message = (try? JSONValue.parse(Data(r.body.readableBytesView)))?["error"]?.stringValue ?? ""
                    XCTAssertTrue(message.contains(fragment), "\(message) lacks \(fragment)")
                }
            }
        }
    }

    /// `/v1/losses` in the verl form equals the registry on the same full-width batch (value, metrics,
    /// gradient), in both encodings; a NaN or a missing input is a 400 naming the field.
    func testLossRouteEqualsTheRegistry() async throws {
        let (b, width) = batch()
        var rng = SplitMix64(seed: 4)
        let old = (0 ..< b.tokenCount).map { _ in -1.5 + 0.3 * rng.normal() }
        let new = old.map { $0 + 0.2 * rng.normal() }
        let adv = (0 ..< b.tokenCount).map { _ in rng.normal() }
        var input = LossInput(offsets: b.offsets, mask: b.mask)
        input.logprob = new; input.oldLogprob = old; input.advantages = adv
        let params: [String: JSONValue] = ["loss_agg_mode": .string("seq-mean-token-mean"), "clip_ratio_high": .number(0.28)]
        let expected = try Registry.loss("vanilla", input: input, params: try Endpoints.decodeParams(.object(params)))
        func rows(_ x: [Double]) -> JSONValue { .array((0 ..< b.count).map { r in .numbers(Array(x[r * width ..< (r + 1) * width])) }) }
        for encoding in ["json", "base64"] {
            let t = { (x: [Double]) in encoding == "json" ? rows(x) : WireTensor.encode(x, rows: b.count, width: width, as: .base64) }
            let doc: JSONValue = .object(["loss": .string("vanilla"), "params": .object(params), "encoding": .string(encoding), "verl": .object([
                "response_mask": rows(b.mask.map(Double.init)), "log_prob": t(new), "old_log_prob": t(old), "advantages": t(adv)])])
            try await app().test(.live) { client in
                try await client.execute(uri: "/v1/losses", method: .post, body: ByteBuffer(data: try doc.serialized())) { r in
                    XCTAssertEqual(r.status, .ok, String(buffer: r.body))
                    let o = try XCTUnwrap(JSONValue.parse(Data(r.body.readableBytesView)).objectValue)
                    // base64 inputs are float32, so the value moves by float32 rounding of the inputs.
                    let tol = encoding == "json" ? 1e-12 : 1e-5
                    XCTAssertEqual(try XCTUnwrap(o["loss"]?.doubleValue), expected.value, accuracy: tol)
                    XCTAssertEqual(try XCTUnwrap(o["metrics"]?["pg_clipfrac"]?.doubleValue), expected.metrics["pg_clipfrac"]!, accuracy: 1e-6)
                    let g = try ServiceRequests.tensor(try XCTUnwrap(o["gradient"]), field: "gradient")
                    XCTAssertEqual(g.shape, [b.count, width])
                    for i in 0 ..< expected.gradient.count {
                        XCTAssertEqual(g.values[i], expected.gradient[i], accuracy: 1e-4 * max(1e-3, abs(expected.gradient[i])), "token \(i)")
                    }
                }
            }
        }
        let m = #""response_mask": [[1, 1]], "log_prob": [[-1, -1]], "old_log_prob": [[-1, -1]]"#
        let cases: [(String, String)] = [
            ("{\"loss\": \"vanilla\", \"verl\": {\(m), \"advantages\": [[0, \"NaN\"]]}}", "'verl.advantages': row 0 column 1 is nan"),
            ("{\"loss\": \"vanilla\", \"verl\": {\(m)}}", "advantages"),
            ("{\"loss\": \"vanilla\", \"verl\": {\(m), \"advantages\": [[0, 1]], \"logits\": [[0, 1]]}}", "verl.logits"),
        ]
        try await app().test(.live) { client in
            for (text, fragment) in cases {
                try await client.execute(uri: "/v1/losses", method: .post, body: ByteBuffer(string: text)) { r in
                    XCTAssertEqual(r.status, .badRequest, text)
                    let message = (try? JSONValue.parse(Data(r.body.readableBytesView)))?["error"]?.stringValue ?? ""
                    XCTAssertTrue(message.contains(fragment), "\(message) lacks \(fragment)")
                }
            }
        }
        print("verl loss route: vanilla json and base64 equal the registry on \(b.count) x \(width)")
    }
}
