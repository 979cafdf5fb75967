import NIOCore

/// One complete HTTP/1.1 response, reduced to what the load generator uses.
public struct ParsedResponse: Sendable, Equatable {
    public var status: Int
    /// The server closes the connection after this response (`Connection: close`, HTTP/1.0 without
    /// keep-alive, or a body that runs until the close).
    public var closesConnection: Bool
    /// The body's beginning, up to the parser's limit; empty unless the parser keeps bodies of this status.
    public var body: [UInt8]
    /// The server's compute time for this request, from its `Server-Timing` header (Forklift sends one).
    public var computeMicroseconds: Int?

    public init(status: Int, closesConnection: Bool, body: [UInt8], computeMicroseconds: Int? = nil) {
        self.status = status
        self.closesConnection = closesConnection
        self.body = body
        self.computeMicroseconds = computeMicroseconds
    }
}

/// A response the parser refused, with where in the connection's byte stream it went wrong.
public struct HTTPResponseError: Error, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case statusLine, headerLine, headTooLarge, contentLength, transferEncoding, chunkSize, chunkTerminator, upgrade, truncated
        /// A response with no request waiting for it (the parser itself never raises this).
        case unsolicited
    }

    public let kind: Kind
    public let reason: String
    /// Bytes of the connection before the offending byte (or before the line that holds it).
    public let offset: Int

    public var description: String { "malformed HTTP response at byte \(offset): \(reason)" }
}

/// A strict, bounds-checked HTTP/1.1 response parser for the client side of a keep-alive connection.
/// It replaces NIOHTTP1's decoder on the load path because that one builds an `HTTPHeaders` object
/// (strings and an array) per response, which the generator never reads: here the head is scanned in
/// place and only status, framing and `Connection` are taken from it. Feed it bytes as they arrive;
/// bytes it cannot use yet (a split head or chunk-size line) stay in the buffer for the next call.
/// Responses to HEAD requests are not supported (the generator never sends HEAD).
public struct HTTPResponseParser: Sendable {
    /// The largest head (status line and headers) or trailer section accepted.
    public static let maxHeadBytes = 64 * 1024
    /// The longest chunk-size line (size plus extensions) accepted.
    public static let maxChunkLineBytes = 4 * 1024

    private enum State: Sendable {
        case head(scanned: Int)
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(scanned: Int)
        case untilClose
    }

    /// Bytes of body kept per response, for error messages.
    public let bodyLimit: Int
    /// Keep the beginning of 2xx bodies too (by default only other statuses keep theirs).
    public let keepsSuccessBodies: Bool
    private var state = State.head(scanned: 0)
    private var current = ParsedResponse(status: 0, closesConnection: false, body: [])
    private var keepsBody = false
    /// Bytes consumed on this connection so far: errors count from here.
    private var consumed = 0
    public var bytesConsumed: Int { consumed }

    public init(bodyLimit: Int = 300, keepsSuccessBodies: Bool = false) {
        self.bodyLimit = max(bodyLimit, 0)
        self.keepsSuccessBodies = keepsSuccessBodies
    }

    /// Between responses: nothing of the next one has been read.
    public var isIdle: Bool {
        if case .head(let scanned) = state { return scanned == 0 }
        return false
    }

