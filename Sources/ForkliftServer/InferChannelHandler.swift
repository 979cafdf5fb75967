import Dispatch
import ForkliftPool
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1

/// What the infer endpoint needs, shared by every connection.
struct InferEndpoint: Sendable {
    let backend: any InferenceBackend
    let catalog: ModelCatalog
    let configuration: ServerConfiguration
    let metrics: ServerMetrics
    let logger: Logger
    let failureLog: RepeatedFailureLog
}

/// Serves `POST …/infer` inside the connection's channel pipeline, on its event loop, right after
/// HTTP decoding, and passes every other request on to Hummingbird (its conversion to HTTPTypes,
/// its handlers and its router).
///
/// Through Hummingbird's async handlers a digits infer request cost 56–62 µs of server CPU, a
/// health check 32 µs: the request body as an async sequence, task switches, the router, and the
/// async response writer. Here the body is gathered from the pipeline's parts, the pool answers
/// through a callback, and the response parts are written from the loop: 42 µs. Taking the
/// request before the conversion to HTTPTypes and back saved another tenth.
///
/// One request at a time: while an infer request is with the pool, or Hummingbird has not yet
/// written the end of its response, the parts of a pipelined next request wait in `held`, and the
/// connection stops reading until they are handled. Responses therefore keep their order.
/// (NIO's `HTTPServerPipelineHandler` does the same, but it pauses reading around every request,
/// two `epoll_ctl` calls each, even when nothing is pipelined.)
final class InferChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        /// A request for Hummingbird: its parts go on until its end, and the connection is busy
        /// until Hummingbird writes the end of its response.
        case forwarding(requestEnded: Bool, responseEnded: Bool)
        case collecting(Exchange)
        /// Answered early (a bad head or a body past the limit): the rest of the body is dropped.
        case discarding
        /// With the pool.
        case waiting
    }

    /// An infer request in progress.
    private struct Exchange {
        let call: InferCall
        let started: ContinuousClock.Instant
        let keepAlive: Bool
        var body = BodyParts()
    }

    private let endpoint: InferEndpoint
    private var state = State.idle
    /// Parts of the next request that arrived while this one was in progress.
    private var held: [HTTPServerRequestPart] = []
    /// A read that was held back because `held` was not empty.
    private var readPending = false
    /// The client closed its sending side while a request was in progress or held. Hummingbird
    /// would end the connection on seeing it, so it is passed on only once nothing is left.
    private var inputClosedPending = false
    /// Answered early with `Connection: close`: the connection closes once the body is read, as
    /// closing a socket with unread bytes resets it and the client could lose the answer.
    private var closeAtRequestEnd = false
    /// Graceful shutdown asked the connection to close while this handler owned a request.
    /// Hummingbird's connection-state handler, after this one, never sees infer requests and would
    /// close at once; it gets the event when the answer is written.
    private var quiescePending = false
    private var context: ChannelHandlerContext?

    init(endpoint: InferEndpoint) {
        self.endpoint = endpoint
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch state {
        case .idle:
            guard case .head(let head) = part, head.method == .POST, let target = InferTarget(path: head.uri) else {
                state = .forwarding(requestEnded: false, responseEnded: false)
                forward(part, context: context)
                return
            }
            start(head, target: target)
        case .forwarding(false, _):
            forward(part, context: context)
        case .forwarding(true, _), .waiting:
            held.append(part)
        case .collecting(var exchange):
            switch part {
            case .head:
                held.append(part)  // not reached: a head follows an end
            case .body(let buffer):
                guard exchange.body.count + buffer.readableBytes <= exchange.call.maxBody else {
                    state = .discarding
                    fail(exchange.call.bodyTooLarge, exchange: exchange)
                    return
                }
                // The state lets go of the parts first, so that appending does not copy them.
                state = .waiting
                exchange.body.append(buffer)
                state = .collecting(exchange)
            case .end:
                state = .waiting
                submit(exchange)
            }
        case .discarding:
            guard case .end = part else { return }
            if closeAtRequestEnd {
                context.close(promise: nil)
            } else {
                becomeIdle()
            }
        }
    }

    /// Hummingbird's response parts pass here: the end of one frees the connection.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
        guard case .end = unwrapOutboundIn(data), case .forwarding(let requestEnded, _) = state else { return }
        state = .forwarding(requestEnded: requestEnded, responseEnded: true)
        if requestEnded { becomeIdle() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed, isBusy {
            inputClosedPending = true
            return
        }
        if event is ChannelShouldQuiesceEvent, ownsRequest {
            quiescePending = true
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func read(context: ChannelHandlerContext) {
        guard held.isEmpty else {
            readPending = true
            return
        }
        context.read()
    }

    /// Passes a part of the current request to Hummingbird.
    private func forward(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        context.fireChannelRead(wrapInboundOut(part))
        guard case .end = part, case .forwarding(_, let responseEnded) = state else { return }
        state = .forwarding(requestEnded: true, responseEnded: responseEnded)
        if responseEnded { becomeIdle() }
    }

    /// The current request is answered: handle what was held, in order, until a request holds
    /// the connection again; then read again once nothing is held.
    private func becomeIdle() {
        state = .idle
        guard let context else { return }
        if quiescePending {
            // The connection-state handler closes the connection now that nothing is in progress;
            // what was held (pipelined after the shutdown began) is not served, as it would not be there.
            quiescePending = false
            context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            return
        }
        if !held.isEmpty {
            while !held.isEmpty && !isHolding {
                channelRead(context: context, data: wrapInboundOut(held.removeFirst()))
            }
            // Hummingbird's inbound stream delivers what it was given at the end of a read; these
            // parts came from the hold, after their read ended.
            context.fireChannelReadComplete()
        }
        if inputClosedPending && !isBusy {
            inputClosedPending = false
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
        resumeReading()
    }

    private func resumeReading() {
        guard let context else { return }
        if held.isEmpty && readPending {
            readPending = false
            context.read()
        }
    }

    /// True while this handler owns a request, or holds parts of one.
    private var isBusy: Bool { !held.isEmpty || ownsRequest }

    /// True while an infer request is in progress here (not a request Hummingbird serves).
    private var ownsRequest: Bool {
        switch state {
        case .collecting, .discarding, .waiting: true
        case .idle, .forwarding: false
        }
    }

    /// True while a new request's parts must wait.
    private var isHolding: Bool {
        switch state {
        case .forwarding(true, _), .waiting: true
        case .idle, .forwarding(false, _), .collecting, .discarding: false
        }
    }

    private func start(_ head: HTTPRequestHead, target: InferTarget) {
        let started = ContinuousClock.now
        let headers = InferHeaders(head.headers)
        // HTTP/1.1 keeps the connection unless asked to close it; HTTP/1.0 closes it unless asked to keep it.
        let keepAlive = head.isKeepAlive
        do throws(ServerError) {
            let call = try InferCall(headers: headers, target: target, catalog: endpoint.catalog, configuration: endpoint.configuration)
            state = .collecting(Exchange(call: call, started: started, keepAlive: keepAlive))
        } catch {
            state = .discarding
            finish(.failure(error), model: target.model, started: started, keepAlive: keepAlive, target: target)
        }
    }

    /// Bodies with more JSON (or compressed bytes) than this are decoded off the event loop: a
    /// megabyte of JSON takes milliseconds to parse, and the loop serves other connections
    /// meanwhile. Binary tensors are only copied, which is quicker than the hop to another thread.
    static let inlineDecodeLimit = 256 << 10

    private func submit(_ exchange: Exchange) {
        guard let loop = context?.eventLoop else { return }
        let handler = NIOLoopBound(self, eventLoop: loop)
        let call = exchange.call
        let started = exchange.started
        let keepAlive = exchange.keepAlive
        let backend = endpoint.backend
        let body = exchange.body
        // Runs on the loop for small bodies, else on a global queue; the answer always comes
        // back to the loop.
        let decodeAndSubmit: @Sendable () -> Void = {
            let answer: InferCall.Answer
            let request: InferenceRequest
            do throws(ServerError) {
                (request, answer) = try call.request(body: body)
            } catch {
                loop.execute { handler.value.answered(.failure(error), call: call, started: started, keepAlive: keepAlive) }
                return
            }
            backend.submit(request) { result in
                // A pool thread: encoding and writing happen back on the connection's loop.
                loop.execute {
                    let result = result.mapError(ServerError.init).flatMap { (result) -> Result<EncodedInferResponse, ServerError> in
                        Result { () throws(ServerError) in try call.response(result, answer: answer) }
                    }
                    handler.value.answered(result, call: call, started: started, keepAlive: keepAlive)
                }
            }
        }
        if call.parsedBytes(bodyCount: body.count) > Self.inlineDecodeLimit {
            DispatchQueue.global().async(execute: decodeAndSubmit)
        } else {
            decodeAndSubmit()
        }
    }

    private func answered(
        _ result: Result<EncodedInferResponse, ServerError>, call: InferCall, started: ContinuousClock.Instant, keepAlive: Bool
    ) {
        finish(result, model: call.model.name, started: started, keepAlive: keepAlive, target: call.target)
        becomeIdle()
    }

    private func fail(_ error: ServerError, exchange: Exchange) {
        finish(
            .failure(error), model: exchange.call.model.name, started: exchange.started, keepAlive: exchange.keepAlive,
            target: exchange.call.target)
    }

    /// Writes the response, records it, and closes the connection when the client asked to.
    private func finish(
        _ result: Result<EncodedInferResponse, ServerError>, model: String, started: ContinuousClock.Instant, keepAlive: Bool,
        target: InferTarget
    ) {
        let status: HTTPResponse.Status
        let outcome: String
        var fields = HTTPHeaders()
        let body: [UInt8]
        switch result {
        case .success(let encoded):
            status = .ok
            outcome = ServerMetrics.success
            if let length = encoded.headerLength {
                fields.add(name: "Content-Type", value: "application/octet-stream")
                fields.add(name: InferCall.headerLengthField, value: String(length))
            } else {
                fields.add(name: "Content-Type", value: "application/json")
            }
            if let timing = encoded.timing { fields.add(name: ServerTiming.field, value: timing.headerValue) }
            body = encoded.body
        case .failure(let error):
            status = error.status
            outcome = error.outcome
            for field in error.headerFields { fields.add(name: field.name.rawName, value: field.value) }
            body = error.jsonBody
            if error.status.code >= 500, let unlogged = endpoint.failureLog.admit(.init(model: model, status: error.status.code)) {
                var metadata: Logger.Metadata = ["model": "\(model)", "status": "\(error.status.code)", "error": "\(error.message)"]
                if unlogged > 0 { metadata["unlogged_since_last"] = "\(unlogged)" }
                endpoint.logger.warning("infer failed", metadata: metadata)
            }
        }
        let seconds = Elapsed.seconds(since: started)
        endpoint.metrics.record(model: model, outcome: outcome, seconds: seconds)
        if endpoint.logger.logLevel <= .debug {
            endpoint.logger.debug("POST \(target.path) \(status.code) \(Int(seconds * 1e6))µs")
        }
        guard let context else { return }
        fields.add(name: "Content-Length", value: String(body.count))
        fields.add(name: "Date", value: HTTPDate.now())
        fields.add(name: "Server", value: MetadataDocuments.serverName)
        if !keepAlive { fields.add(name: "Connection", value: "close") }
        context.write(
            wrapOutboundOut(
                .head(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status.code), headers: fields))),
            promise: nil)
        if !body.isEmpty { context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil) }
        guard !keepAlive else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        if case .discarding = state {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            closeAtRequestEnd = true
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}
