import ForkliftPool
import Hummingbird

/// A request the server answers with a non-2xx status and `{"error": message}`.
public struct ServerError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String
    /// Set on 503 for a full queue, so clients back off for that many seconds.
    public var retryAfter: Int?

    public init(_ status: HTTPResponse.Status, _ message: String, retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.retryAfter = retryAfter
    }

    public var description: String { "\(status.code) \(message)" }

    public static func badRequest(_ message: String) -> ServerError { ServerError(.badRequest, message) }

    /// The status Triton uses for each pool failure.
    public init(_ error: PoolError) {
        switch error {
        case .unknownModel: self.init(.notFound, error.description)
        case .modelNotReady, .shuttingDown, .loadFailed: self.init(.serviceUnavailable, error.description)
        case .queueFull: self.init(.serviceUnavailable, error.description, retryAfter: 1)
        case .timeout: self.init(.gatewayTimeout, error.description)
        case .badInput: self.init(.badRequest, error.description)
        case .workerFailed: self.init(.internalServerError, error.description)
        }
    }

    /// The response body: `{"error": message}`.
    public var jsonBody: [UInt8] {
        var writer = JSONWriter()
        writer.raw("{")
        writer.key("error")
        writer.string(message)
        writer.raw("}")
        return writer.bytes
    }

    /// The headers of the error's answer: its JSON content type, and Retry-After when set.
    public var headerFields: HTTPFields {
        var fields: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { fields[.retryAfter] = String(retryAfter) }
        return fields
    }

    /// The `outcome` label of `forklift_requests_total`.
    public var outcome: String { Self.outcome(status: status.code, retryAfter: retryAfter) }

    static func outcome(status: Int, retryAfter: Int? = nil) -> String {
        switch status {
        case 200..<300: "success"
        case 404: "not_found"
        case 413: "too_large"
        case 415: "unsupported_media_type"
        case 400..<500: "bad_request"
        case 503: retryAfter == nil ? "unavailable" : "queue_full"
        case 504: "timeout"
        default: "error"
        }
    }
}
