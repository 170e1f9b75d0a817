import FineGrain
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// `finegrain serve`: the registry over HTTP/JSON (DESIGN.md, "Contracts" 4), so verl, TRL and OpenRLHF
/// can use every method from Python without forking.
///
/// Routes: `POST /v1/advantages` (rollout objects, or a verl-layout batch in JSON or compact base64),
/// `POST /v1/losses`, `POST /v1/rewards`, `POST /v1/openrlhf/reward` (OpenRLHF's remote reward API; also
/// at `/get_reward`, the path of OpenRLHF's own `serve_rm.py`), `GET /v1/methods`, `GET /healthz`,
/// `GET /metrics` (Prometheus).
///
/// Every error is a JSON object `{"error": message}` whose message names the field, with a 4xx status
/// (503 when the compute queue is full); a bad request never takes the server down. SIGTERM / SIGINT drain:
/// the listener closes and in-flight requests complete before the process exits (Hummingbird's
/// `runService`, swift-service-lifecycle).
public struct ServiceConfiguration: Sendable {
    /// Loopback by default: the service computes on whatever it is sent, so exposing it is a choice.
    public var host = "127.0.0.1"
    public var port = 8321
    /// When set, listen on this Unix domain socket instead of `host`/`port`: for a trainer on the same
    /// machine, with no port to expose (access is the socket file's permissions). Raw sockets are faster
    /// there (a 1-byte ping-pong 15 us vs 46 us on loopback TCP, 2.8 MB one way 0.61 vs 1.27 ms), but the
    /// service's 256 x 1024 round trips measured the same over both.
    public var unixSocketPath: String?
    /// Requests with a larger body are answered 413.
    public var maxBodyBytes = 256 << 20
    /// When set, every route but `/healthz` and `/metrics` needs `Authorization: Bearer <token>`.
    public var bearerToken: String?
    /// Requests computing at once (default: one per core).
    public var maxConcurrent = ProcessInfo.processInfo.activeProcessorCount
    /// Requests waiting for a compute slot before new ones get 503.
    public var maxQueued = 256
    /// Largest single socket read (NIO's default is 64 KiB; see `LargeReadHTTP1Channel`).
    public var maxReadBytes = 1 << 20
    /// The verifier of the OpenRLHF route (`AnswerVerifier` name).
    public var openRLHFVerifier = AnswerVerifier.mathAnswer
    /// Deadline of each reward item, from the start of its own work (`ItemDeadlines`); a request can set
    /// `"item_timeout_s"`.
    public var rewardItemTimeout: Duration = .seconds(10)
    /// When set, `POST /v1/advantages` (verl form) also takes tensors by reference to files in this
    /// directory and can write its answer there (`SharedMemory`; `finegrain serve --shm-dir`). Off by default.
    public var sharedMemoryDirectory: String?

    public init() {}
}

/// A route's answer: a JSON document, or one already written as bytes (the verl route writes its tensors
/// straight into the response buffer, `VerlAnswer`).
enum ServiceAnswer {
    case json(JSONValue)
    case bytes(ByteBuffer)
    /// A framed answer (`FramedBody`): the JSON header and the frame of tensor bytes.
    case framed(header: ByteBuffer, frame: ByteBuffer)
}

