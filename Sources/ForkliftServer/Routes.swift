import ForkliftImage
import ForkliftPool
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The V2 / Open Inference Protocol routes. Handlers do cheap work only (parse, check, encode);
/// inference happens in the pool's worker processes.
struct Routes: Sendable {
    let backend: any InferenceBackend
    let catalog: ModelCatalog
    let configuration: ServerConfiguration
    let metrics: ServerMetrics

    /// Made once: building a field name validates its characters.
    static let headerLengthField: HTTPField.Name = {
        guard let name = HTTPField.Name("Inference-Header-Content-Length") else { preconditionFailure("invalid header name") }
        return name
    }()

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
            router.post(RouterPath(prefix + "/infer")) { request, context in await infer(request, context) }
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

    private func infer(_ request: Request, _ context: BasicRequestContext) async -> Response {
        let start = ContinuousClock.now
        let name = context.parameters.get("model") ?? ""
        let response: Response
        do throws(ServerError) {
            let model = try lookup(context)
            let contentType = request.headers[.contentType]
            let media = contentType.map(MediaType.of)
            let body = try await RequestBodyReader.read(request, contentType: contentType, media: media, limit: configuration.maxBodyBytes)
            let limits = ImageLimits(maxPixels: configuration.maxImagePixels, maxBytes: configuration.maxBodyBytes)
            let encoded: EncodedInferResponse
            if media == "image/jpeg" || media == "multipart/form-data" {
                let k = try Self.topK(request)
                let jpeg =
                    media == "image/jpeg" ? body : try MultipartForm.firstFile(body: body, contentType: contentType ?? "")
                let inferRequest = try ImageInputs.request(jpeg: jpeg, model: model, limits: limits)
                let result: InferenceResult
                do { result = try await backend.infer(inferRequest) } catch { throw ServerError(error) }
                encoded = try InferResponseEncoder.encode(
                    result, outputs: model.outputs.indices.map { RequestedOutput(index: $0, binary: false) }, model: model, id: nil,
                    classification: ImageInputs.classification(result, model: model, k: k))
            } else {
                let headerLength = try Self.headerLength(request)
                let decoded = try InferRequestDecoder.decode(body: body, headerLength: headerLength, model: model, imageLimits: limits)
                let result: InferenceResult
                do { result = try await backend.infer(decoded.request) } catch { throw ServerError(error) }
                encoded = try InferResponseEncoder.encode(result, outputs: decoded.outputs, model: model, id: decoded.id)
            }
            var headers: HTTPFields = [:]
            if let length = encoded.headerLength {
                headers[.contentType] = "application/octet-stream"
                headers[Self.headerLengthField] = String(length)
            } else {
                headers[.contentType] = "application/json"
            }
            response = Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: encoded.body)))
            metrics.record(model: name, outcome: "success", seconds: Elapsed.seconds(since: start))
        } catch {
            metrics.record(model: name, outcome: error.outcome, seconds: Elapsed.seconds(since: start))
            if error.status.code >= 500 {
                context.logger.warning(
                    "infer failed", metadata: ["model": "\(name)", "status": "\(error.status.code)", "error": "\(error.message)"])
            }
            response = Self.error(error)
        }
        return response
    }

    /// `?k=N` on an image request: how many classes to answer (default 5).
    static func topK(_ request: Request) throws(ServerError) -> Int {
        guard let text = request.uri.queryParameters.get("k") else { return 5 }
        guard let k = Int(text), k >= 1 else { throw .badRequest("query parameter k='\(text)' must be a positive integer") }
        return k
    }

    /// The `Inference-Header-Content-Length` header: nil when absent, 400 when not a number.
    static func headerLength(_ request: Request) throws(ServerError) -> Int? {
        guard let text = request.headers[headerLengthField] else { return nil }
        guard let value = Int(MediaType.trimmed(Substring(text))) else {
            throw .badRequest("Inference-Header-Content-Length '\(text)' is not a number")
        }
        return value
    }

    static func empty(_ status: HTTPResponse.Status) -> Response {
        Response(status: status, headers: [.contentLength: "0"])
    }

    static func json(_ status: HTTPResponse.Status, _ body: [UInt8]) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func error(_ error: ServerError) -> Response {
        var writer = JSONWriter()
        writer.raw("{")
        writer.key("error")
        writer.string(error.message)
        writer.raw("}")
        var response = json(error.status, writer.bytes)
        if let seconds = error.retryAfter { response.headers[.retryAfter] = String(seconds) }
        return response
    }
}

/// Reads an infer body: content type and encoding checked, size limited, decompressed.
enum RequestBodyReader {
    /// Content types an infer body may have. tritonclient sends none; curl users send JSON.
    static let acceptedTypes: Set<String> = [
        "application/json", "application/octet-stream", "text/plain", "application/x-www-form-urlencoded", "image/jpeg",
        "multipart/form-data",
    ]

    /// Reads the body of `request`, whose Content-Type header is `contentType` (media type `media`).
    static func read(_ request: Request, contentType: String?, media: String?, limit: Int) async throws(ServerError) -> [UInt8] {
        if let type = contentType, let media {
            guard acceptedTypes.contains(media) else {
                throw ServerError(
                    .unsupportedMediaType,
                    "unsupported Content-Type '\(type)': send V2 JSON (application/json), Triton binary tensors (application/octet-stream, or none) or a JPEG (image/jpeg, or a multipart/form-data upload)"
                )
            }
        }
        let encoding = try Decompression.encoding(request.headers[.contentEncoding])
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            throw ServerError(.contentTooLarge, "the body is \(declared) bytes, the limit (--max-body) is \(limit)")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch let error as HTTPResponseError where error.status == .contentTooLarge {
            throw ServerError(.contentTooLarge, "the body exceeds the limit (--max-body) of \(limit) bytes")
        } catch {
            throw .badRequest("could not read the body: \(error)")
        }
        let bytes = Array(buffer.readableBytesView)
        guard let encoding else { return bytes }
        return try Decompression.inflate(bytes, encoding: encoding, limit: limit)
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
