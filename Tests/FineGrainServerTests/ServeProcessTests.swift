import FineGrain
import FineGrainServer
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// `finegrain serve` as a real process: SIGTERM while requests are computing and queued lets every one of
/// them finish with 200 before the process exits 0.
final class ServeProcessTests: XCTestCase {
    static var binary: URL {
        if let b = ProcessInfo.processInfo.environment["FINEGRAIN_BIN"] { return URL(fileURLWithPath: b) }
        var dir = Bundle(for: ServeProcessTests.self).bundleURL
        if dir.pathExtension == "xctest" { dir.deleteLastPathComponent() }
        return dir.appendingPathComponent("finegrain")
    }

    /// Starts `finegrain serve --port 0 ARGS` and returns the process and the port it printed.
    static func start(_ args: [String]) throws -> (Process, Int, Pipe) {
        let p = Process()
        p.executableURL = binary
        p.arguments = ["serve", "--port", "0"] + args
        let out = Pipe()
        p.standardOutput = out; p.standardError = FileHandle.nullDevice
        try p.run()
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !text.contains("listening on") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard let line = text.split(separator: "\n").first(where: { $0.contains("listening on") }),
              let port = Int(line.split(separator: ":").last ?? "") else {
            p.terminate()
            throw XCTSkip("serve did not report its port: \(text)")
        }
        return (p, port, out)
    }

    static func get(_ url: URL) -> String? {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var text: String?
        URLSession.shared.dataTask(with: url) { d, _, _ in text = d.map { String(decoding: $0, as: UTF8.self) }; done.signal() }.resume()
        _ = done.wait(timeout: .now() + 10)
        return text
    }

    func testSIGTERMDrainsInFlightRequests() throws {
        guard FileManager.default.fileExists(atPath: Self.binary.path) else { throw XCTSkip("finegrain not built at \(Self.binary.path)") }
        let (p, port, _) = try Self.start(["--max-concurrent", "1"])
        let base = URL(string: "http://127.0.0.1:\(port)")!
        // A GAE request heavy enough (~0.1-1 s in a debug build) that several stay in flight.
        var b = SyntheticBatch.verlBenchmark(responses: 32, maxLength: 1024, group: 4, seed: 5)
        b.oldLogprob = nil; b.refLogprob = nil
        let body = try ServiceRequests.verlAdvantages(estimator: "gae", batch: b, width: 1024, encoding: "json")
        let n = 4
        let results = Results(n)
        let group = DispatchGroup()
        for i in 0 ..< n {
            var req = URLRequest(url: base.appendingPathComponent("v1/advantages"))
            req.httpMethod = "POST"; req.httpBody = body; req.timeoutInterval = 120
            group.enter()
            URLSession.shared.dataTask(with: req) { data, response, error in
                results.set(i, (response as? HTTPURLResponse)?.statusCode ?? -1, data ?? Data(), error)
                group.leave()
            }.resume()
        }
        // Wait until the server holds at least two of them (one computing, the others queued), then SIGTERM.
        let deadline = Date().addingTimeInterval(60)
        var inFlight = 0.0
        while Date() < deadline {
            let m = Self.get(base.appendingPathComponent("metrics")) ?? ""
            inFlight = m.split(separator: "\n").first(where: { $0.hasPrefix("finegrain_requests_in_flight ") })
                .flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
            if inFlight >= 2 { break }
            usleep(5000)
        }
        XCTAssertGreaterThanOrEqual(inFlight, 2, "requests never reached the server together")
        kill(p.processIdentifier, SIGTERM)
        XCTAssertEqual(group.wait(timeout: .now() + 120), .success, "in-flight requests did not finish")
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "serve must exit 0 after draining")
        for i in 0 ..< n {
            let (status, data, error) = results.get(i)
            XCTAssertNil(error, "request \(i): \(String(describing: error))")
            XCTAssertEqual(status, 200, "request \(i) was cut off by SIGTERM: \(String(decoding: data.prefix(200), as: UTF8.self))")
            let rows = (try? JSONValue.parse(data))?["advantages"]?.arrayValue?.count
            XCTAssertEqual(rows, 32, "request \(i) answer incomplete")
        }
        print("SIGTERM with \(Int(inFlight)) requests in flight: all \(n) answered 200, exit \(p.terminationStatus)")
    }
}

/// Thread-safe slots for the URLSession callbacks.
final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [(Int, Data, Error?)]
    init(_ n: Int) { items = Array(repeating: (0, Data(), nil), count: n) }
    func set(_ i: Int, _ status: Int, _ data: Data, _ error: Error?) { lock.lock(); items[i] = (status, data, error); lock.unlock() }
    func get(_ i: Int) -> (Int, Data, Error?) { lock.lock(); defer { lock.unlock() }; return items[i] }
}