    /// Reads from `buffer` until one response is complete (returned) or the bytes run out (nil).
    /// Call it again while it returns responses: pipelined ones may follow in the same buffer.
    public mutating func parse(_ buffer: inout ByteBuffer) throws(HTTPResponseError) -> ParsedResponse? {
        while buffer.readableBytes > 0 {
            switch state {
            case .head(let scanned):
                guard let headLength = try Self.findEmptyLine(buffer, from: scanned, base: consumed, what: "response head") else {
                    state = .head(scanned: buffer.readableBytes)
                    return nil
                }
                let framing = try buffer.withUnsafeReadableBytes { (bytes) throws(HTTPResponseError) in
                    try HeadReader.read(UnsafeRawBufferPointer(rebasing: bytes[..<headLength]), base: consumed)
                }
                advance(&buffer, by: headLength)
                if (100..<200).contains(framing.status) {
                    // An interim answer (100 Continue, 103 Early Hints): the real one follows. 101 would switch protocols.
                    if framing.status == 101 {
                        throw HTTPResponseError(kind: .upgrade, reason: "101 Switching Protocols was not asked for", offset: consumed)
                    }
                    state = .head(scanned: 0)
                    continue
                }
                current = ParsedResponse(
                    status: framing.status, closesConnection: framing.closes, body: [], computeMicroseconds: framing.computeMicroseconds)
                keepsBody = bodyLimit > 0 && (keepsSuccessBodies || !(200..<300).contains(framing.status))
                if framing.status == 204 || framing.status == 304 {
                    return complete()
                } else if framing.chunked {
                    state = .chunkSize
                } else if let length = framing.contentLength {
                    if length == 0 { return complete() }
                    state = .fixedBody(remaining: length)
                } else {
                    current.closesConnection = true
                    state = .untilClose
                }
            case .fixedBody(let remaining):
                let taken = takeBody(&buffer, upTo: remaining)
                if taken == remaining { return complete() }
                state = .fixedBody(remaining: remaining - taken)
            case .chunkSize:
                guard let size = try readChunkSize(&buffer) else { return nil }
                state = size == 0 ? .trailers(scanned: 0) : .chunkData(remaining: size)
            case .chunkData(let remaining):
                let taken = takeBody(&buffer, upTo: remaining)
                state = taken == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - taken)
            case .chunkDataEnd:
                guard buffer.readableBytes >= 2 else { return nil }
                guard buffer.readableBytesView.prefix(2).elementsEqual([13, 10]) else {
                    throw HTTPResponseError(kind: .chunkTerminator, reason: "chunk data is not followed by CRLF", offset: consumed)
                }
                advance(&buffer, by: 2)
                state = .chunkSize
            case .trailers(let scanned):
                // Usually no trailers: the empty line that ends the message comes at once.
                guard buffer.readableBytes >= 2 else { return nil }
                if buffer.readableBytesView.prefix(2).elementsEqual([13, 10]) {
                    advance(&buffer, by: 2)
                    return complete()
                }
                guard let length = try Self.findEmptyLine(buffer, from: scanned, base: consumed, what: "trailer section") else {
                    state = .trailers(scanned: buffer.readableBytes)
                    return nil
                }
                try buffer.withUnsafeReadableBytes { (bytes) throws(HTTPResponseError) in
                    try HeadReader.checkFields(UnsafeRawBufferPointer(rebasing: bytes[..<length]), from: 0, base: consumed)
                }
                advance(&buffer, by: length)
                return complete()
            case .untilClose:
                _ = takeBody(&buffer, upTo: buffer.readableBytes)
            }
        }
        return nil
    }

    /// The connection closed: completes a response whose body ran until the close; fails when the
    /// close cut a response short. Returns nil when the connection was between responses.
    public mutating func finish() throws(HTTPResponseError) -> ParsedResponse? {
        switch state {
        case .untilClose: return complete()
        case .head(let scanned) where scanned == 0: return nil
        default:
            throw HTTPResponseError(kind: .truncated, reason: "the connection closed in the middle of a response", offset: consumed)
        }
    }

    // MARK: internals

    private mutating func complete() -> ParsedResponse {
        state = .head(scanned: 0)
        let response = current
        current.body = []
        return response
    }

    private mutating func advance(_ buffer: inout ByteBuffer, by count: Int) {
        buffer.moveReaderIndex(forwardBy: count)
        consumed += count
    }

    /// Moves up to `limit` body bytes out of `buffer`, keeping the first `bodyLimit` when asked; returns how many.
    private mutating func takeBody(_ buffer: inout ByteBuffer, upTo limit: Int) -> Int {
        let count = min(limit, buffer.readableBytes)
        if keepsBody, current.body.count < bodyLimit {
            current.body += buffer.readableBytesView.prefix(min(count, bodyLimit - current.body.count))
        }
        advance(&buffer, by: count)
        return count
    }

    /// `1*HEXDIG [BWS ; extensions] CRLF`; nil when the line is not all there yet.
    private mutating func readChunkSize(_ buffer: inout ByteBuffer) throws(HTTPResponseError) -> Int? {
        let base = consumed
        let parsed = try buffer.withUnsafeReadableBytes { (bytes) throws(HTTPResponseError) -> (size: Int, length: Int)? in
            let limit = min(bytes.count, Self.maxChunkLineBytes)
            var index = 0
            var size = 0
            while index < limit, let digit = Self.hexValue(bytes[index]) {
                guard index < 15 else {
                    throw HTTPResponseError(kind: .chunkSize, reason: "chunk size has more than 15 hex digits", offset: base)
                }
                size = size << 4 | digit
                index += 1
            }
            if index == limit { return nil }
            guard index > 0 else {
                throw HTTPResponseError(kind: .chunkSize, reason: "chunk size is not a hex number", offset: base)
            }
            while index < limit, bytes[index] == 32 || bytes[index] == 9 { index += 1 }
            if index < limit, bytes[index] == 59 {  // ';' starts chunk extensions, which are skipped
                while index < limit, bytes[index] != 13, bytes[index] != 10 {
                    guard HeadReader.isFieldByte(bytes[index]) else {
                        throw HTTPResponseError(kind: .chunkSize, reason: "control byte in a chunk extension", offset: base + index)
                    }
                    index += 1
                }
            }
            if index == limit {
                guard limit < Self.maxChunkLineBytes else {
                    throw HTTPResponseError(
                        kind: .chunkSize, reason: "chunk-size line longer than \(Self.maxChunkLineBytes) bytes", offset: base)
                }
                return nil
            }
            guard bytes[index] == 13 else {
                throw HTTPResponseError(kind: .chunkSize, reason: "unexpected byte after the chunk size", offset: base + index)
            }
            guard index + 1 < bytes.count else { return nil }
            guard bytes[index + 1] == 10 else {
                throw HTTPResponseError(kind: .chunkSize, reason: "CR without LF after the chunk size", offset: base + index)
            }
            return (size, index + 2)
        }
        guard let parsed else { return nil }
        advance(&buffer, by: parsed.length)
        return parsed.size
    }

    static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 48...57: Int(byte - 48)
        case 65...70: Int(byte - 55)
        case 97...102: Int(byte - 87)
        default: nil
        }
    }

    /// The length up to and including the first CRLFCRLF at or after `from` (less three, for a split
    /// terminator), or nil when there is none yet. Fails past `maxHeadBytes`.
    private static func findEmptyLine(_ buffer: ByteBuffer, from: Int, base: Int, what: String) throws(HTTPResponseError) -> Int? {
        let found = buffer.withUnsafeReadableBytes { bytes -> Int? in
            var index = max(from - 3, 0)
            let end = min(bytes.count, maxHeadBytes)
            while index + 3 < end {
                if bytes[index + 3] != 10 {
                    // The last byte of CRLFCRLF is LF: skip ahead by how far any LF could still be.
                    index += bytes[index + 3] == 13 ? 1 : 4
                    continue
                }
                if bytes[index] == 13, bytes[index + 1] == 10, bytes[index + 2] == 13 { return index + 4 }
                index += 1
            }
            return nil
        }
        if found == nil, buffer.readableBytes >= maxHeadBytes {
            throw HTTPResponseError(kind: .headTooLarge, reason: "\(what) is longer than \(maxHeadBytes) bytes", offset: base)
        }
        return found
    }
}
