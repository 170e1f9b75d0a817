import FineGrain
import Hummingbird

/// Turns Hummingbird's own errors (no route for the path, a route without this method) into the service's
/// JSON error shape, so a client can always read `{"error": message}`.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The paths that exist, for a clearer message on a wrong method.
    let routes: [String: String]   // path -> method

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPResponseError {
            let path = request.uri.path
            if error.status == .notFound, let method = routes[path], method != request.method.rawValue {
                return FineGrainService.json(.methodNotAllowed, .object(["error": .string("\(path) takes \(method), not \(request.method.rawValue)")]))
            }
            let message = error.status == .notFound
                ? "no route \(request.method.rawValue) \(path); routes: \(routes.keys.sorted().map { "\(routes[$0]!) \($0)" }.joined(separator: ", "))"
                : "\(error.status.code) \(error.status.reasonPhrase)"
            return FineGrainService.json(error.status, .object(["error": .string(message)]))
        }
    }
}
