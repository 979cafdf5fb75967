import ForkliftImage
import ForkliftPool
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The V2 / Open Inference Protocol routes other than infer, which `InferChannelHandler` serves
/// before requests reach the router.
struct Routes: Sendable {
    let backend: any InferenceBackend
    let catalog: ModelCatalog
    let configuration: ServerConfiguration
    let metrics: ServerMetrics

    func register(on router: Router<BasicRequestContext>) {
        router.get("/v2/health/live") { _, _ in Self.empty(.ok) }
        router.get("/v2/health/ready") { _, _ in Self.empty(await backend.serverReady() ? .ok : .serviceUnavailable) }
        router.get("/v2") { _, _ in Self.json(.ok, MetadataDocuments.server()) }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.exposition())))
        }
        for prefix in ["/v2/models/:model", "/v2/models/:model/versions/:version"] {
            router.get(RouterPath(prefix)) { _, context in modelMetadata(context) }
            router.get(RouterPath(prefix + "/ready")) { _, context in await modelReady(context) }
            router.get(RouterPath(prefix + "/config")) { _, context in modelConfig(context) }
        }
    }

    private func lookup(_ context: BasicRequestContext) throws(ServerError) -> ModelMetadata {
        try catalog.lookup(context.parameters.get("model") ?? "", version: context.parameters.get("version"))
    }

    private func modelMetadata(_ context: BasicRequestContext) -> Response {
        do throws(ServerError) {
            let model = try lookup(context)
            return Self.json(.ok, MetadataDocuments.model(model, versions: catalog.versions(of: model.name)))
        } catch {
            return Self.error(error)
        }
    }

    private func modelReady(_ context: BasicRequestContext) async -> Response {
        do throws(ServerError) {
            let model = try lookup(context)
            return Self.empty(await backend.modelReady(model.name) ? .ok : .serviceUnavailable)
        } catch {
            return Self.error(error)
        }
    }

    private func modelConfig(_ context: BasicRequestContext) -> Response {
        do throws(ServerError) {
            return Self.json(.ok, MetadataDocuments.config(try lookup(context), settings: configuration.settings))
        } catch {
            return Self.error(error)
        }
    }

    static func empty(_ status: HTTPResponse.Status) -> Response {
        Response(status: status, headers: [.contentLength: "0"])
    }

    static func json(_ status: HTTPResponse.Status, _ body: [UInt8]) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func error(_ error: ServerError) -> Response {
        Response(status: error.status, headers: error.headerFields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: error.jsonBody)))
    }
}

/// A Content-Type header's media type. Plain ASCII work: Foundation's trimming went through
/// NSString and cost several percent of the server's CPU per request.
enum MediaType {
    /// The media type, lower-cased and without parameters ("" for an empty header).
    static func of(_ contentType: String) -> String {
        let type = trimmed(contentType.utf8.firstIndex(of: UInt8(ascii: ";")).map { contentType[..<$0] } ?? contentType[...])
        return type.utf8.contains(where: { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }) ? type.lowercased() : String(type)
    }

    /// `text` without leading and trailing spaces and tabs (HTTP's optional whitespace).
    static func trimmed(_ text: Substring) -> Substring {
        let blank: (UInt8) -> Bool = { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        guard let first = text.utf8.firstIndex(where: { !blank($0) }), let last = text.utf8.lastIndex(where: { !blank($0) }) else {
            return ""
        }
        return text[first...last]
    }
}

/// Logs each request at debug level: method, path, status and time taken.
struct AccessLogMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        if context.logger.logLevel <= .debug {
            let micros = Int(Elapsed.seconds(since: start) * 1e6)
            context.logger.debug("\(request.method) \(request.uri.path) \(response.status.code) \(micros)µs")
        }
        return response
    }
}

enum Elapsed {
    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }
}
