import ArgumentParser
import FineGrain
import FineGrainServer
import Foundation
import Hummingbird

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the registry over HTTP/JSON for verl, TRL and OpenRLHF.",
        discussion: """
        Routes: POST /v1/advantages (rollout objects, rollout JSON lines, or a verl-layout batch with JSON, base64,
        framed (application/x-finegrain-framed) or --shm-dir tensors), POST /v1/losses,
        POST /v1/rewards, POST /v1/openrlhf/reward (OpenRLHF --reward.remote_url; also /get_reward), GET /v1/methods,
        GET /healthz, GET /metrics (Prometheus). SIGTERM/SIGINT drain in-flight requests before exit.
        """)

    @Option(help: "Address to bind (loopback by default).") var host = "127.0.0.1"
    @Option(help: "Port (0 = any free port; the bound port is printed).") var port = 8321
    @Option(help: "Listen on this Unix domain socket instead of --host/--port (same-machine trainers; a stale socket file is replaced).")
    var unix: String?
    @Option(help: "Bearer token required on every route but /healthz and /metrics (default: $FINEGRAIN_TOKEN, or none).") var token: String?
    @Option(help: "Largest accepted request body in MiB.") var maxBodyMb = 256
    @Option(help: "Requests computing at once (default: the number of cores).") var maxConcurrent: Int?
    @Option(help: "Requests waiting for a compute slot before new ones are answered 503.") var maxQueued = 256
    @Option(help: "Verifier of the OpenRLHF reward route: \(AnswerVerifier.allCases.map(\.rawValue).joined(separator: ", ")).")
    var openrlhfVerifier = AnswerVerifier.mathAnswer.rawValue
    @Option(help: "Largest single socket read in KiB (NIO's default is 64; large batches arrive in fewer chunks with more).")
    var maxReadKb = 1024
    @Option(help: "Deadline of each reward item in seconds, counted from the start of its own work (requests may set item_timeout_s).")
    var rewardItemTimeout = 10.0
    @Option(help: "Same-host transport: accept tensors by reference to files in this directory and write answers there (e.g. /dev/shm/finegrain; off by default).")
    var shmDir: String?

    func run() async throws {
        var c = ServiceConfiguration()
        c.host = host; c.port = port; c.maxBodyBytes = maxBodyMb << 20
        c.bearerToken = token ?? ProcessInfo.processInfo.environment["FINEGRAIN_TOKEN"]
        if let maxConcurrent {
            guard maxConcurrent > 0 else { throw ValidationError("--max-concurrent must be positive") }
            c.maxConcurrent = maxConcurrent
        }
        guard maxQueued >= 0 else { throw ValidationError("--max-queued must be >= 0") }
        c.maxQueued = maxQueued
        guard maxReadKb >= 1 else { throw ValidationError("--max-read-kb must be >= 1") }
        c.maxReadBytes = maxReadKb << 10
        guard rewardItemTimeout > 0, rewardItemTimeout.isFinite else { throw ValidationError("--reward-item-timeout must be positive") }
        c.rewardItemTimeout = .nanoseconds(Int64(rewardItemTimeout * 1e9))
        do { c.openRLHFVerifier = try AnswerVerifier.named(openrlhfVerifier) } catch { throw ValidationError("--openrlhf-verifier: \(error)") }
        if let shmDir {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: shmDir, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("--shm-dir: '\(shmDir)' is not a directory")
            }
            c.sharedMemoryDirectory = shmDir
        }
        if let unix {
            try UnixSocketFile.prepare(unix)
            c.unixSocketPath = unix
        }
        let (host, unixPath) = (host, unix)
        let app = FineGrainService.application(c) { bound in
            // One line on stdout that scripts (and the Python tests) wait for.
            let address = unixPath.map { "unix:\($0)" } ?? "http://\(host):\(bound)"
            FileHandle.standardOutput.write(Data("finegrain serve listening on \(address)\n".utf8))
        }
        defer { if let unix { unlink(unix) } }
        CLILog.logger.info("finegrain serve: \(Registry.estimators.count) estimators, \(Registry.losses.count) losses, \(c.maxConcurrent) compute slots")
        try await app.runService()
        CLILog.logger.info("finegrain serve: drained and stopped")
    }
}

/// The socket file of `serve --unix`.
enum UnixSocketFile {
    /// Refuses a path that is something else or where a server already answers; removes a stale socket
    /// left by a server that did not exit cleanly (bind would fail with EADDRINUSE otherwise).
    static func prepare(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }   // nothing there
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw ValidationError("--unix: '\(path)' exists and is not a socket")
        }
        if let fd = try? UnixSocket.connect(path: path) {
            close(fd)
            throw ValidationError("--unix: a server already listens on '\(path)'")
        }
        unlink(path)
    }
}
