import ForkliftPool
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// The HTTP server of `forklift serve`: the V2 routes on Hummingbird, run until SIGTERM or SIGINT,
/// then drained gracefully (the listener closes, in-flight requests finish, up to the grace period).
public struct HTTPServer: Sendable {
    /// An existential rather than a generic parameter: a generic server and routes, instantiated
    /// from another module, ran unspecialized (generic metadata lookups on every request).
    public let backend: any InferenceBackend
    public let catalog: ModelCatalog
    public let configuration: ServerConfiguration
    public let metrics: ServerMetrics
    public let logger: Logger

    public init(
        backend: any InferenceBackend, models: [ModelMetadata], configuration: ServerConfiguration, metrics: ServerMetrics, logger: Logger
    ) {
        self.backend = backend
        self.catalog = ModelCatalog(models)
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
    }

    /// Serves until a shutdown signal. `onListening` gets the bound port (useful with port 0).
    /// Throws `HTTPServerError.cannotListen` when the address cannot be bound.
    public func run(onListening: @escaping @Sendable (Int) -> Void) async throws(HTTPServerError) {
        let router = Router(context: BasicRequestContext.self)
        // Access logs are debug-level: below that the middleware would only cost an async frame
        // and a clock read per request.
        if logger.logLevel <= .debug { router.middlewares.add(AccessLogMiddleware()) }
        Routes(backend: backend, catalog: catalog, configuration: configuration, metrics: metrics).register(on: router)
        let bound = BoundFlag()
        let app = Application(
            router: router,
            server: .http1(
                configuration: .init(),
                infer: InferEndpoint(
                    backend: backend, catalog: catalog, configuration: configuration, metrics: metrics, logger: logger,
                    failureLog: RepeatedFailureLog(interval: configuration.failureLogInterval))),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: MetadataDocuments.serverName),
            onServerRunning: { channel in
                bound.set()
                onListening(channel.localAddress?.port ?? configuration.port)
            },
            logger: logger.deferringMetadata()
        )
        var groupConfiguration = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = configuration.gracefulTimeout
        do {
            try await ServiceGroup(configuration: groupConfiguration).run()
        } catch {
            guard bound.isSet else { throw .cannotListen(host: configuration.host, port: configuration.port, reason: Self.reason(error)) }
            throw .failed("\(error)")
        }
    }

    /// The cause in a bind error, without the service group's wrapping.
    private static func reason(_ error: any Error) -> String {
        if let io = error as? IOError { return io.errnoCode == EADDRINUSE ? "address already in use" : "\(io)" }
        let text = "\(error)"
        if text.contains("Address already in use") || text.contains("EADDRINUSE") { return "address already in use" }
        return text
    }
}

public enum HTTPServerError: Error, Sendable, CustomStringConvertible {
    case cannotListen(host: String, port: Int, reason: String)
    case failed(String)

    public var description: String {
        switch self {
        case .cannotListen(let host, let port, let reason): "cannot listen on \(host):\(port): \(reason)"
        case .failed(let why): "the HTTP server failed: \(why)"
        }
    }
}

/// Set once the listener is bound, so a later failure is not reported as a bind error.
private final class BoundFlag: Sendable {
    private let flag = Mutex(false)
    func set() { flag.withLock { $0 = true } }
    var isSet: Bool { flag.withLock { $0 } }
}
