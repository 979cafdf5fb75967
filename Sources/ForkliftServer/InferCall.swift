import ForkliftImage
import ForkliftPool
import Foundation
import HTTPTypes
import NIOHTTP1

/// The path of an infer request: `/v2/models/{model}[/versions/{version}]/infer[?query]`.
struct InferTarget: Sendable, Equatable {
    /// The request target as the client sent it (what the access log shows).
    let path: String
    var model: String
    var version: String?
    var query: Substring

    /// Nil when `path` is not an infer path; the request then goes to the other routes. An
    /// absolute-form target (`http://host:port/v2/…`, as a client sends it through a proxy)
    /// counts by its path.
    init?(path: String) {
        self.path = path
        let origin = Self.originForm(path)
        let question = origin.utf8.firstIndex(of: UInt8(ascii: "?"))
        let route = question.map { origin[..<$0] } ?? origin
        query = question.map { origin[origin.utf8.index(after: $0)...] } ?? ""
        let parts = route.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 5 || parts.count == 7, parts[0].isEmpty, parts[1] == "v2", parts[2] == "models", parts.last == "infer",
            !parts[3].isEmpty
        else { return nil }
        if parts.count == 7 {
            guard parts[4] == "versions", !parts[5].isEmpty else { return nil }
            version = Self.decoded(parts[5], plusIsSpace: false)
        }
        model = Self.decoded(parts[3], plusIsSpace: false)
    }

    /// `target` without the scheme and authority of an absolute form.
    private static func originForm(_ target: String) -> Substring {
        guard !target.hasPrefix("/"), let scheme = target.range(of: "://") else { return target[...] }
        let rest = target[scheme.upperBound...]
        return rest.firstIndex(where: { $0 == "/" || $0 == "?" }).map { rest[$0...] } ?? "/"
    }

    /// The value of query parameter `name`, percent-decoded; nil when absent.
    func parameter(_ name: String) -> String? {
        for pair in query.split(separator: "&") {
            let equals = pair.utf8.firstIndex(of: UInt8(ascii: "="))
            let key = equals.map { pair[..<$0] } ?? pair
            guard Self.decoded(key, plusIsSpace: true) == name else { continue }
            return equals.map { Self.decoded(pair[pair.utf8.index(after: $0)...], plusIsSpace: true) } ?? ""
        }
        return nil
    }

    /// Percent-decoded; `+` is a space only in a query (form encoding), not in a path.
    private static func decoded(_ text: Substring, plusIsSpace: Bool) -> String {
        let plus = plusIsSpace && text.utf8.contains(UInt8(ascii: "+"))
        guard plus || text.utf8.contains(UInt8(ascii: "%")) else { return String(text) }
        let spaced = plus ? text.replacingOccurrences(of: "+", with: " ") : String(text)
        return spaced.removingPercentEncoding ?? spaced
    }
}

/// The request headers an infer call reads, found in one pass over the fields: each lookup by
/// name scans them all, and five of those were a tenth of the handler's time.
struct InferHeaders: Sendable {
    var contentType: String?
    var contentEncoding: String?
    var contentLength: String?
    var inferenceHeaderLength: String?

    init(_ headers: HTTPHeaders) {
        // The four names differ in length, so most fields are passed over on their length alone,
        // and none is lowercased into a new string.
        for (name, value) in headers {
            switch name.utf8.count {
            case 12 where Self.matches(name, "content-type"): Self.add(value, to: &contentType)
            case 16 where Self.matches(name, "content-encoding"): Self.add(value, to: &contentEncoding)
            case 14 where Self.matches(name, "content-length"): Self.add(value, to: &contentLength)
            case 31 where Self.matches(name, "inference-header-content-length"): Self.add(value, to: &inferenceHeaderLength)
            default: continue
            }
        }
    }

    /// `name` is `lowercase` in any ASCII case.
    private static func matches(_ name: String, _ lowercase: String) -> Bool {
        name.utf8.elementsEqual(lowercase.utf8) { byte, lower in byte == lower || (byte >= 65 && byte <= 90 && byte | 0x20 == lower) }
    }

    /// Repeated fields combine as HTTP combines them: values joined with ", ".
    private static func add(_ value: String, to slot: inout String?) {
        slot = slot.map { $0 + ", " + value } ?? value
    }
}

/// One V2 infer call, from its request head to its response body, apart from how the bytes
/// travel (`InferChannelHandler` carries them). What the head alone can refute (the model, the
/// content type and encoding, a declared length over the limit) fails before the body is read.
struct InferCall: Sendable {
    let model: ModelMetadata
    let target: InferTarget
    let contentType: String?
    let media: String?
    let encoding: Decompression.Encoding?
    let headerLength: String?
    let limits: ImageLimits
    let maxBody: Int

    /// How the result is answered.
    enum Answer: Sendable {
        case tensors(outputs: [RequestedOutput], id: String?)
        /// A JPEG body: every output as JSON, plus the top `k` classes.
        case image(k: Int)
    }

