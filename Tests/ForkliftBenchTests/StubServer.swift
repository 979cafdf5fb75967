import NIOCore
import NIOHTTP1
import NIOPosix

/// A throwaway HTTP server for cases Forklift does not produce. GET answers 200 (or 404 for `/v2`, so
/// it is no V2 server); POST answers 500 with a JSON error, never answers, or answers 200 with a
/// chunked body and closes the connection (as gunicorn's sync workers close theirs).
final class StubServer: @unchecked Sendable {
    enum Behavior: Sendable {
        case failing
        case hanging
        case chunkedThenClose
    }

    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }
    var url: String { "http://127.0.0.1:\(port)" }

    init(_ behavior: Behavior) throws {
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(StubHandler(behavior: behavior))
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
    private var head: HTTPRequestHead?

    init(behavior: StubServer.Behavior) { self.behavior = behavior }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request): head = request
        case .body: break
        case .end:
            guard let head else { return }
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
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
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
