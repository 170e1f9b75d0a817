import FineGrain
@testable import FineGrainServer
import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest

/// The same-host shared-memory transport (`SharedMemory`, `finegrain serve --shm-dir`) through a real
/// socket: tensors sent by reference and answers written into the client's file equal the base64 route;
/// bad references are 400 naming the field, and a server without a directory refuses them.
final class SharedMemoryRouteTests: XCTestCase {
    var dir = ""

    override func setUp() {
        dir = NSTemporaryDirectory() + "fg-shm-\(getpid())-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func app(shared: Bool) -> some ApplicationProtocol {
        var c = ServiceConfiguration()
        c.port = 0
        c.sharedMemoryDirectory = shared ? dir : nil
        return FineGrainService.application(c)
    }

    /// 6 full-width rows of 9 tokens, dense values, every row different.
    func batch() -> (RolloutBatch, width: Int) {
        let width = 9
        var b = RolloutBatch(groups: (0 ..< 6).map { GroupID.int($0 / 3) }, lengths: [Int](repeating: width, count: 6),
                             mask: (0 ..< 54).map { $0 % width < 3 + $0 / width ? 1 : 0 })
        b.tokenReward = (0 ..< 54).map { $0 % width == 8 ? Double($0 % 5) - 2 : 0 }
        b.value = (0 ..< 54).map { sin(Double($0)) }
        return (b, width)
    }

    func post(_ body: Data, shared: Bool = true) async throws -> (HTTPResponse.Status, [String: JSONValue]) {
        try await app(shared: shared).test(.live) { client in
            try await client.execute(uri: "/v1/advantages", method: .post, body: ByteBuffer(data: body)) { r in
                (r.status, try XCTUnwrap(JSONValue.parse(Data(r.body.readableBytesView)).objectValue))
            }
        }
    }

    /// Reads a `{"shm", "offset", "shape"}` float32 answer tensor back from the file.
    func read(_ v: JSONValue?) throws -> [Double] {
        let o = try XCTUnwrap(v?.objectValue)
        let t = try SharedMemory(directory: dir).decode(o, field: "answer", rank: 2)
        return t.values
    }

    func testReferencesEqualTheBase64Route() async throws {
        let (b, width) = batch()
        for estimator in ["gae", "grpo"] {
            let params: [String: JSONValue] = estimator == "gae" ? ["gamma": .number(0.97), "lam": .number(0.9)] : [:]
            let reference = try ServiceRequests.verlAdvantages(estimator: estimator, batch: b, width: width, params: params, encoding: "base64")
            let (s0, base) = try await post(reference)
            XCTAssertEqual(s0, .ok)
            let viaShm = try ServiceRequests.verlAdvantages(estimator: estimator, batch: b, width: width, params: params, encoding: "shm",
                                                            sharedMemory: (dir, "batch-\(estimator)"))
            XCTAssertLessThan(viaShm.count, 1200, "the body carries references, not tensors")
            let (s1, shm) = try await post(viaShm)
            XCTAssertEqual(s1, .ok, "\(shm)")
            let expected = try ServiceRequests.tensor(try XCTUnwrap(base["advantages"]), field: "advantages").values
            // GAE answers per token (written into the answer file); GRPO one value per row (inline).
            let got = estimator == "gae" ? try read(shm["advantages"])
                                         : try ServiceRequests.tensor(try XCTUnwrap(shm["advantages"]), field: "advantages", mask: b.mask).values
            XCTAssertEqual(shm["advantages"]?["shm"] != nil, estimator == "gae")
            XCTAssertEqual(got.count, expected.count)
            for i in 0 ..< got.count { XCTAssertEqual(got[i], expected[i], accuracy: 1e-6, "\(estimator) token \(i)") }
            if estimator == "gae" {   // returns follow advantages in the same file
                let returns = try read(shm["returns"])
                let want = try ServiceRequests.tensor(try XCTUnwrap(base["returns"]), field: "returns").values
                for i in 0 ..< want.count { XCTAssertEqual(returns[i], want[i], accuracy: 1e-6, "returns token \(i)") }
                XCTAssertEqual(shm["returns"]?["offset"]?.doubleValue, Double(b.count * width * 4))
            }
        }
    }

