import ArgumentParser
import AsyncHTTPClient
import FineGrain
import FineGrainServer
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// `finegrain-service-bench`: the service's round-trip cost and its behaviour under load, measured from a
/// real HTTP client (AsyncHTTPClient) over loopback.
///
///     swift build -c release --product finegrain --product finegrain-service-bench
///     .build/release/finegrain serve --port 8321 &
///     .build/release/finegrain-service-bench roundtrip --url http://127.0.0.1:8321
///     .build/release/finegrain-service-bench load --url http://127.0.0.1:8321
///
/// Without `--url` it starts the service in its own process on a free port (client and server then share
/// the machine's cores, as they do with a separate process on a 2-core machine anyway).
///
/// A separate executable from `finegrain` on purpose: the HTTP client pulls in swift-nio-ssl (BoringSSL),
/// which would add minutes to the release build of the README's first command.
@main
struct ServiceBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finegrain-service-bench",
        abstract: "Round-trip cost and load behaviour of `finegrain serve`.",
        subcommands: [RoundTrip.self, Load.self])

    /// The same allocator setting as `finegrain serve`, so in-process and served timings compare like with like.
    static func main() async {
        ProcessTuning.keepLargeFreedBlocks()
        do {
            var command = try parseAsRoot()
            if var async = command as? AsyncParsableCommand { try await async.run() } else { try command.run() }
        } catch {
            exit(withError: error)
        }
    }
}

struct Target: ParsableArguments {
    @Option(help: "Server to measure: http://host:port or unix:/path/to.sock (default: start one in this process on a free port).")
    var url: String?
}

/// AsyncHTTPClient's URL for `path` on `base` (`unix:/p` becomes `http+unix://<%-encoded /p>/path`).
func ahcURL(_ base: String, _ path: String) -> String {
    guard base.hasPrefix("unix:") else { return base + path }
    let socket = String(base.dropFirst("unix:".count))
    return "http+unix://" + (socket.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? socket) + path
}

/// A server to talk to: the one at `--url`, or an in-process one on a free port.
func withServer<T>(_ target: Target, sharedMemoryDirectory: String? = nil, _ body: (String) async throws -> T) async throws -> T {
    if let url = target.url { return try await body(url) }
    var config = ServiceConfiguration()
    config.port = 0
    config.sharedMemoryDirectory = sharedMemoryDirectory
    let (stream, continuation) = AsyncStream<Int>.makeStream()
    var logger = Logger(label: "finegrain-service-bench")
    logger.logLevel = .warning
    let app = FineGrainService.application(config, logger: logger) { port in continuation.yield(port) }
    let services = ServiceGroup(configuration: .init(services: [.init(service: app)], logger: logger))
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await services.run() }
        var it = stream.makeAsyncIterator()
        guard let port = await it.next() else { throw ValidationError("server did not start") }
        let result = try await body("http://127.0.0.1:\(port)")
        await services.triggerGracefulShutdown()
        try await group.waitForAll()
        return result
    }
}

func makeClient(connections: Int) -> HTTPClient {
    var c = HTTPClient.Configuration()
    c.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = connections
    c.timeout.read = .seconds(300)
    return HTTPClient(eventLoopGroupProvider: .singleton, configuration: c)
}

/// POSTs `body` and collects the whole answer; returns the status and the answer's bytes.
func post(_ client: HTTPClient, _ url: String, _ body: ByteBuffer, headerLength: Int? = nil) async throws -> (Int, ByteBuffer) {
    var request = HTTPClientRequest(url: url)
    request.method = .POST
    request.headers.add(name: "Content-Type", value: headerLength == nil ? "application/json" : "application/x-finegrain-framed")
    if let headerLength { request.headers.add(name: "FineGrain-Header-Length", value: String(headerLength)) }
    request.body = .bytes(body)
    let response = try await client.execute(request, timeout: .seconds(300))
    let answer = try await response.body.collect(upTo: 1 << 30)
    return (Int(response.status.code), answer)
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    return sorted[min(sorted.count - 1, Int((p * Double(sorted.count - 1)).rounded()))]
}

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }

func median(_ xs: [Double]) -> Double { percentile(xs.sorted(), 0.5) }

/// The peak resident set of this process (VmHWM), in MB.
func peakRSSMB() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return .nan }
    return kb / 1024
}
