import FineGrain
import Foundation
import Hummingbird

/// `finegrain serve`: the registry over HTTP/JSON (DESIGN.md, "Contracts" 4), so verl, TRL and OpenRLHF
/// can use every method from Python without forking.
///
/// Routes (this slice): `POST /v1/advantages`, `POST /v1/losses`, `GET /v1/methods`, `GET /healthz`.
/// Every error is a JSON object `{"error": message}` whose message names the field, with a 4xx status;
/// a bad request never takes the server down.
public struct ServiceConfiguration: Sendable {
    /// Loopback by default: the service computes on whatever it is sent, so exposing it is a choice.
    public var host = "127.0.0.1"
    public var port = 8321
    /// Requests with a larger body are answered 413.
    public var maxBodyBytes = 256 << 20
    /// When set, every route but `/healthz` needs `Authorization: Bearer <token>`.
    public var bearerToken: String?

    public init() {}
}

public enum FineGrainService {
    public static func application(_ config: ServiceConfiguration) -> some ApplicationProtocol {
        Application(router: router(config),
                    configuration: .init(address: .hostname(config.host, port: config.port), serverName: "finegrain"))
    }

    public static func router(_ config: ServiceConfiguration) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("healthz") { _, _ in json(.ok, .object(["status": .string("ok")])) }
        router.get("v1/methods") { request, _ in
            if let denied = authorize(request, config) { return denied }
            return json(.ok, .object(["methods": .array(Registry.allMethods.map(MethodCatalog.json))]))
        }
        router.post("v1/advantages") { request, _ in
            if let denied = authorize(request, config) { return denied }
            return await handle(request, config) { body in try Endpoints.advantages(body) }
        }
        router.post("v1/losses") { request, _ in
            if let denied = authorize(request, config) { return denied }
            return await handle(request, config) { body in try Endpoints.losses(body) }
        }
        return router
    }

    /// Reads the body (bounded), parses it as a JSON object, runs `work`, and turns every failure into a
    /// JSON error with the right status.
    static func handle(_ request: Request, _ config: ServiceConfiguration,
                       _ work: @Sendable ([String: JSONValue]) throws -> JSONValue) async -> Response {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: config.maxBodyBytes)
        } catch {
            return json(.contentTooLarge, .object(["error": .string("request body exceeds the limit of \(config.maxBodyBytes) bytes")]))
        }
        let data = Data(buffer.readableBytesView)
        guard let doc = try? JSONValue.parse(data), let body = doc.objectValue else {
            return json(.badRequest, .object(["error": .string("body is not a JSON object")]))
        }
        do {
            return json(.ok, try work(body))
        } catch let e as FineGrainError {
            let status: HTTPResponse.Status = { if case .unknownMethod = e { return .notFound }; return .badRequest }()
            return json(status, .object(["error": .string(e.description)]))
        } catch {
            return json(.badRequest, .object(["error": .string("\(error)")]))
        }
    }

    static func authorize(_ request: Request, _ config: ServiceConfiguration) -> Response? {
        guard let token = config.bearerToken else { return nil }
        if request.headers[.authorization] == "Bearer \(token)" { return nil }
        return json(.unauthorized, .object(["error": .string("missing or wrong bearer token (header 'Authorization: Bearer <token>')")]))
    }

    static func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        let data = (try? value.serialized()) ?? Data("{\"error\":\"unencodable response\"}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
