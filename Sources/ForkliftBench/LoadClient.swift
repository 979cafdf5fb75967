import NIOCore
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
    private var timedOut = false
    /// Requests this client may still start in the phase (closed loop with --requests).
    var budget: Int?
    var isConnected: Bool { handler != nil }
    var isConnecting = false
    /// Pausing between a response and the next request (the closed loop's think time).
    var isThinking = false

    init(worker: LoopWorker, firstPayload: Int) {
        self.worker = worker
        self.payloadIndex = firstPayload
    }

    func connect() {
        isConnecting = true
        let worker = self.worker
        let bootstrap = ClientBootstrap(group: worker.loop)
            .connectTimeout(worker.settings.timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            // One response is one read: a second read per event would only return EAGAIN.
            .channelOption(.maxMessagesPerRead, value: 1)
            .channelInitializer { [self] channel in
                // One handler, no HTTP codec: requests are pre-encoded bytes and responses are parsed in place.
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(ClientChannelHandler(client: self)) }
            }
        let connecting =
            if let address = worker.settings.address {
                bootstrap.connect(to: address)
            } else {
                bootstrap.connect(host: worker.settings.target.host, port: worker.settings.target.port)
            }
        connecting.whenComplete { [self] result in
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

    /// A whole response arrived. Returns false when none was expected (the server answered twice).
    func received(_ response: ParsedResponse) -> Bool {
        guard inFlight else { return false }
        inFlight = false
        let now = nowNanoseconds()
        if (200..<300).contains(response.status) {
            worker.recordSuccess(
                latencyNanoseconds: now &- intendedAt, samples: inFlightSamples, computeMicroseconds: response.computeMicroseconds)
        } else {
            // The server's {"error": …} text when it sent one, else the body's beginning (read for the first of a kind only).
            worker.recordFailure(kind: "HTTP \(response.status)", message: Self.message(response.body))
        }
        if response.closesConnection {
            // The next request goes on a new connection once this one is closed (see `closed`).
            handler?.close()
        } else {
            worker.clientIdle(self)
        }
        return true
    }

    static func message(_ body: [UInt8]) -> String {
        let snippet = ServerProbe.snippet(body)
        return snippet.isEmpty ? "(empty body)" : String(snippet.dropFirst(2))
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

/// Writes a connection's requests and parses its responses, passing each whole one to its `LoadClient`.
final class ClientChannelHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let client: LoadClient
    private var context: ChannelHandlerContext?
    private var closeError: (any Error)?
    private var parser = HTTPResponseParser()
    /// Bytes of a response that has not fully arrived (a split head or chunk-size line); usually nil.
    private var pending: ByteBuffer?

    init(client: LoadClient) { self.client = client }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        client.attached(self)
    }

    func send(_ payload: RequestPayload) {
        // The shared buffer is written as is: no copy, no encoding.
        context?.writeAndFlush(wrapOutboundOut(payload.wire), promise: nil)
    }

    func close() { context?.close(promise: nil) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if var buffer = pending {
            pending = nil
            buffer.writeBuffer(&incoming)
            incoming = buffer
        }
        do {
            while let response = try parser.parse(&incoming) {
                guard client.received(response) else {
                    let reason = "a response arrived with no request in flight"
                    throw HTTPResponseError(kind: .unsolicited, reason: reason, offset: parser.bytesConsumed)
                }
            }
        } catch {
            fail(context, error)
            return
        }
        if incoming.readableBytes > 0 { pending = incoming }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { fail(context, error) }

    func channelInactive(context: ChannelHandlerContext) {
        self.context = nil
        // A body that runs until the close ends here; a response cut short is an error.
        do {
            if let response = try parser.finish() { _ = client.received(response) }
        } catch {
            closeError = closeError ?? error
        }
        client.closed(error: closeError)
        context.fireChannelInactive()
    }

    private func fail(_ context: ChannelHandlerContext, _ error: any Error) {
        closeError = closeError ?? error
        context.close(promise: nil)
    }
}