public enum FineGrainService {
    public static func application(_ config: ServiceConfiguration, metrics: ServiceMetrics = ServiceMetrics(),
                                   logger: Logger? = nil,
                                   onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol & Service {
        Application(router: router(config, metrics: metrics),
                    server: .http1(maxRead: max(config.maxReadBytes, 2048)),
                    configuration: .init(address: config.unixSocketPath.map { .unixDomainSocket(path: $0) } ?? .hostname(config.host, port: config.port),
                                         serverName: "finegrain"),
                    onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? config.port) },
                    logger: logger)
    }

    /// A JSON route's work: the parsed body in, the answer and the number of tokens it covered out.
    typealias Work = @Sendable ([String: JSONValue]) throws -> (ServiceAnswer, tokens: Int)

    public static func router(_ config: ServiceConfiguration, metrics: ServiceMetrics = ServiceMetrics()) -> Router<BasicRequestContext> {
        let router = Router()
        var table = ["/healthz": "GET", "/metrics": "GET", "/v1/methods": "GET"]
        for path in ["/v1/advantages", "/v1/losses", "/v1/rewards", "/v1/openrlhf/reward", "/get_reward"] { table[path] = "POST" }
        router.add(middleware: JSONErrorMiddleware(routes: table))
        let limiter = ComputeLimiter(permits: config.maxConcurrent, maxQueued: config.maxQueued)
        let verifier = config.openRLHFVerifier, itemTimeout = config.rewardItemTimeout
        let shared = config.sharedMemoryDirectory.map(SharedMemory.init)
        router.get("healthz") { _, _ in json(.ok, .object(["status": .string("ok")])) }
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(bytes: metrics.render())))
        }
        router.get("v1/methods") { request, _ in
            if let denied = authorize(request, config) { return denied }
            return json(.ok, .object(["methods": .array(Registry.allMethods.map(MethodCatalog.json))]))
        }
        let routes: [(String, String, Work)] = [
            ("v1/advantages", "advantages", advantagesWork(shared)),
            ("v1/losses", "losses", { body in
                if body["verl"] != nil { return try VerlLossEndpoint.losses(body) }
                let (v, n) = try Endpoints.losses(body)
                return (.json(v), n)
            }),
            ("v1/rewards", "rewards", { body in (.json(try RewardEndpoints.rewards(body, defaultTimeout: itemTimeout)), 0) }),
            ("v1/openrlhf/reward", "openrlhf", { body in
                (.json(try RewardEndpoints.openRLHF(body, verifier: verifier, defaultTimeout: itemTimeout)), 0) }),
            ("get_reward", "openrlhf", { body in
                (.json(try RewardEndpoints.openRLHF(body, verifier: verifier, defaultTimeout: itemTimeout)), 0) }),
        ]
        for (path, label, work) in routes {
            router.post(RouterPath(stringLiteral: path)) { request, _ in
                if let denied = authorize(request, config, queryTokenAllowed: label == "openrlhf") { return denied }
                if label == "advantages", NDJSONEndpoint.accepts(request) {
                    // Rollout JSON lines in, annotated lines out (estimator and params in the query).
                    let method: (String, [String: ParamValue])
                    do { method = try NDJSONEndpoint.method(request.uri.queryParameters) } catch {
                        metrics.record(route: label, status: 400, duration: .zero, tokens: 0)   // counted like any refused request
                        return json(.badRequest, .object(["error": .string("\(error)")]))
                    }
                    return await handle(request, config, limiter: limiter, metrics: metrics, route: label) { buffer in
                        NDJSONEndpoint.advantages(buffer, estimator: method.0, params: method.1)
                    }
                }
                if label == "advantages" || label == "losses", FramedBody.accepts(request) {
                    // The JSON request, then raw tensor bytes; answered the same way.
                    let n: Int
                    do { n = try FramedBody.headerLength(request) } catch {
                        metrics.record(route: label, status: 400, duration: .zero, tokens: 0)
                        return json(.badRequest, .object(["error": .string("\(error)")]))
                    }
                    return await handle(request, config, limiter: limiter, metrics: metrics, route: label) { buffer in
                        label == "losses" ? FramedBody.losses(buffer, headerLength: n, shared: shared)
                                          : FramedBody.advantages(buffer, headerLength: n, shared: shared)
                    }
                }
                return await handle(request, config, limiter: limiter, metrics: metrics, route: label) { compute($0, work) }
            }
        }
        return router
    }

    /// `POST /v1/advantages`: the verl form when the body has `"verl"`, else rollout objects.
    static func advantagesWork(_ shared: SharedMemory?) -> Work { { body in
        if body["verl"] != nil { return try VerlEndpoint.advantages(body, sources: TensorSources(shared: shared)) }
        let (v, n) = try Endpoints.advantages(body)
        return (.json(v), n)
    } }

    /// Reads the body (bounded), waits for a compute slot, then parses, computes and serialises on a
    /// Dispatch thread; every failure becomes a JSON error with the right status.
    static func handle(_ request: Request, _ config: ServiceConfiguration, limiter: ComputeLimiter, metrics: ServiceMetrics,
                       route: String, _ run: @escaping @Sendable (ByteBuffer) -> Outcome) async -> Response {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: config.maxBodyBytes)
        } catch {
            metrics.record(route: route, status: 413, duration: .zero, tokens: 0)
            return json(.contentTooLarge, .object(["error": .string("request body exceeds the limit of \(config.maxBodyBytes) bytes")]))
        }
        let start = ContinuousClock.now
        metrics.inFlight(1)
        defer { metrics.inFlight(-1) }
        let outcome: Outcome
        do {
            outcome = try await limiter.run { run(buffer) }
        } catch let o as ComputeLimiter.Overloaded {
            metrics.rejected()
            metrics.record(route: route, status: 503, duration: ContinuousClock.now - start, tokens: 0)
            return json(.serviceUnavailable, .object(["error": .string(
                "server busy: \(o.running) requests computing and \(o.queued) queued (limit); retry later")]))
        } catch {
            return json(.internalServerError, .object(["error": .string("\(error)")]))
        }
        metrics.record(route: route, status: Int(outcome.status.code), duration: ContinuousClock.now - start, tokens: outcome.tokens)
        var headers: HTTPFields = [.contentType: outcome.contentType]
        if let diagnostics = outcome.diagnostics { headers[NDJSONEndpoint.diagnosticsHeader] = diagnostics }
        if let n = outcome.headerLength { headers[FramedBody.headerLength] = String(n) }
        return Response(status: outcome.status, headers: headers, body: .init(byteBuffer: outcome.body))
    }

    /// What a route's CPU work produced: status, body and tokens covered (for the metrics); JSON unless
    /// the route says otherwise, plus an optional diagnostics header (the NDJSON route's).
    struct Outcome: Sendable {
        var status: HTTPResponse.Status
        var body: ByteBuffer
        var tokens: Int
        var contentType = "application/json"
        var diagnostics: String?
        /// The JSON part's length of a framed answer (`FramedBody`), sent as `FineGrain-Header-Length`.
        var headerLength: Int?
        init(_ status: HTTPResponse.Status, _ body: ByteBuffer, tokens: Int, contentType: String = "application/json", diagnostics: String? = nil) {
            (self.status, self.body, self.tokens, self.contentType, self.diagnostics) = (status, body, tokens, contentType, diagnostics)
        }
        /// A refused request: the JSON error object naming the field, with its status.
        static func refused(_ error: any Error) -> Outcome {
            if let e = error as? FineGrainError {
                let status: HTTPResponse.Status = { if case .unknownMethod = e { return .notFound }; return .badRequest }()
                return Outcome(status, errorData(e.description), tokens: 0)
            }
            return Outcome(.badRequest, errorData("\(error)"), tokens: 0)
        }
    }

    /// Parse, compute, serialise: the whole of a request's CPU work, off the event loops.
    static func compute(_ buffer: ByteBuffer, _ work: Work) -> Outcome {
        guard let doc = try? buffer.withUnsafeReadableBytes({ try JSONValue.parse(bytes: $0) }) else {
            return Outcome(.badRequest, errorData("body is not valid JSON (malformed or truncated; \(buffer.readableBytes) bytes received; "
                                                  + "non-finite numbers must be the strings \"NaN\", \"Infinity\", \"-Infinity\")"), tokens: 0)
        }
        guard let body = doc.objectValue else { return Outcome(.badRequest, errorData("body must be a JSON object"), tokens: 0) }
        do {
            let (answer, tokens) = try work(body)
            switch answer {
            case let .json(value): return Outcome(.ok, ByteBuffer(bytes: try value.serialized()), tokens: tokens)
            case let .bytes(bytes): return Outcome(.ok, bytes, tokens: tokens)
            case .framed: return .refused(FineGrainError.invalidField(field: "body", reason: "a framed answer needs a framed request"))
            }
        } catch {
            return .refused(error)
        }
    }

    static func errorData(_ message: String) -> ByteBuffer {
        ByteBuffer(bytes: (try? JSONValue.object(["error": .string(message)]).serialized()) ?? Data("{\"error\":\"unencodable error\"}".utf8))
    }

    /// Bearer token check. OpenRLHF's remote-reward client cannot set headers, so its routes also accept
    /// `?token=<token>` in the URL (`--reward.remote_url http://host:8321/v1/openrlhf/reward?token=...`).
    static func authorize(_ request: Request, _ config: ServiceConfiguration, queryTokenAllowed: Bool = false) -> Response? {
        guard let token = config.bearerToken else { return nil }
        if request.headers[.authorization] == "Bearer \(token)" { return nil }
        if queryTokenAllowed, request.uri.queryParameters.get("token") == token { return nil }
        return json(.unauthorized, .object(["error": .string("missing or wrong bearer token (header 'Authorization: Bearer <token>')")]))
    }

    static func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        let data = (try? value.serialized()) ?? Data("{\"error\":\"unencodable response\"}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
