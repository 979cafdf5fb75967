import Dispatch
import ForkliftPool
@preconcurrency import Glibc
import Logging
import Synchronization

/// A second SIGTERM or SIGINT stops the server at once, as a second Ctrl-C does in most servers:
/// otherwise a client that never finishes sending its request holds the graceful shutdown for
/// the whole grace period. The first signal belongs to the service group, which starts the
/// graceful shutdown; this only counts signals once armed, after the group has trapped them.
final class SecondSignalStop: Sendable {
    private let sources = Mutex<[any DispatchSourceSignal]>([])
    private let signalsSeen = Mutex(0)
    private let pool: WorkerPool
    private let logger: Logger

    init(pool: WorkerPool, logger: Logger) {
        self.pool = pool
        self.logger = logger
    }

    /// Starts counting. Call once the service group traps the signals: armed earlier, this would
    /// catch a first signal that the group never sees, and the server would not stop on it.
    func arm() {
        sources.withLock { sources in
            guard sources.isEmpty else { return }
            for number in [SIGTERM, SIGINT] {
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { [self] in count(number) }
                source.resume()
                sources.append(source)
            }
        }
    }

    private func count(_ number: Int32) {
        let seen = signalsSeen.withLock { count in
            count += 1
            return count
        }
        guard seen >= 2 else { return }
        let name = number == SIGINT ? "SIGINT" : "SIGTERM"
        logger.warning("second signal (\(name)): stopping at once; requests still in flight are dropped")
        // The workers and the zygote would also exit when this process does (they watch their
        // parent), but killing them first leaves nothing running for even a moment.
        for pid in pool.workerPIDs + [pool.zygotePID].compactMap({ $0 }) { kill(pid, SIGKILL) }
        ServeLaunch.say("stopped at once by a second signal", error: true)
        _exit(128 + number)
    }
}