    /// Content types an infer body may have. tritonclient sends none; curl users send JSON.
    static let acceptedTypes: Set<String> = [
        "application/json", "application/octet-stream", "text/plain", "application/x-www-form-urlencoded", "image/jpeg",
        "multipart/form-data",
    ]

    /// Triton's binary extension: the length of the JSON header that starts the body.
    static let headerLengthField = "Inference-Header-Content-Length"

    init(headers: InferHeaders, target: InferTarget, catalog: ModelCatalog, configuration: ServerConfiguration) throws(ServerError) {
        model = try catalog.lookup(target.model, version: target.version)
        self.target = target
        let contentType = headers.contentType
        let media = contentType.map(MediaType.of)
        if let contentType, let media, !Self.acceptedTypes.contains(media) {
            throw ServerError(
                .unsupportedMediaType,
                "unsupported Content-Type '\(contentType)': send V2 JSON (application/json), Triton binary tensors (application/octet-stream, or none) or a JPEG (image/jpeg, or a multipart/form-data upload)"
            )
        }
        self.contentType = contentType
        self.media = media
        encoding = try Decompression.encoding(headers.contentEncoding)
        maxBody = configuration.maxBodyBytes
        if let declared = headers.contentLength.flatMap({ Int($0) }), declared > maxBody {
            throw ServerError(.contentTooLarge, "the body is \(declared) bytes, the limit (--max-body) is \(maxBody)")
        }
        headerLength = headers.inferenceHeaderLength
        limits = ImageLimits(maxPixels: configuration.maxImagePixels, maxBytes: configuration.maxBodyBytes)
    }

    /// The error for a body that grew past the limit while it arrived.
    var bodyTooLarge: ServerError {
        ServerError(.contentTooLarge, "the body exceeds the limit (--max-body) of \(maxBody) bytes")
    }

    /// Bytes of the body that must be parsed rather than copied: the JSON part of a request with
    /// binary tensors, all of a JSON body, or all of a compressed one (it is inflated first). A
    /// JPEG body needs only its header checked.
    func parsedBytes(bodyCount: Int) -> Int {
        if isImage { return 0 }
        if encoding == nil, let length = try? binaryHeaderLength(), length >= 0 { return min(length, bodyCount) }
        return bodyCount
    }

    /// A JPEG body, alone or as a form upload.
    private var isImage: Bool { media == "image/jpeg" || media == "multipart/form-data" }

    /// The pool's request for a complete body, and how to answer its result. Tensors are copied
    /// straight out of the received parts; a compressed or JPEG body is joined first.
    func request(body parts: BodyParts) throws(ServerError) -> (InferenceRequest, Answer) {
        guard encoding != nil || isImage else { return try tensors(body: parts) }
        let body =
            try encoding.map { (encoding) throws(ServerError) in
                try Decompression.inflate(parts.joined(), encoding: encoding, limit: maxBody)
            } ?? parts.joined()
        guard isImage else { return try tensors(body: body) }
        let k = try topK()
        let jpeg = media == "image/jpeg" ? body : try MultipartForm.firstFile(body: body, contentType: contentType ?? "")
        return (try ImageInputs.request(jpeg: jpeg, model: model, limits: limits), .image(k: k))
    }

    private func tensors(body: some RequestBytes) throws(ServerError) -> (InferenceRequest, Answer) {
        let decoded = try InferRequestDecoder.decode(body: body, headerLength: try binaryHeaderLength(), model: model, imageLimits: limits)
        return (decoded.request, .tensors(outputs: decoded.outputs, id: decoded.id))
    }

    func response(_ result: InferenceResult, answer: Answer) throws(ServerError) -> EncodedInferResponse {
        var encoded: EncodedInferResponse
        switch answer {
        case .tensors(let outputs, let id):
            encoded = try InferResponseEncoder.encode(result, outputs: outputs, model: model, id: id)
        case .image(let k):
            encoded = try InferResponseEncoder.encode(
                result, outputs: model.outputs.indices.map { RequestedOutput(index: $0, binary: false) }, model: model, id: nil,
                classification: ImageInputs.classification(result, model: model, k: k))
        }
        encoded.timing = ServerTiming(queueSeconds: result.queueSeconds, computeSeconds: result.computeSeconds)
        return encoded
    }

    /// `?k=N` on an image request: how many classes to answer (default 5).
    private func topK() throws(ServerError) -> Int {
        guard let text = target.parameter("k") else { return 5 }
        guard let k = Int(text), k >= 1 else { throw .badRequest("query parameter k='\(text)' must be a positive integer") }
        return k
    }

    /// The `Inference-Header-Content-Length` header: nil when absent, 400 when not a number.
    private func binaryHeaderLength() throws(ServerError) -> Int? {
        guard let text = headerLength else { return nil }
        guard let value = Int(MediaType.trimmed(Substring(text))) else {
            throw .badRequest("Inference-Header-Content-Length '\(text)' is not a number")
        }
        return value
    }
}
