import NIOCore
import NIOHTTP1

/// Answers `Expect: 100-continue` with an interim `100 Continue`, which Hummingbird does not do.
/// Without it curl holds back every body over 1 MiB for a second before sending it anyway.
/// Sits right after HTTP decoding, so that infer requests (which `InferChannelHandler` takes
/// before Hummingbird's handlers see them) and routed requests both get it. An HTTP/1.0 request's
/// expectation is ignored, as RFC 9110 asks: such a client cannot know interim responses.
final class ExpectContinueHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data), head.version != .http1_0,
            head.headers["expect"].first?.lowercased() == "100-continue"
        {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }
        context.fireChannelRead(data)
    }
}
