import FineGrain
@testable import FineGrainServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import XCTest

/// Framed bodies (`FramedBody`: JSON part, then raw tensor bytes) through a real socket: the answers equal
/// the base64 route's, the answer is framed the same way, and bad frames are 400 naming the field.
final class FramedBodyRouteTests: XCTestCase {
    func app() -> some ApplicationProtocol {
        var c = ServiceConfiguration()
        c.port = 0
        return FineGrainService.application(c)
    }

    /// 6 full-width rows of 9 tokens with dense values and dense rewards (so both go into the frame).
    func batch() -> (RolloutBatch, width: Int) {
        let width = 9
        var b = RolloutBatch(groups: (0 ..< 6).map { GroupID.int($0 / 3) }, lengths: [Int](repeating: width, count: 6),
                             mask: (0 ..< 54).map { $0 % width < 3 + $0 / width ? 1 : 0 })
        b.tokenReward = (0 ..< 54).map { cos(Double($0)) }
        b.value = (0 ..< 54).map { sin(Double($0)) }
        return (b, width)
    }

    static let framedType = "application/x-finegrain-framed"

    func testFramedAnswersEqualTheBase64Route() async throws {
        let (b, width) = batch()
        for estimator in ["gae", "grpo", "rloo"] {
            let params: [String: JSONValue] = estimator == "gae" ? ["gamma": .number(0.97), "lam": .number(0.9)] : [:]
            let plain = try ServiceRequests.verlAdvantages(estimator: estimator, batch: b, width: width, params: params, encoding: "base64")
            let (framed, n) = try ServiceRequests.verlAdvantagesFramed(estimator: estimator, batch: b, width: width, params: params)
            let header = try XCTUnwrap(JSONValue.parse(framed.prefix(n)).objectValue)
            XCTAssertNotNil(header["verl"]?["values"]?["frame_offset"], "values travel in the frame")
            XCTAssertNotNil(header["verl"]?["token_level_rewards"]?["frame_offset"], "dense rewards travel in the frame")
            XCTAssertEqual(framed.count, n + 2 * 54 * 4)
            try await app().test(.live) { client in
                let expected = try await client.execute(uri: "/v1/advantages", method: .post, body: ByteBuffer(data: plain)) { r in
                    XCTAssertEqual(r.status, .ok)
                    let o = try XCTUnwrap(JSONValue.parse(Data(r.body.readableBytesView)).objectValue)
                    return try ServiceRequests.tensor(try XCTUnwrap(o["advantages"]), field: "advantages").values
                }
                try await client.execute(uri: "/v1/advantages", method: .post,
                                         headers: [.contentType: Self.framedType, FramedBody.headerLength: String(n)],
                                         body: ByteBuffer(data: framed)) { r in
                    XCTAssertEqual(r.status, .ok, String(buffer: r.body))
                    XCTAssertEqual(r.headers[.contentType], Self.framedType)
                    let m = try XCTUnwrap(r.headers[FramedBody.headerLength].flatMap { Int($0) })
                    let bytes = Data(r.body.readableBytesView)
                    let o = try XCTUnwrap(JSONValue.parse(bytes.prefix(m)).objectValue)
                    let frame = ByteBuffer(data: bytes.dropFirst(m))
                    // GAE answers per token through the frame; outcome estimators one value per row, inline.
                    XCTAssertEqual(o["advantages"]?["frame_offset"] != nil, estimator == "gae", estimator)
                    XCTAssertEqual(frame.readableBytes, estimator == "gae" ? 2 * 54 * 4 : 0)
                    let got = try ServiceRequests.tensor(try XCTUnwrap(o["advantages"]), field: "advantages", mask: b.mask, frame: frame).values
                    XCTAssertEqual(got.count, expected.count)
                    for i in 0 ..< got.count { XCTAssertEqual(got[i], expected[i], accuracy: 1e-6, "\(estimator) token \(i)") }
                }
            }
        }
    }

