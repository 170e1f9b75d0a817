import FineGrain
@testable import FineGrainServer
import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest
#if canImport(Glibc)
import Glibc
#endif

private func object(_ b: ByteBuffer) throws -> [String: JSONValue] {
    try XCTUnwrap(JSONValue.parse(Data(b.readableBytesView)).objectValue)
}

/// `/v1/rewards`, the OpenRLHF remote-reward route, `/metrics` and the compute limiter.
final class RewardAndMetricsRouteTests: XCTestCase {
    func testRewardsAndOpenRLHFRoutes() async throws {
        var c = ServiceConfiguration(); c.port = 0
        try await FineGrainService.application(c).test(.live) { client in
            let rewards = #####"{"verifier": "gsm8k", "responses": ["so 3 + 4 = 7\n#### 7", "#### 1,000", "I think 7"], "labels": ["7", "1000", "7"]}"#####
            try await client.execute(uri: "/v1/rewards", method: .post, body: ByteBuffer(string: rewards)) { r in
                XCTAssertEqual(r.status, .ok)
                let o = try object(r.body)
                XCTAssertEqual(try o["rewards"]?.doubles(field: "r"), [1, 1, 0])
                XCTAssertEqual(o["outcomes"], .array([.string("ok"), .string("ok"), .string("ok")]))
                XCTAssertEqual(o["timeouts"], .number(0))
            }
            // OpenRLHF sends prompt + response as `query`; the prompt is cut off before scoring, so the "2"
            // inside the prompt does not count as the answer.
            let openrlhf = #"{"query": ["What is 2 + 2? The answer is \\boxed{4}", "What is 2 + 3? 2"], "prompts": ["What is 2 + 2?", "What is 2 + 3?"], "labels": ["4", "5"]}"#
            for path in ["/v1/openrlhf/reward", "/get_reward"] {
                try await client.execute(uri: path, method: .post, body: ByteBuffer(string: openrlhf)) { r in
                    XCTAssertEqual(r.status, .ok)
                    let o = try object(r.body)
                    XCTAssertEqual(try o["rewards"]?.doubles(field: "r"), [1, 0])
                    XCTAssertEqual(try o["scores"]?.doubles(field: "s"), [1, 0])
                    XCTAssertEqual(try o["extra_logs"]?.objectValue?["verifier_timeout"]?.doubles(field: "t"), [0, 0])
                }
            }
            let bad: [(String, String, HTTPResponse.Status, String)] = [
                ("/v1/rewards", #"{"verifier": "sympy", "responses": [], "labels": []}"#, .notFound, "unknown verifier 'sympy'"),
                ("/v1/rewards", #"{"verifier": "gsm8k", "responses": ["a"], "labels": []}"#, .badRequest, "invalid field 'labels'"),
                ("/v1/openrlhf/reward", #"{"query": ["a"], "labels": [1]}"#, .badRequest, "labels[0]"),
                ("/v1/rewards", #"{"verifier": "gsm8k", "responses": ["a"], "labels": ["a"], "item_timeout_s": 0}"#, .badRequest, "item_timeout_s"),
                ("/v1/openrlhf/reward", #"{"query": ["a"], "labels": ["a"], "item_timeout_s": "soon"}"#, .badRequest, "item_timeout_s"),
            ]
            for (path, text, status, fragment) in bad {
                try await client.execute(uri: path, method: .post, body: ByteBuffer(string: text)) { r in
                    XCTAssertEqual(r.status, status)
                    XCTAssertTrue((try object(r.body)["error"]?.stringValue ?? "").contains(fragment), fragment)
                }
            }
        }
    }

    func testMetricsCountRequestsTokensAndLatency() async throws {
        var c = ServiceConfiguration(); c.port = 0
        let metrics = ServiceMetrics()
        let request = #"{"estimator": "grpo", "rollouts": [{"group": 0, "tokens": [1, 2, 3], "reward": 1}, {"group": 0, "tokens": [4], "reward": 0}]}"#
        try await FineGrainService.application(c, metrics: metrics).test(.live) { client in
            for _ in 0 ..< 3 {
                try await client.execute(uri: "/v1/advantages", method: .post, body: ByteBuffer(string: request)) { XCTAssertEqual($0.status, .ok) }
            }
            try await client.execute(uri: "/v1/advantages", method: .post, body: ByteBuffer(string: "{")) { XCTAssertEqual($0.status, .badRequest) }
            // A JSON-lines request refused for its query (no estimator) is counted too.
            try await client.execute(uri: "/v1/advantages", method: .post, headers: [.contentType: "application/x-ndjson"],
                                     body: ByteBuffer(string: "{}\n")) { XCTAssertEqual($0.status, .badRequest) }
            try await client.execute(uri: "/metrics", method: .get) { r in
                XCTAssertEqual(r.status, .ok)
                let text = String(buffer: r.body)
                XCTAssertTrue(text.contains(#"finegrain_http_requests_total{route="advantages",status="200"} 3"#), text)
                XCTAssertTrue(text.contains(#"finegrain_http_requests_total{route="advantages",status="400"} 2"#), text)
                XCTAssertTrue(text.contains(#"finegrain_tokens_processed_total{route="advantages"} 12"#), text)
                XCTAssertTrue(text.contains(#"finegrain_http_request_duration_seconds_count{route="advantages"} 5"#), text)
            }
        }
    }

    func testLimiterQueuesThenRefuses() async throws {
        let limiter = ComputeLimiter(permits: 1, maxQueued: 1)
        try await limiter.acquire()                 // running 1
        let waiter = Task { try await limiter.acquire(); return "got it" }
        try await Task.sleep(for: .milliseconds(50)) // let the waiter queue
        do {
            try await limiter.acquire()
            XCTFail("a third request must be refused while 1 runs and 1 waits")
        } catch is ComputeLimiter.Overloaded {}
        limiter.release()                     // hands the permit to the waiter
        let result = try await waiter.value
        XCTAssertEqual(result, "got it")
        limiter.release()
        try await limiter.acquire()                 // free again
        limiter.release()
    }
}

/// Clients that misbehave at the HTTP level: a connection that promises a body and dies half-way, and
/// garbage instead of HTTP. The server answers what it can and keeps serving everyone else.
final class BrokenClientTests: XCTestCase {
    /// Writes `bytes` to 127.0.0.1:`port` on a raw socket, then closes it without reading.
    static func sendAndHangUp(_ bytes: String, port: Int) throws {
        let fd = try connectRaw(port: port)
        defer { close(fd) }
        _ = bytes.withCString { send(fd, $0, strlen($0), 0) }
    }

    /// A raw TCP socket connected to 127.0.0.1:`port` (5 s receive timeout).
    static func connectRaw(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw XCTSkip("no socket") }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        XCTAssertEqual(ok, 0, "connect failed")
        return fd
    }

    func testTruncatedAndGarbageConnectionsDoNotHurtTheServer() async throws {
        var c = ServiceConfiguration(); c.port = 0
        let good = #"{"estimator": "grpo", "rollouts": [{"group": 0, "tokens": [1], "reward": 1}, {"group": 0, "tokens": [2], "reward": 0}]}"#
        try await FineGrainService.application(c).test(.live) { client in
            let port = try XCTUnwrap(client.port)
            // Content-Length 5000, 20 bytes sent, then the connection closes.
            try Self.sendAndHangUp("POST /v1/advantages HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{\"estimator\": \"grpo\"", port: port)
            try Self.sendAndHangUp("\u{01}\u{02} this is not HTTP\r\n\r\n", port: port)
            try await Task.sleep(for: .milliseconds(100))
            for _ in 0 ..< 3 {
                try await client.execute(uri: "/v1/advantages", method: .post, body: ByteBuffer(string: good)) { r in
                    XCTAssertEqual(r.status, .ok, "server stopped serving after a broken client")
                }
            }
        }
    }
}

/// `Expect: 100-continue` (curl sends it for bodies over 1 MB and otherwise waits a second): the interim
/// answer comes before the body is sent, then the real answer.
final class ExpectContinueTests: XCTestCase {
    func testInterimAnswerBeforeTheBody() async throws {
        var c = ServiceConfiguration(); c.port = 0
        let body = #"{"estimator": "grpo", "rollouts": [{"group": 0, "tokens": [1], "reward": 1}, {"group": 0, "tokens": [2], "reward": 0}]}"#
        try await FineGrainService.application(c).test(.live) { client in
            let port = try XCTUnwrap(client.port)
            let fd = try BrokenClientTests.connectRaw(port: port)
            defer { close(fd) }
            func read() -> String {
                var buf = [UInt8](repeating: 0, count: 4096)
                let n = recv(fd, &buf, buf.count, 0)
                return n > 0 ? String(decoding: buf[0 ..< n], as: UTF8.self) : ""
            }
            let head = "POST /v1/advantages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
            _ = head.withCString { send(fd, $0, strlen($0), 0) }
            let interim = read()
            XCTAssertTrue(interim.hasPrefix("HTTP/1.1 100 Continue"), "before the body: \(interim)")
            _ = body.withCString { send(fd, $0, strlen($0), 0) }
            var answer = read()
            while !answer.contains("\"advantages\"") { let more = read(); if more.isEmpty { break }; answer += more }
            XCTAssertTrue(answer.contains("HTTP/1.1 200 OK"), answer)
            XCTAssertTrue(answer.contains("\"advantages\""), answer)
        }
    }
}

final class UnknownRouteTests: XCTestCase {
    func testUnknownRoutesAndWrongMethodsAnswerJSON() async throws {
        var c = ServiceConfiguration(); c.port = 0
        try await FineGrainService.application(c).test(.live) { client in
            try await client.execute(uri: "/v2/nothing", method: .post) { r in
                XCTAssertEqual(r.status, .notFound)
                let message = (try? JSONValue.parse(Data(r.body.readableBytesView)))?["error"]?.stringValue ?? ""
                XCTAssertTrue(message.contains("no route POST /v2/nothing"), message)
                XCTAssertTrue(message.contains("POST /v1/advantages"), message)
            }
            try await client.execute(uri: "/v1/advantages", method: .get) { r in
                XCTAssertEqual(r.status, .methodNotAllowed)
                let message = (try? JSONValue.parse(Data(r.body.readableBytesView)))?["error"]?.stringValue ?? ""
                XCTAssertTrue(message.contains("takes POST"), message)
            }
        }
    }
}
