import ForkliftBench
import NIOCore
import Testing

/// The load path's HTTP/1.1 response parser: framing, split reads, pipelining and malformed input.
@Suite struct HTTPResponseParserTests {
    /// Feeds `chunks` the way the channel handler does (leftover bytes wait for the next read) and
    /// returns every whole response, then what `finish()` gives when `close` is set.
    static func feed(_ chunks: [[UInt8]], parser: inout HTTPResponseParser, close: Bool = false) throws -> [ParsedResponse] {
        var responses: [ParsedResponse] = []
        var pending = ByteBuffer()
        for chunk in chunks {
            pending.writeBytes(chunk)
            while let response = try parser.parse(&pending) { responses.append(response) }
            pending.discardReadBytes()
        }
        if close, let last = try parser.finish() { responses.append(last) }
        return responses
    }

    static func feed(_ text: String, keepBodies: Bool = true, close: Bool = false) throws -> [ParsedResponse] {
        var parser = HTTPResponseParser(bodyLimit: 1 << 20, keepsSuccessBodies: keepBodies)
        return try feed([Array(text.utf8)], parser: &parser, close: close)
    }

    /// The same bytes cut into pieces of `size` bytes.
    static func pieces(_ text: String, size: Int) -> [[UInt8]] {
        let bytes = Array(text.utf8)
        return stride(from: 0, to: bytes.count, by: size).map { Array(bytes[$0..<min($0 + size, bytes.count)]) }
    }

    static func error(_ text: String, close: Bool = false) -> HTTPResponseError? {
        do {
            _ = try feed(text, close: close)
            return nil
        } catch let error as HTTPResponseError {
            return error
        } catch {
            return nil
        }
    }

    static let contentLength = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
    static let chunked =
        "HTTP/1.1 500 Internal Server Error\r\ntransfer-encoding: Chunked\r\n\r\n4\r\nWiki\r\n5;name=\"x\"\r\npedia\r\nA \r\n in chunks\r\n0\r\n\r\n"
    static let trailers = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nChecksum: 1\r\nOther: 2\r\n\r\n"

    /// Forklift's `Server-Timing: queue;dur=…, compute;dur=…` gives each response's compute time.
    @Test func serverTimingComputeDuration() throws {
        func compute(_ value: String, name: String = "Server-Timing") throws -> Int? {
            try Self.feed("HTTP/1.1 200 OK\r\n\(name): \(value)\r\nContent-Length: 0\r\n\r\n").first?.computeMicroseconds
        }
        #expect(try compute("queue;dur=0.041, compute;dur=35.120") == 35_120)
        #expect(try compute("compute;dur=0.002", name: "server-timing") == 2)
        #expect(try compute("compute ; desc=\"engine\" ; dur=2") == 2_000)
        #expect(try compute("cache;dur=1.5, compute;dur=7") == 7_000)
        #expect(try compute("compute") == nil, "no duration")
        #expect(try compute("computed;dur=1") == nil, "another metric")
        #expect(try compute("queue;dur=1") == nil)
        #expect(try compute("compute;dur=1.2.3") == nil)
        #expect(try compute("compute;dur=") == nil)
        #expect(try compute("compute;dur=-1") == nil)
        #expect(try compute("compute;dur=1234567890123456789") == nil, "19 digits")
        #expect(try compute("compute;dur=99999999999") == nil, "longer than a day")
        #expect(try compute("compute;dur=0.1234567890123456789") == nil)
        #expect(try Self.feed(Self.contentLength).first?.computeMicroseconds == nil)
    }