    func testBadReferencesAreRefusedNamingTheField() async throws {
        let (b, width) = batch()
        let good = try ServiceRequests.verlAdvantages(estimator: "gae", batch: b, width: width, encoding: "shm", sharedMemory: (dir, "good"))
        let text = String(decoding: good, as: UTF8.self)
        let cases: [(String, String)] = [
            (text.replacingOccurrences(of: #""shm":"good""#, with: #""shm":"..\/etc\/passwd""#), "verl.values.shm"),
            (text.replacingOccurrences(of: #""shm":"good""#, with: #""shm":"missing""#), "cannot open 'missing'"),
            (text.replacingOccurrences(of: #""offset":0,"shape""#, with: #""offset":100,"shape""#), "past the end of 'good'"),
            (text.replacingOccurrences(of: #""capacity":432"#, with: #""capacity":4000"#), "past the end of 'good-answer'"),
            (text.replacingOccurrences(of: #""capacity":432"#, with: #""capacity":100"#), "answer_shm.capacity"),
        ]
        XCTAssertTrue(text.contains(#""capacity":432"#), text)   // 2 tensors x 54 tokens x 4 bytes
        for (body, needle) in cases {
            XCTAssertNotEqual(body, text, "case \(needle) did not change the body")
            let (status, o) = try await post(Data(body.utf8))
            XCTAssertEqual(status, .badRequest, needle)
            XCTAssertTrue(o["error"]?.stringValue?.contains(needle) == true, "\(needle): \(o)")
        }
        let (status, o) = try await post(good, shared: false)
        XCTAssertEqual(status, .badRequest)
        XCTAssertTrue(o["error"]?.stringValue?.contains("--shm-dir") == true, "\(o)")
    }

    func testSymbolicLinksAreNotFollowed() throws {
        let outside = dir + "-outside"
        try Data(count: 64).write(to: URL(fileURLWithPath: outside))
        defer { try? FileManager.default.removeItem(atPath: outside) }
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: outside)
        XCTAssertThrowsError(try SharedMemory(directory: dir).openFile("link", offset: 0, count: 4, writable: false, field: "f")) { e in
            XCTAssertTrue("\(e)".contains("cannot open 'link'"), "\(e)")
        }
    }

    /// A file its owner truncates after the check is an error, not a crash (reads go through pread).
    func testTruncatedFileIsAnError() throws {
        let path = dir + "/shrinks"
        try Data(count: 4 * 100_000).write(to: URL(fileURLWithPath: path))
        let file = try SharedMemory(directory: dir).openFile("shrinks", offset: 0, count: 4 * 100_000, writable: false, field: "verl.values.shm")
        XCTAssertEqual(truncate(path, 1000), 0)
        var seen = 0
        XCTAssertThrowsError(try file.read(offset: 0, count: 4 * 100_000, field: "verl.values.shm") { b, _ in seen += b.count }) { e in
            XCTAssertTrue("\(e)".contains("ended at byte 1000"), "\(e)")
        }
        XCTAssertEqual(seen, 0)
    }

    /// A framed request that asks for its answer in shared memory: the answer is framed with an empty frame.
    func testFramedRequestWithAnswerInSharedMemory() async throws {
        let (b, width) = batch()
        let (framed, n) = try ServiceRequests.verlAdvantagesFramed(estimator: "gae", batch: b, width: width)
        var header = try XCTUnwrap(JSONValue.parse(framed.prefix(n)).objectValue)
        try Data(count: 2 * 54 * 4).write(to: URL(fileURLWithPath: dir + "/answers"))
        header["answer_shm"] = .object(["name": .string("answers"), "offset": .number(0), "capacity": .number(2 * 54 * 4)])
        let head = try JSONValue.object(header).serialized()
        let body = head + framed.dropFirst(n)
        let o = try await app(shared: true).test(.live) { client in
            try await client.execute(uri: "/v1/advantages", method: .post,
                                     headers: [.contentType: FramedBody.mediaType, FramedBody.headerLength: String(head.count)],
                                     body: ByteBuffer(data: body)) { r in
                XCTAssertEqual(r.status, .ok, String(buffer: r.body))
                XCTAssertEqual(r.headers[FramedBody.headerLength], String(r.body.readableBytes))   // nothing in the frame
                return try XCTUnwrap(JSONValue.parse(Data(r.body.readableBytesView)).objectValue)
            }
        }
        XCTAssertEqual(o["advantages"]?["shm"]?.stringValue, "answers")
        XCTAssertEqual(try read(o["advantages"]).count, 54)
    }
}
