import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A throwaway HTTP server for cases Forklift does not produce. GET answers 200 (or 404 for `/v2`, so
/// it is no V2 server); POST answers 500 with a JSON error, never answers, or answers 200 with a
/// chunked body and closes the connection (as gunicorn's sync workers close theirs). `trickle`
/// answers every request with 200 written in three pieces a few milliseconds apart, cut inside the
/// head, so that the client sees a response over several reads.
final class StubServer: @unchecked Sendable {
    enum Behavior: Sendable {
        case failing
        case hanging
        case chunkedThenClose
        case trickle
    }

    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let channel: any Channel
    /// When each POST arrived (monotonic nanoseconds), in order.
    let arrivals = Arrivals()
    var port: Int { channel.localAddress?.port ?? 0 }
    var url: String { "http://127.0.0.1:\(port)" }

    final class Arrivals: Sendable {
        private let times = Mutex<[UInt64]>([])
        func record() { times.withLock { $0.append(NIODeadline.now().uptimeNanoseconds) } }
        var all: [UInt64] { times.withLock { $0 } }
    }

    init(_ behavior: Behavior) throws {
        let arrivals = self.arrivals
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if behavior == .trickle {
                        try channel.pipeline.syncOperations.addHandler(TrickleHandler(arrivals: arrivals))
                    } else {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(StubHandler(behavior: behavior, arrivals: arrivals))
                    }
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

private final class StubHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let behavior: StubServer.Behavior
    let arrivals: StubServer.Arrivals
    private var head: HTTPRequestHead?

    init(behavior: StubServer.Behavior, arrivals: StubServer.Arrivals) {
        self.behavior = behavior
        self.arrivals = arrivals
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request): head = request
        case .body: break
        case .end:
            guard let head else { return }
            if head.method != .GET { arrivals.record() }
            if head.method == .GET {
                respond(context, status: head.uri == "/v2" ? .notFound : .ok, body: head.uri == "/v2" ? "no such route" : "ok")
            } else if behavior == .failing {
                respond(context, status: .internalServerError, body: "{\"error\": \"boom: the stub always fails\"}")
            } else if behavior == .chunkedThenClose {
                // No Content-Length: NIO's encoder sends the body as chunks.
                var headers = HTTPHeaders()
                headers.add(name: "Connection", value: "close")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "[[0.5,")))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "0.5]]")))), promise: nil)
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
            }
        // .hanging: the request is never answered.
        }
    }

    private func respond(_ context: ChannelHandlerContext, status: HTTPResponseStatus, body: String) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        headers.add(name: "Content-Type", value: "application/json")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

/// Raw bytes in and out: finds each request by its empty line and Content-Length, and answers it in
/// pieces, each flushed on its own after a pause.
private final class TrickleHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let pieces = ["HTTP/1.1 200 OK\r\nContent-Le", "ngth: 12\r\nContent-Type: text/plain\r\n\r\n[[0.5", ", 0.5]]"]
    let arrivals: StubServer.Arrivals
    private var received: [UInt8] = []

    init(arrivals: StubServer.Arrivals) { self.arrivals = arrivals }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytesView
        while let length = Self.requestLength(received) {
            if received.starts(with: "POST ".utf8) { arrivals.record() }
            received.removeFirst(length)
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            for (index, piece) in Self.pieces.enumerated() {
                let bytes = ByteBuffer(string: piece)
                context.eventLoop.scheduleTask(in: .milliseconds(Int64(3 * index))) {
                    bound.value.writeAndFlush(NIOAny(bytes), promise: nil)
                }
            }
        }
    }

    /// The length of the first whole request in `bytes` (head and body), or nil.
    static func requestLength(_ bytes: [UInt8]) -> Int? {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let end = text.range(of: "\r\n\r\n") else { return nil }
        let head = text[..<end.lowerBound].lowercased()
        var body = 0
        if let field = head.range(of: "content-length: ") {
            body = Int(head[field.upperBound...].prefix { $0.isNumber }) ?? 0
        }
        let total = text.utf8.distance(from: text.utf8.startIndex, to: end.upperBound) + body
        return bytes.count >= total ? total : nil
    }
}
