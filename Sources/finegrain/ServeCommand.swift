import ArgumentParser
import FineGrain
import FineGrainServer
import Foundation
import Hummingbird

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the registry over HTTP/JSON: POST /v1/advantages, POST /v1/losses, GET /v1/methods, GET /healthz.")

    @Option(help: "Address to bind (loopback by default).") var host = "127.0.0.1"
    @Option(help: "Port.") var port = 8321
    @Option(help: "Bearer token required on every route but /healthz (default: $FINEGRAIN_TOKEN, or none).") var token: String?
    @Option(help: "Largest accepted request body in MiB.") var maxBodyMb = 256

    func run() async throws {
        var c = ServiceConfiguration()
        c.host = host; c.port = port; c.maxBodyBytes = maxBodyMb << 20
        c.bearerToken = token ?? ProcessInfo.processInfo.environment["FINEGRAIN_TOKEN"]
        CLILog.logger.info("finegrain serve on http://\(host):\(port) (\(Registry.estimators.count) estimators, \(Registry.losses.count) losses)")
        try await FineGrainService.application(c).runService()
    }
}
