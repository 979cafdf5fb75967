import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Hummingbird's HTTP/1 channel with `InferChannelHandler` in its pipeline: the same handlers as
/// `HTTP1Channel.setup`, with `ExpectContinueHandler` and the infer handler right after HTTP
/// decoding. Infer requests thus skip the conversion to HTTPTypes and the handlers after it (10%
/// more digits requests a second, 5% for the wide MLP); the infer handler keeps Hummingbird's
/// connection-state handler from closing a connection in the middle of one (see its quiesce
/// handling). Hummingbird's idle timeout, which that handler also runs, is not configured here.
struct InferHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let http1: HTTP1Channel
    let endpoint: InferEndpoint

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let configuration = http1.configuration
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderFieldSize = configuration.httpDecoder.maxHeaderFieldSize
            limits.maxHeaderListSize = configuration.httpDecoder.maxHeaderListSize
            limits.maxHeaderFieldCount = configuration.httpDecoder.maxHeaderFieldCount
            let pipeline = channel.pipeline.syncOperations
            try pipeline.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(), withDecoderLimitConfiguration: limits)
            try pipeline.addHandler(ExpectContinueHandler())
            try pipeline.addHandler(InferChannelHandler(endpoint: endpoint))
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try pipeline.addHandlers(configuration.additionalChannelHandlers())
            try pipeline.addHandler(HTTPConnectionStateHandler(idleTimeout: configuration.idleTimeout.map { .init($0) }, logger: logger))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value: Value, logger: Logger) async {
        await http1.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// Hummingbird's `.http1(configuration:)` with infer served by `InferChannelHandler`.
    static func http1(configuration: HTTP1Channel.Configuration, infer endpoint: InferEndpoint) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            InferHTTP1Channel(http1: HTTP1Channel(responder: responder, configuration: configuration), endpoint: endpoint)
        }
    }
}