    @Test func contentLengthBodyAndKeepAlive() throws {
        let responses = try Self.feed(Self.contentLength)
        #expect(responses == [ParsedResponse(status: 200, closesConnection: false, body: Array("hello".utf8))])
        // By default a 2xx body is skipped, not kept; an error body is kept up to the limit.
        var parser = HTTPResponseParser(bodyLimit: 4)
        let skipped = try Self.feed([Array(Self.contentLength.utf8)], parser: &parser)
        #expect(skipped.first?.body == [])
        let error = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 26\r\n\r\n{\"error\": \"queue is full\"}"
        let kept = try Self.feed([Array(error.utf8)], parser: &parser)
        #expect(kept == [ParsedResponse(status: 503, closesConnection: false, body: Array("{\"er".utf8))])
        #expect(parser.isIdle)
    }

    @Test func chunkedBodiesWithExtensionsAndTrailers() throws {
        let responses = try Self.feed(Self.chunked + Self.trailers)
        #expect(responses.count == 2)
        #expect(responses.first?.status == 500)
        #expect(responses.first.map { String(decoding: $0.body, as: UTF8.self) } == "Wikipedia in chunks")
        #expect(responses.last == ParsedResponse(status: 200, closesConnection: false, body: Array("abc".utf8)))
    }

    @Test func everySplitPointGivesTheSameResponses() throws {
        let stream = Self.contentLength + Self.chunked + Self.trailers + "HTTP/1.1 204 No Content\r\n\r\n"
        let whole = try Self.feed(stream)
        #expect(whole.count == 4)
        for size in [1, 2, 3, 5, 7, 64] {
            var parser = HTTPResponseParser(bodyLimit: 1 << 20, keepsSuccessBodies: true)
            let split = try Self.feed(Self.pieces(stream, size: size), parser: &parser)
            #expect(split == whole, "pieces of \(size) bytes")
            #expect(parser.isIdle)
        }
    }

    @Test func pipelinedResponsesLeaveTheNextOnesBeginningInTheBuffer() throws {
        var parser = HTTPResponseParser()
        let next = "HTTP/1.1 200 OK\r\nContent-"
        var buffer = ByteBuffer(string: Self.contentLength + Self.contentLength + next)
        #expect(try parser.parse(&buffer)?.status == 200)
        #expect(try parser.parse(&buffer)?.status == 200)
        #expect(try parser.parse(&buffer) == nil)
        #expect(buffer.readableBytes == next.utf8.count, "the partial head stays unread")
        #expect(!parser.isIdle)
        buffer.writeString("Length: 2\r\n\r\nok")
        #expect(try parser.parse(&buffer)?.status == 200)
        #expect(buffer.readableBytes == 0)
    }

    @Test func connectionCloseAndHTTP10() throws {
        let closing = try Self.feed("HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n")
        #expect(closing.first?.closesConnection == true)
        let old = try Self.feed("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
        #expect(old.first?.closesConnection == true, "HTTP/1.0 closes by default")
        let oldKept = try Self.feed("HTTP/1.0 200 OK\r\nconnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n")
        #expect(oldKept.first?.closesConnection == false)
    }

    @Test func bodyUntilCloseInterimAndBodilessStatuses() throws {
        var parser = HTTPResponseParser(bodyLimit: 100, keepsSuccessBodies: true)
        let open = try Self.feed(Self.pieces("HTTP/1.1 200 OK\r\n\r\nall of it", size: 4), parser: &parser)
        #expect(open.isEmpty, "without a length the body ends at the close")
        #expect(try parser.finish() == ParsedResponse(status: 200, closesConnection: true, body: Array("all of it".utf8)))
        let interim = try Self.feed("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n")
        #expect(interim == [ParsedResponse(status: 304, closesConnection: false, body: [])], "100 is skipped, 304 has no body")
        #expect(try Self.feed("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab", close: false).isEmpty)
    }

    @Test(arguments: [
        ("HTTP/2.0 200 OK\r\n\r\n", HTTPResponseError.Kind.statusLine, 0),
        ("HTTP/1.1 20 OK\r\n\r\n", .statusLine, 9),
        ("HTTP/1.1 200OK\r\n\r\n", .statusLine, 12),
        ("HTTP/1.1 099 Low\r\n\r\n", .statusLine, 9),
        ("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", .headerLine, 0),
        ("HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", .headerLine, 31),
        ("HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", .headerLine, 23),
        ("HTTP/1.1 200 OK\r\nX: a\u{1}b\r\n\r\n", .headerLine, 21),
        ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", .contentLength, 33),
        ("HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456789\r\n\r\n", .contentLength, 33),
        ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", .contentLength, 52),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", .transferEncoding, 36),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", .transferEncoding, 0),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", .chunkSize, 47),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1234567890abcdef\r\n", .chunkSize, 47),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3 x\r\n", .chunkSize, 49),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY", .chunkTerminator, 53),
        ("HTTP/1.1 101 Switching Protocols\r\n\r\n", .upgrade, 36),
    ])
    func malformedResponsesAreRefusedWithWhere(input: String, kind: HTTPResponseError.Kind, offset: Int) {
        let error = Self.error(input)
        #expect(error?.kind == kind, "\(input.debugDescription): \(String(describing: error))")
        #expect(error?.offset == offset, "\(input.debugDescription): \(String(describing: error))")
    }

    @Test func limitsTruncationAndOffsetsAcrossResponses() throws {
        let huge = "HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: HTTPResponseParser.maxHeadBytes) + "\r\n\r\n"
        #expect(Self.error(huge)?.kind == .headTooLarge)
        let longChunkLine = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + String(repeating: "e", count: 5000)
        #expect(Self.error(longChunkLine)?.kind == .chunkSize)
        #expect(Self.error("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", close: true)?.kind == .truncated)
        // The second response's error counts from the start of the connection's stream.
        let second = Self.error(Self.contentLength + "HTTP/1.1 2x0 OK\r\n\r\n")
        #expect(second?.offset == Self.contentLength.utf8.count + 9)
        #expect(second?.description.hasPrefix("malformed HTTP response at byte 78:") == true)
    }
}
