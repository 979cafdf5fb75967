import Logging

/// Wraps the server's log handler so that setting metadata costs a dictionary update only.
/// Hummingbird gives every request a logger with a request id in its metadata, and
/// `StreamLogHandler` renders its metadata to text on every change: about 2% of the server's CPU
/// per request, for text that is printed only when the request logs something.
struct DeferredMetadataLogHandler: LogHandler {
    private var inner: any LogHandler
    var metadata: Logger.Metadata

    init(wrapping handler: any LogHandler) {
        inner = handler
        metadata = handler.metadata
        inner.metadata = [:]
    }

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        if !metadata.isEmpty {
            // The statement's own metadata wins over the logger's, as in swift-log's handlers.
            event.metadata = metadata.merging(event.metadata ?? [:]) { _, statement in statement }
        }
        inner.log(event: event)
    }
}

extension Logger {
    /// This logger, with its handler wrapped in a `DeferredMetadataLogHandler`.
    func deferringMetadata() -> Logger {
        let wrapped = DeferredMetadataLogHandler(wrapping: handler)
        return Logger(label: label) { _ in wrapped }
    }
}
