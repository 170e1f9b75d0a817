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
}
