/// How a response is framed, read from its head without building any strings.
struct ResponseFraming: Equatable {
    var status: Int
    var closes: Bool
    var chunked: Bool
    var contentLength: Int?
    /// The `compute` duration of a `Server-Timing` field, in microseconds.
    var computeMicroseconds: Int? = nil
}

/// Reads a complete response head (status line, fields, empty line) in place: checks every line
/// strictly (RFC 9112: CRLF endings, token names, no space before the colon, no line folding, no
/// control bytes) and takes only the status and the fields that frame the message.
enum HeadReader {
    private static let contentLength = Array("content-length".utf8)
    private static let transferEncoding = Array("transfer-encoding".utf8)
    private static let connection = Array("connection".utf8)
    private static let chunked = Array("chunked".utf8)
    private static let close = Array("close".utf8)
    private static let keepAlive = Array("keep-alive".utf8)
    private static let versionPrefix = Array("HTTP/1.".utf8)
    private static let serverTiming = Array("server-timing".utf8)
    private static let computeMetric = Array("compute".utf8)
    private static let durationParameter = Array("dur=".utf8)

    /// `bytes` is the head up to and including its CRLFCRLF; `base` is its offset in the connection.
    static func read(_ bytes: UnsafeRawBufferPointer, base: Int) throws(HTTPResponseError) -> ResponseFraming {
        let lineEnd = try endOfLine(bytes, from: 0, base: base)
        let status = try statusLine(bytes, end: lineEnd, base: base)
        // HTTP/1.0 closes unless asked to keep alive; HTTP/1.1 keeps alive unless asked to close.
        let isHTTP10 = bytes[7] == 48
        var framing = ResponseFraming(status: status, closes: isHTTP10, chunked: false, contentLength: nil)
        var sawTransferEncoding = false
        try forEachField(bytes, from: lineEnd + 2, base: base) { (name, value) throws(HTTPResponseError) in
            if matches(bytes, name, contentLength) {
                guard let length = number(bytes, value) else {
                    throw HTTPResponseError(kind: .contentLength, reason: "Content-Length is not a number", offset: base + value.lowerBound)
                }
                if let earlier = framing.contentLength, earlier != length {
                    throw HTTPResponseError(
                        kind: .contentLength, reason: "two Content-Length fields disagree (\(earlier) and \(length))",
                        offset: base + value.lowerBound)
                }
                framing.contentLength = length
            } else if matches(bytes, name, transferEncoding) {
                guard matches(bytes, value, chunked), !sawTransferEncoding else {
                    let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[value]), as: UTF8.self)
                    throw HTTPResponseError(
                        kind: .transferEncoding, reason: "unsupported Transfer-Encoding '\(text)' (only one 'chunked')",
                        offset: base + value.lowerBound)
                }
                sawTransferEncoding = true
                framing.chunked = true
            } else if matches(bytes, name, connection) {
                forEachToken(bytes, value) { token in
                    if matches(bytes, token, close) {
                        framing.closes = true
                    } else if isHTTP10, matches(bytes, token, keepAlive) {
                        framing.closes = false
                    }
                }
            } else if matches(bytes, name, serverTiming) {
                forEachToken(bytes, value) { metric in
                    if let micros = computeDuration(bytes, metric) { framing.computeMicroseconds = micros }
                }
            }
        }
        if framing.chunked, framing.contentLength != nil {
            // A message with both is how request smuggling works: refuse it rather than guess.
            throw HTTPResponseError(kind: .transferEncoding, reason: "both Transfer-Encoding and Content-Length", offset: base)
        }
        return framing
    }

    /// Checks the field lines from `from` up to the empty line (a trailer section).
    static func checkFields(_ bytes: UnsafeRawBufferPointer, from: Int, base: Int) throws(HTTPResponseError) {
        try forEachField(bytes, from: from, base: base) { _, _ in }
    }

    // MARK: lines

    /// The index of the CR of the CRLF that ends the line starting at `from`; a bare LF is an error.
    /// The head ends in CRLFCRLF, so a line end is always found.
    private static func endOfLine(_ bytes: UnsafeRawBufferPointer, from: Int, base: Int) throws(HTTPResponseError) -> Int {
        var index = from
        while index < bytes.count, bytes[index] != 10 { index += 1 }
        guard index < bytes.count, index > from, bytes[index - 1] == 13 else {
            throw HTTPResponseError(kind: .headerLine, reason: "a line ends in a bare LF (CRLF is required)", offset: base + from)
        }
        return index - 1
    }

    /// `HTTP/1.x SP 3DIGIT [SP reason]`.
    private static func statusLine(_ bytes: UnsafeRawBufferPointer, end: Int, base: Int) throws(HTTPResponseError) -> Int {
        guard end >= 12, (0..<7).allSatisfy({ bytes[$0] == versionPrefix[$0] }), bytes[7] == 48 || bytes[7] == 49, bytes[8] == 32 else {
            let reason = "the status line does not start with 'HTTP/1.0 ' or 'HTTP/1.1 '"
            throw HTTPResponseError(kind: .statusLine, reason: reason, offset: base)
        }
        var code = 0
        for index in 9..<12 {
            guard (48...57).contains(bytes[index]) else {
                throw HTTPResponseError(kind: .statusLine, reason: "the status code is not three digits", offset: base + 9)
            }
            code = code * 10 + Int(bytes[index] - 48)
        }
        guard code >= 100 else { throw HTTPResponseError(kind: .statusLine, reason: "status code \(code) is below 100", offset: base + 9) }
        if end > 12 {
            guard bytes[12] == 32 else {
                throw HTTPResponseError(kind: .statusLine, reason: "no space between the status code and the reason", offset: base + 12)
            }
            for index in 13..<end where !isFieldByte(bytes[index]) {
                throw HTTPResponseError(kind: .statusLine, reason: "control byte in the reason phrase", offset: base + index)
            }
        }
        return code
    }

    /// Calls `body` with each field's name and trimmed value ranges, from `from` to the empty line.
    private static func forEachField(
        _ bytes: UnsafeRawBufferPointer, from: Int, base: Int, _ body: (Range<Int>, Range<Int>) throws(HTTPResponseError) -> Void
    ) throws(HTTPResponseError) {
        var start = from
        while true {
            let end = try endOfLine(bytes, from: start, base: base)
            if end == start { return }
            guard isTokenByte(bytes[start]) else {
                let reason =
                    bytes[start] == 32 || bytes[start] == 9
                    ? "a field line starts with whitespace (obsolete line folding)" : "a field name has a byte that is not a token"
                throw HTTPResponseError(kind: .headerLine, reason: reason, offset: base + start)
            }
            var colon = start + 1
            while colon < end, isTokenByte(bytes[colon]) { colon += 1 }
            guard colon < end, bytes[colon] == 58 else {
                throw HTTPResponseError(
                    kind: .headerLine, reason: "a field name is not followed by ':' (no space allowed before it)", offset: base + colon)
            }
            var valueStart = colon + 1
            var valueEnd = end
            while valueStart < valueEnd, bytes[valueStart] == 32 || bytes[valueStart] == 9 { valueStart += 1 }
            while valueEnd > valueStart, bytes[valueEnd - 1] == 32 || bytes[valueEnd - 1] == 9 { valueEnd -= 1 }
            for index in valueStart..<valueEnd where !isFieldByte(bytes[index]) {
                throw HTTPResponseError(kind: .headerLine, reason: "control byte in a field value", offset: base + index)
            }
            try body(start..<colon, valueStart..<valueEnd)
            start = end + 2
        }
    }

    /// Calls `body` with each trimmed, non-empty element of a list value, split at `separator`
    /// (a comma; `Server-Timing` metrics split their parameters at semicolons).
    private static func forEachToken(
        _ bytes: UnsafeRawBufferPointer, _ value: Range<Int>, separator: UInt8 = 44, _ body: (Range<Int>) -> Void
    ) {
        var start = value.lowerBound
        while start < value.upperBound {
            var end = start
            while end < value.upperBound, bytes[end] != separator { end += 1 }
            var low = start
            var high = end
            while low < high, bytes[low] == 32 || bytes[low] == 9 { low += 1 }
            while high > low, bytes[high - 1] == 32 || bytes[high - 1] == 9 { high -= 1 }
            if low < high { body(low..<high) }
            start = end + 1
        }
    }

    /// The duration of a `compute;dur=35.12` metric in microseconds; nil for other metrics, or
    /// when it has no duration that reads as milliseconds.
    private static func computeDuration(_ bytes: UnsafeRawBufferPointer, _ metric: Range<Int>) -> Int? {
        // The metric's name, then its parameters.
        var isName = true
        var isCompute = false
        var duration: Range<Int>?
        forEachToken(bytes, metric, separator: 59) { token in
            if isName {
                isName = false
                isCompute = matches(bytes, token, computeMetric)
            } else if isCompute, duration == nil, token.count > durationParameter.count,
                matches(bytes, token.lowerBound..<(token.lowerBound + durationParameter.count), durationParameter)
            {
                duration = (token.lowerBound + durationParameter.count)..<token.upperBound
            }
        }
        guard let duration, let value = milliseconds(bytes, duration), value <= maxMilliseconds else { return nil }
        return Int((value * 1000).rounded())
    }

    /// Longer than any request is timed (a day): past it the value is refused, not converted.
    private static let maxMilliseconds = 86_400_000.0

    /// A non-negative decimal such as `35.120` (digits, at most one point, at most 18 digits).
    private static func milliseconds(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Double? {
        guard !range.isEmpty, range.count <= 19 else { return nil }
        var whole = 0
        var fraction = 0
        var scale = 1
        var sawPoint = false
        var digits = 0
        for index in range {
            let byte = bytes[index]
            if byte == 46, !sawPoint {
                sawPoint = true
            } else if (48...57).contains(byte) {
                digits += 1
                guard digits <= 18 else { return nil }
                if sawPoint {
                    fraction = fraction * 10 + Int(byte - 48)
                    scale *= 10
                } else {
                    whole = whole * 10 + Int(byte - 48)
                }
            } else {
                return nil
            }
        }
        guard digits > 0 else { return nil }
        return Double(whole) + Double(fraction) / Double(scale)
    }

    // MARK: bytes

    /// Case-insensitive comparison with a lowercase name made of letters, digits and '-'.
    private static func matches(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercase: [UInt8]) -> Bool {
        guard range.count == lowercase.count else { return false }
        var index = 0
        for position in range {
            // OR-ing 0x20 lowercases letters and leaves '-' and digits as they are; no other token byte maps onto them.
            guard bytes[position] | 0x20 == lowercase[index] else { return false }
            index += 1
        }
        return true
    }

    /// A decimal of at most 18 digits (no sign, no list).
    private static func number(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 18 else { return nil }
        var value = 0
        for index in range {
            guard (48...57).contains(bytes[index]) else { return nil }
            value = value * 10 + Int(bytes[index] - 48)
        }
        return value
    }

    /// tchar: ALPHA, DIGIT and ``!#$%&'*+-.^_`|~``.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 48...57, 65...90, 97...122: true
        case 33, 35, 36, 37, 38, 39, 42, 43, 45, 46, 94, 95, 96, 124, 126: true
        default: false
        }
    }

    /// What a field value or reason phrase may hold: visible ASCII, space, tab and obs-text.
    static func isFieldByte(_ byte: UInt8) -> Bool { byte == 9 || (byte >= 32 && byte != 127) }
}
