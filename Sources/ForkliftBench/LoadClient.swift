import NIOCore
import NIOHTTP1
import NIOPosix

/// Monotonic nanoseconds, as cheap as a clock read gets.
@inline(__always) func nowNanoseconds() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

/// One keep-alive connection that sends one request at a time. It lives on its worker's event
/// loop and is only touched there, so it needs no locks (hence `@unchecked Sendable`).
final class LoadClient: @unchecked Sendable {
    unowned let worker: LoopWorker
    private var handler: ClientChannelHandler?
    private var payloadIndex: Int
    /// When the request in flight was meant to go (open loop) or went (closed loop).
    private(set) var intendedAt: UInt64 = 0
    /// When the request in flight actually went: the watchdog's timeout counts from here.
    private(set) var sentAt: UInt64 = 0
    private(set) var inFlight = false
    private var inFlightSamples = 0
    private var status = 0
    private var errorBody: [UInt8] = []
    private var timedOut = false
    /// The response said `Connection: close` (gunicorn's sync workers do): reconnect instead of reusing.
    private var serverCloses = false
    /// Requests this client may still start in the phase (closed loop with --requests).
    var budget: Int?
    var isConnected: Bool { handler != nil }
    var isConnecting = false

    init(worker: LoopWorker, firstPayload: Int) {
        self.worker = worker
        self.payloadIndex = firstPayload
    }

    func connect() {
        isConnecting = true
        let worker = self.worker
        ClientBootstrap(group: worker.loop)
            .connectTimeout(worker.settings.timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            // One response is one read: a second read per event would only return EAGAIN.
            .channelOption(.maxMessagesPerRead, value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    // The writer sits below the response decoder, which must still see each request head
                    // (it needs the method to frame the response), but no encoder runs per request.
                    let writer = PreEncodedRequestWriter()
                    try channel.pipeline.syncOperations.addHandler(writer)
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes)))
                    try channel.pipeline.syncOperations.addHandler(ClientChannelHandler(client: self, writer: writer))
                }
            }
            .connect(host: worker.settings.target.host, port: worker.settings.target.port)
            .whenComplete { [self] result in
                isConnecting = false
                switch result {
                case .success: worker.clientReady(self)
                case .failure(let error): worker.clientFailedToConnect(self, reason: HTTPFetch.explain(error))
                }
            }
    }

    /// Sends the next payload; `intended` is the open loop's scheduled time (latency counts from it).
    func send(intended: UInt64? = nil) {
        guard let handler else { return }
        let payloads = worker.settings.payloads
        let payload = payloads[payloadIndex]
        payloadIndex = payloadIndex + 1 == payloads.count ? 0 : payloadIndex + 1
        sentAt = nowNanoseconds()
        intendedAt = intended ?? sentAt
        inFlight = true
        inFlightSamples = payload.samples
        status = 0
        timedOut = false
        if let budget { self.budget = budget - 1 }
        handler.send(payload)
    }

    func close() { handler?.close() }

    /// The watchdog found the request older than the timeout: count it and drop the connection.
    func expire() {
        guard inFlight, !timedOut else { return }
        timedOut = true
        handler?.close()
    }

    // MARK: events from the channel handler

    func attached(_ handler: ClientChannelHandler) { self.handler = handler }

    func received(head: HTTPResponseHead) {
        status = Int(head.status.code)
        serverCloses = !head.isKeepAlive
        errorBody.removeAll(keepingCapacity: true)
    }

    func received(body: ByteBuffer) {
        // Only the first message of each error kind is kept, and only its beginning.
        if !(200..<300).contains(status), errorBody.count < 300, worker.wantsMessage(forStatus: status) {
            errorBody += body.readableBytesView.prefix(300 - errorBody.count)
        }
    }

    func receivedEnd() {
        guard inFlight else { return }
        inFlight = false
        let now = nowNanoseconds()
        if (200..<300).contains(status) {
            worker.recordSuccess(latencyNanoseconds: now &- intendedAt, samples: inFlightSamples)
        } else {
            // The server's {"error": …} text when it sent one, else the body's beginning.
            let snippet = ServerProbe.snippet(errorBody)
            worker.recordFailure(kind: "HTTP \(status)", message: snippet.isEmpty ? "(empty body)" : String(snippet.dropFirst(2)))
        }
        if serverCloses {
            // The next request goes on a new connection once this one is closed (see `closed`).
            handler?.close()
            return
        }
        worker.clientIdle(self)
    }

    func closed(error: (any Error)?) {
        handler = nil
        if inFlight {
            inFlight = false
            if timedOut {
                worker.recordFailure(kind: "timeout", message: "no answer within \(worker.settings.timeoutSeconds) s (--timeout)")
            } else {
                let reason = error.map { HTTPFetch.explain($0) } ?? "the server closed the connection"
                worker.recordFailure(kind: "connection closed", message: reason)
            }
        }
        worker.clientLost(self)
    }
}

/// Passes a connection's HTTP events to its `LoadClient` and writes its requests.
final class ClientChannelHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let client: LoadClient
    private let writer: PreEncodedRequestWriter
    private var context: ChannelHandlerContext?
    private var closeError: (any Error)?

    init(client: LoadClient, writer: PreEncodedRequestWriter) {
        self.client = client
        self.writer = writer
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        client.attached(self)
    }

    func send(_ payload: RequestPayload) {
        guard let context else { return }
        writer.next = payload.wire
        context.writeAndFlush(wrapOutboundOut(.head(payload.head)), promise: nil)
    }

    func close() { context?.close(promise: nil) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): client.received(head: head)
        case .body(let buffer): client.received(body: buffer)
        case .end: client.receivedEnd()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closeError = closeError ?? error
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.context = nil
        client.closed(error: closeError)
        context.fireChannelInactive()
    }
}

/// Turns a request head into the request's pre-encoded bytes (`next`): one write of a shared
/// buffer per request instead of encoding head, body and end each time.
final class PreEncodedRequestWriter: ChannelOutboundHandler, @unchecked Sendable {
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = ByteBuffer

    var next: ByteBuffer?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .head = unwrapOutboundIn(data), let bytes = next {
            next = nil
            context.write(wrapOutboundOut(bytes), promise: promise)
        } else {
            promise?.succeed()
        }
    }
}