    func testBadFramesAreRefusedNamingTheField() async throws {
        let (b, width) = batch()
        let (framed, n) = try ServiceRequests.verlAdvantagesFramed(estimator: "gae", batch: b, width: width)
        let header = String(decoding: framed.prefix(n), as: UTF8.self)
        let frame = framed.dropFirst(n)
        let shifted = header.replacingOccurrences(of: #""frame_offset":216"#, with: #""frame_offset":300"#)
        XCTAssertNotEqual(shifted, header)
        let cases: [(HTTPFields, Data, String)] = [
            ([.contentType: Self.framedType], framed, "FineGrain-Header-Length"),
            ([.contentType: Self.framedType, FramedBody.headerLength: "abc"], framed, "FineGrain-Header-Length"),
            ([.contentType: Self.framedType, FramedBody.headerLength: String(framed.count + 1)], framed, "body has only"),
            ([.contentType: Self.framedType, FramedBody.headerLength: String(n - 1)], framed, "not a valid JSON object"),
            ([.contentType: Self.framedType, FramedBody.headerLength: String(shifted.utf8.count)], Data(shifted.utf8) + frame,
             "past the end of the frame"),
            ([.contentType: "application/json"], Data(header.utf8), "only a framed body"),
        ]
        try await app().test(.live) { client in
            for (headers, body, needle) in cases {
                try await client.execute(uri: "/v1/advantages", method: .post, headers: headers, body: ByteBuffer(data: body)) { r in
                    XCTAssertEqual(r.status, .badRequest, needle)
                    XCTAssertEqual(r.headers[.contentType], "application/json", needle)
                    let message = try XCTUnwrap(JSONValue.parse(Data(r.body.readableBytesView)).objectValue?["error"]?.stringValue, needle)
                    XCTAssertTrue(message.contains(needle), "\(needle): \(message)")
                }
            }
            // and it keeps serving
            try await client.execute(uri: "/v1/advantages", method: .post,
                                     headers: [.contentType: Self.framedType, FramedBody.headerLength: String(n)], body: ByteBuffer(data: framed)) { r in
                XCTAssertEqual(r.status, .ok)
            }
        }
    }

    /// `POST /v1/losses` framed: inputs from the frame, the gradient back in the answer's frame, equal to
    /// the base64 route's.
    func testFramedLossEqualsTheBase64Route() async throws {
        let (rows, width) = (4, 5)
        let n = rows * width
        let mask = (0 ..< n).map { Double($0 % width < 2 + $0 / width ? 1 : 0) }
        let old = (0 ..< n).map { -1.5 + 0.1 * sin(Double($0)) }, new = (0 ..< n).map { -1.4 + 0.2 * cos(Double($0)) }
        let adv = (0 ..< n).map { sin(0.7 * Double($0)) }
        var frame = Data(), refs: [String: JSONValue] = [:]
        for (key, column) in [("log_prob", new), ("old_log_prob", old), ("advantages", adv)] {
            refs[key] = .object(["dtype": .string("float32"), "shape": .array([.number(Double(rows)), .number(Double(width))]),
                                 "frame_offset": .number(Double(frame.count))])
            for x in column { withUnsafeBytes(of: Float(x).bitPattern.littleEndian) { frame.append(contentsOf: $0) } }
        }
        let maskJSON = WireTensor.encode(mask, rows: rows, width: width, as: .json)
        refs["response_mask"] = maskJSON
        let params: JSONValue = .object(["clip_ratio": .number(0.2)])
        let header = try JSONValue.object(["loss": .string("vanilla"), "params": params, "verl": .object(refs)]).serialized()
        var plainFields: [String: JSONValue] = ["response_mask": maskJSON]
        for (key, column) in [("log_prob", new), ("old_log_prob", old), ("advantages", adv)] {
            plainFields[key] = WireTensor.encode(column.map { Double(Float($0)) }, rows: rows, width: width, as: .base64)
        }
        let plain = try JSONValue.object(["loss": .string("vanilla"), "params": params, "verl": .object(plainFields)]).serialized()
        let framed = header + frame
        try await app().test(.live) { client in
            let (value, gradient) = try await client.execute(uri: "/v1/losses", method: .post, body: ByteBuffer(data: plain)) { r in
                XCTAssertEqual(r.status, .ok, String(buffer: r.body))
                let o = try XCTUnwrap(JSONValue.parse(Data(r.body.readableBytesView)).objectValue)
                return (o["loss"]?.doubleValue, try ServiceRequests.tensor(try XCTUnwrap(o["gradient"]), field: "gradient").values)
            }
            try await client.execute(uri: "/v1/losses", method: .post,
                                     headers: [.contentType: Self.framedType, FramedBody.headerLength: String(header.count)],
                                     body: ByteBuffer(data: framed)) { r in
                XCTAssertEqual(r.status, .ok, String(buffer: r.body))
                let m = try XCTUnwrap(r.headers[FramedBody.headerLength].flatMap { Int($0) })
                let bytes = Data(r.body.readableBytesView)
                let o = try XCTUnwrap(JSONValue.parse(bytes.prefix(m)).objectValue)
                XCTAssertNotNil(o["gradient"]?["frame_offset"])
                XCTAssertEqual(bytes.count - m, n * 4)
                XCTAssertEqual(o["loss"]?.doubleValue, value)
                let got = try ServiceRequests.tensor(try XCTUnwrap(o["gradient"]), field: "gradient", frame: ByteBuffer(data: bytes.dropFirst(m))).values
                XCTAssertEqual(got, gradient)
            }
        }
    }
}
