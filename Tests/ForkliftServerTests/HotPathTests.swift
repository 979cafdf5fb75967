import ForkliftPool
import HTTPTypes
import Logging
import NIOHTTP1
import Synchronization
import Testing

@testable import ForkliftServer

/// Request-path helpers that replaced Foundation and per-request work: they must answer as
/// before.
@Suite struct HotPathTests {
    @Test func mediaTypeDropsParametersSpacesAndCase() {
        #expect(MediaType.of("application/json") == "application/json")
        #expect(MediaType.of("Application/JSON; charset=utf-8") == "application/json")
        #expect(MediaType.of("  image/jpeg\t") == "image/jpeg")
        #expect(MediaType.of("multipart/form-data; boundary=x") == "multipart/form-data")
        #expect(MediaType.of("") == "")
        #expect(MediaType.of(" ; x=y") == "")
        #expect(MediaType.of("text/plain;") == "text/plain")
    }

    @Test func serverTimingWritesMillisecondsWithThreeDecimals() {
        #expect(ServerTiming.milliseconds(0) == "0.000")
        #expect(ServerTiming.milliseconds(0.035_123_4) == "35.123")
        #expect(ServerTiming.milliseconds(0.000_001_6) == "0.002")
        #expect(ServerTiming.milliseconds(0.000_05) == "0.050")
        #expect(ServerTiming.milliseconds(2.5) == "2500.000")
        #expect(ServerTiming.milliseconds(-1) == "0.000")
        #expect(ServerTiming.milliseconds(.nan) == "0.000")
        #expect(
            ServerTiming(queueSeconds: 0.000_041, computeSeconds: 0.035_12).headerValue == "queue;dur=0.041, compute;dur=35.120")
    }

    @Test func trimmingTakesSpacesAndTabsOnly() {
        #expect(MediaType.trimmed(" \t 128 \t") == "128")
        #expect(MediaType.trimmed("128") == "128")
        #expect(MediaType.trimmed("   ") == "")
        #expect(MediaType.trimmed("") == "")
        #expect(MediaType.trimmed(" 1 2 ") == "1 2")
        #expect(MediaType.trimmed("\n7") == "\n7", "only HTTP's optional whitespace is trimmed")
    }

    @Test func inferTargetsAreRecognisedFromThePath() throws {
        let plain = try #require(InferTarget(path: "/v2/models/digits/infer"))
        #expect(plain.model == "digits" && plain.version == nil && plain.query.isEmpty && plain.path == "/v2/models/digits/infer")
        let versioned = try #require(InferTarget(path: "/v2/models/digits/versions/3/infer?k=2&x"))
        #expect(versioned.model == "digits" && versioned.version == "3" && versioned.query == "k=2&x")
        #expect(versioned.parameter("k") == "2" && versioned.parameter("x") == "" && versioned.parameter("y") == nil)
        #expect(InferTarget(path: "/v2/models/my%20model/infer")?.model == "my model")
        #expect(InferTarget(path: "/v2/models/a+b/infer?x=a+b")?.model == "a+b", "a plus is a space only in the query")
        #expect(InferTarget(path: "/v2/models/a+b/infer?x=a+b")?.parameter("x") == "a b")
        #expect(InferTarget(path: "/v2/models/digits/infer?k=%33")?.parameter("k") == "3")
        let absolute = try #require(InferTarget(path: "http://127.0.0.1:8080/v2/models/digits/infer?k=2"), "a proxy's absolute form")
        #expect(
            absolute.model == "digits" && absolute.parameter("k") == "2"
                && absolute.path == "http://127.0.0.1:8080/v2/models/digits/infer?k=2")
        #expect(InferTarget(path: "http://127.0.0.1:8080") == nil)
        for other in [
            "/v2/models/digits", "/v2/models//infer", "/v2/models/digits/ready", "/v2/models/digits/versions//infer",
            "/v2/models/digits/infer/", "/v1/models/digits/infer", "v2/models/digits/infer", "/v2/models/digits/version/1/infer",
        ] {
            #expect(InferTarget(path: other) == nil, "\(other)")
        }
    }

    /// What decides whether a body is decoded on the event loop: only its JSON (or compressed)
    /// bytes count, not binary tensors that are merely copied.
    @Test func parsedBytesCountJSONNotBinaryTensors() throws {
        let catalog = ModelCatalog([ModelMetadata(name: "m", version: "1", inputs: [], outputs: [], maxBatchSize: 8, labels: nil)])
        let target = try #require(InferTarget(path: "/v2/models/m/infer"))
        func call(_ fields: [(String, String)]) throws -> InferCall {
            try InferCall(
                headers: InferHeaders(HTTPHeaders(fields)), target: target, catalog: catalog, configuration: ServerConfiguration())
        }
        #expect(try call([]).parsedBytes(bodyCount: 1000) == 1000)
        #expect(try call([("Content-Type", "application/json")]).parsedBytes(bodyCount: 1000) == 1000)
        #expect(try call([("Inference-Header-Content-Length", "120")]).parsedBytes(bodyCount: 1000) == 120)
        #expect(
            try call([("Inference-Header-Content-Length", "120"), ("Content-Encoding", "gzip")]).parsedBytes(bodyCount: 1000) == 1000)
        #expect(try call([("Inference-Header-Content-Length", "5000")]).parsedBytes(bodyCount: 1000) == 1000)
        #expect(try call([("Content-Type", "image/jpeg")]).parsedBytes(bodyCount: 1000) == 0)
    }

    /// The fields an infer call reads, found by name in any case; a repeated field's values are
    /// joined as HTTP joins them.
    @Test func inferHeadersMatchNamesInAnyCaseAndJoinRepeats() {
        let headers = InferHeaders(
            HTTPHeaders([
                ("content-TYPE", "application/json"), ("Inference-Header-Content-Length", "12"), ("Content-Encoding", "gzip"),
                ("CONTENT-ENCODING", "identity"), ("X-Other", "1"),
            ]))
        #expect(headers.contentType == "application/json")
        #expect(headers.inferenceHeaderLength == "12")
        #expect(headers.contentEncoding == "gzip, identity")
        #expect(headers.contentLength == nil)
    }

    @Test func dateHeaderIsAnIMFFixdate() {
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(1_795_782_802) == "Fri, 27 Nov 2026 12:33:22 GMT")
        #expect(HTTPDate.now().hasSuffix(" GMT"))
    }

    /// Where `SinkHandler`s put what they were asked to log.
    final class Sink: Sendable {
        let events = Mutex<[LogEvent]>([])
        var last: Logger.Metadata? { events.withLock { $0.last?.metadata } }
        var count: Int { events.withLock { $0.count } }
    }

    /// Logs into a sink, its own metadata under the statement's (as StreamLogHandler does).
    struct SinkHandler: LogHandler {
        let sink: Sink
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var event = event
            event.metadata = metadata.merging(event.metadata ?? [:]) { _, statement in statement }
            sink.events.withLock { $0.append(event) }
        }
    }

    @Test func deferredMetadataReachesTheWrappedHandler() {
        let sink = Sink()
        let base = Logger(label: "test") { _ in SinkHandler(sink: sink, metadata: ["server": "forklift"]) }
        var logger = base.deferringMetadata()
        #expect(logger[metadataKey: "server"] == "forklift", "the wrapped handler's metadata moves to the wrapper")
        logger[metadataKey: "hb.request.id"] = "7"
        logger.info("hello", metadata: ["server": "override"])
        #expect(sink.last == ["server": "override", "hb.request.id": "7"], "the statement's metadata wins")
        logger.info("again")
        #expect(sink.last == ["server": "forklift", "hb.request.id": "7"])
        logger.logLevel = .error
        logger.info("dropped")
        #expect(sink.count == 2)
        #expect(logger.logLevel == .error)
    }
}
