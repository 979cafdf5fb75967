import NIOCore
import NIOHTTP1
import NIOPosix

/// One answer to a one-off request.
public struct FetchedResponse: Sendable {
    public let status: Int
    public let body: [UInt8]
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// One-off HTTP requests on a fresh connection (metadata, config, /metrics): not the load path.
public struct HTTPFetch: Sendable {
    public let target: BenchTarget
    public let group: any EventLoopGroup
    public let timeout: TimeAmount

    public init(target: BenchTarget, group: any EventLoopGroup, timeout: TimeAmount = .seconds(10)) {
        self.target = target
        self.group = group
        self.timeout = timeout
    }

    /// GET `path` (below the target's prefix). Connection failures become `.unreachable`.
    public func get(_ path: String) throws(BenchError) -> FetchedResponse {
        let fullPath = target.path(path)
        let loop = group.any()
        let promise = loop.makePromise(of: FetchedResponse.self)
        let timer = loop.scheduleTask(in: timeout) { promise.fail(ChannelError.connectTimeout(self.timeout)) }
        let host = target.hostHeader
        let connect = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(OneShotHandler(path: fullPath, host: host, promise: promise))
                }
            }
            .connect(host: target.host, port: target.port)
        let channel: any Channel
        do { channel = try connect.wait() } catch {
            timer.cancel()
            promise.fail(error)
            throw BenchError(.unreachable, "cannot reach \(target.description): \(Self.explain(error))")
        }
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        do {
            return try promise.futureResult.wait()
        } catch {
            throw BenchError(.unreachable, "GET \(target.description)\(path): \(Self.explain(error))")
        }
    }

    /// A short reason for a connection-level error.
    static func explain(_ error: any Error) -> String {
        if let error = error as? NIOConnectionError {
            if let first = error.connectionErrors.first { return explain(first.error) }
            if error.dnsAAAAError != nil || error.dnsAError != nil { return "the host name '\(error.host)' does not resolve" }
            return "connection failed"
        }
        if let error = error as? IOError {
            if error.errnoCode == 111 { return "connection refused" }
            return error.description
        }
        if let error = error as? ChannelError {
            switch error {
            case .connectTimeout(let amount): return "no answer within \(Double(amount.nanoseconds) / 1e9) s"
            case .ioOnClosedChannel, .eof, .alreadyClosed, .outputClosed: return "the server closed the connection"
            default: return "\(error)"
            }
        }
        if error is HTTPParserError { return "the answer is not HTTP (\(error))" }
        return "\(error)"
    }
}

/// Sends one GET and collects the answer.
private final class OneShotHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let path: String
    let host: String
    let result: EventLoopPromise<FetchedResponse>
    private var status = 0
    private var body: [UInt8] = []

    init(path: String, host: String, promise: EventLoopPromise<FetchedResponse>) {
        self.path = path
        self.host = host
        self.result = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
        head.headers.add(name: "Host", value: host)
        head.headers.add(name: "Content-Length", value: "0")
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = Int(head.status.code)
        case .body(let buffer): body += buffer.readableBytesView
        case .end: result.succeed(FetchedResponse(status: status, body: body))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        result.fail(ChannelError.eof)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        result.fail(error)
        context.close(promise: nil)
    }
}
