import Foundation
import Histogram
import NIOCore
import Synchronization

/// What every connection of a run shares: immutable, so any loop may read it.
struct LoadSettings: Sendable {
    let target: BenchTarget
    let payloads: [RequestPayload]
    let timeout: TimeAmount
    /// The most connections the open loop opens in all (per worker: this divided by the workers).
    let maxConnections: Int
    /// The target's address when the URL gives an IP: connecting to it directly skips the resolver,
    /// which a server that closes every connection (gunicorn's sync workers) would otherwise cost per
    /// request. Nil for host names, which each connect resolves.
    let address: SocketAddress?
    /// The closed loop's pause between a response and the client's next request.
    let thinkTime: TimeAmount

    var timeoutSeconds: String { LoadMode.number(Double(timeout.nanoseconds) / 1e9) }
}

/// The stop flag, and each worker's running totals for the progress line.
final class StepCounters: Sendable {
    let stop = Atomic<Bool>(false)
    let workers: [WorkerTally]

    init(workers: Int) { self.workers = (0..<workers).map { _ in WorkerTally() } }

    var succeeded: Int { workers.reduce(0) { $0 + $1.succeeded.load(ordering: .relaxed) } }
    var failed: Int { workers.reduce(0) { $0 + $1.failed.load(ordering: .relaxed) } }

    func reset() {
        for tally in workers {
            tally.succeeded.store(0, ordering: .relaxed)
            tally.failed.store(0, ordering: .relaxed)
        }
    }
}

/// One worker's totals. Each worker has its own, so that two event loops never write to one cache
/// line on every response (a shared counter costs a cross-core cache miss per request).
final class WorkerTally: Sendable {
    let succeeded = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    /// Keeps the next tally's counters off this one's cache line: malloc packs small objects together.
    private let padding: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)
}

/// What a worker measured in a phase.
struct WorkerSnapshot: Sendable {
    var histogram: Histogram<UInt64>
    /// Latency minus the server's compute time, of the successes that reported it.
    var overCompute: Histogram<UInt64>
    var succeeded: Int
    var samples: Int
    var errors: [String: ErrorTally]
    var connections: Int
}

/// The clients of one event loop and what they measured. Everything here runs on `loop`, so
/// recording a response takes no lock and makes no async hop (hence `@unchecked Sendable`).
final class LoopWorker: @unchecked Sendable {
    let loop: any EventLoop
    let settings: LoadSettings
    let counters: StepCounters
    private let tally: WorkerTally
    private var clients: [LoadClient] = []
    private var histogram = LoopWorker.emptyHistogram()
    private var overCompute = LoopWorker.emptyHistogram()
    private var succeeded = 0
    private var samples = 0
    private var errors: [String: ErrorTally] = [:]
    private var phase: Phase?
    private var finished: EventLoopPromise<Void>?
    private var watchdog: RepeatedTask?
    private var open = OpenLoopState()

    private enum Phase {
        case closed(deadline: UInt64)
        case open(end: UInt64)
    }

    init(loop: any EventLoop, settings: LoadSettings, counters: StepCounters, index: Int) {
        self.loop = loop
        self.settings = settings
        self.counters = counters
        tally = counters.workers[index]
    }

    /// Microseconds from 1 µs to an hour, three significant digits.
    static func emptyHistogram() -> Histogram<UInt64> {
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    }

    // MARK: phases (called through `loop.flatSubmit`)

    /// Closed loop: `count` clients each send one request after another until `deadline` or their budget.
    func runClosed(clients count: Int, deadline: UInt64, budgets: [Int]?) -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        finished = promise
        phase = .closed(deadline: deadline)
        startWatchdog()
        while clients.count < count { clients.append(LoadClient(worker: self, firstPayload: clients.count % settings.payloads.count)) }
        for (index, client) in clients.enumerated() {
            client.budget = budgets?[index]
            if client.isThinking {
                continue  // it goes on when its pause ends
            } else if client.isConnected {
                if shouldContinue(client) { client.send() }
            } else if !client.isConnecting {
                client.connect()
            }
        }
        checkFinished()
        return promise.futureResult
    }

    /// Open loop: Poisson arrivals at `rate` per second until `end`, each sent on an idle connection
    /// (a new one when none is idle, up to the limit); latency counts from the arrival time.
    func runOpen(rate: Double, end: UInt64, maxClients: Int) -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        finished = promise
        phase = .open(end: end)
        open.start(rate: rate, end: end, maxClients: maxClients, now: nowNanoseconds())
        startWatchdog()
        scheduleArrival()
        // Past the end plus the timeout, whatever is still waiting or in flight is counted as failed.
        loop.scheduleTask(deadline: .uptimeNanoseconds(end) + settings.timeout) { [self] in
            guard case .open(let phaseEnd)? = phase, phaseEnd == end else { return }
            if !open.backlog.isEmpty {
                recordFailures(
                    kind: "not sent", count: open.backlog.count,
                    message: "no connection was free before the step ended (the server kept up with less than the offered rate)")
                open.backlog.removeAll()
            }
            for client in clients where client.inFlight { client.expire() }
            checkFinished()
        }
        return promise.futureResult
    }

    func resetStats() {
        histogram = Self.emptyHistogram()
        overCompute = Self.emptyHistogram()
        succeeded = 0
        samples = 0
        errors = [:]
    }

    func snapshot() -> WorkerSnapshot {
        WorkerSnapshot(
            histogram: histogram, overCompute: overCompute, succeeded: succeeded, samples: samples, errors: errors,
            connections: clients.filter(\.isConnected).count)
    }

    func closeAll() {
        phase = nil
        for client in clients { client.close() }
    }

    // MARK: events from clients

    func clientReady(_ client: LoadClient) {
        switch phase {
        case .closed?:
            if shouldContinue(client) { client.send() } else { checkFinished() }
        case .open?:
            open.idle.append(client)
            dispatch()
        case nil: client.close()
        }
    }

    func clientIdle(_ client: LoadClient) { afterThinking(client) { [self] in clientReady(client) } }

    func clientLost(_ client: LoadClient) {
        switch phase {
        case .closed?:
            // A server that closes every connection (gunicorn's sync workers) ends each request here.
            afterThinking(client) { [self] in if shouldContinue(client) { client.connect() } else { checkFinished() } }
        case .open?:
            clients.removeAll { $0 === client }
            open.idle.removeAll { $0 === client }
            dispatch()
        case nil:
            // Between phases: forget it; the next phase opens what it needs.
            clients.removeAll { $0 === client }
            open.idle.removeAll { $0 === client }
        }
    }

    func clientFailedToConnect(_ client: LoadClient, reason: String) {
        recordFailure(kind: "connect failed", message: reason)
        switch phase {
        case .closed?:
            if let budget = client.budget { client.budget = budget - 1 }
            guard shouldContinue(client) else { return checkFinished() }
            // Retry after a pause, so that a server that refuses connections is not hammered.
            client.isConnecting = true
            loop.scheduleTask(in: .milliseconds(100)) { client.connect() }
        case .open?:
            clients.removeAll { $0 === client }
            open.connectPauseUntil = nowNanoseconds() + 100_000_000
            loop.scheduleTask(in: .milliseconds(100)) { [self] in dispatch() }
            checkFinished()
        case nil: break
        }
    }

    func recordSuccess(latencyNanoseconds: UInt64, samples count: Int, computeMicroseconds: Int? = nil) {
        let micros = min(max(latencyNanoseconds / 1000, 1), 3_600_000_000)
        _ = histogram.record(micros)
        if let computeMicroseconds, computeMicroseconds >= 0 {
            let compute = UInt64(computeMicroseconds)
            _ = overCompute.record(micros > compute ? micros - compute : 1)
        }
        succeeded += 1
        samples += count
        tally.succeeded.add(1, ordering: .relaxed)
    }

    /// Counts a failure; the message is only worked out for the first failure of its kind.
    func recordFailure(kind: String, message: @autoclosure () -> String) { recordFailures(kind: kind, count: 1, message: message()) }

    private func recordFailures(kind: String, count: Int, message: @autoclosure () -> String) {
        if errors[kind] == nil { errors[kind] = ErrorTally(kind: kind, count: 0, firstMessage: message()) }
        errors[kind]?.count += count
        tally.failed.add(count, ordering: .relaxed)
    }

    // MARK: internals

    /// Runs `next` at once, or, in the closed loop with a think time, after the client's pause.
    private func afterThinking(_ client: LoadClient, _ next: @escaping () -> Void) {
        guard case .closed? = phase, settings.thinkTime > .zero else { return next() }
        client.isThinking = true
        loop.assumeIsolated().scheduleTask(in: settings.thinkTime) {
            client.isThinking = false
            next()
        }
    }

    private func shouldContinue(_ client: LoadClient) -> Bool {
        guard case .closed(let deadline)? = phase, !counters.stop.load(ordering: .relaxed) else { return false }
        if let budget = client.budget { return budget > 0 }
        return nowNanoseconds() < deadline
    }

    private func checkFinished() {
        guard let phase, let promise = finished else { return }
        // A phase waits for its thinking clients too: one ending between phases would find no
        // phase and close its connection.
        let busy = clients.contains { $0.inFlight || $0.isConnecting || $0.isThinking }
        switch phase {
        case .closed: if busy { return }
        case .open: if busy || !open.arrivalsDone || !open.backlog.isEmpty { return }
        }
        self.phase = nil
        finished = nil
        watchdog?.cancel()
        watchdog = nil
        promise.succeed()
    }

    private func startWatchdog() {
        watchdog?.cancel()
        let period = TimeAmount.nanoseconds(max(min(settings.timeout.nanoseconds / 4, 100_000_000), 1_000_000))
        let limit = UInt64(settings.timeout.nanoseconds)
        watchdog = loop.scheduleRepeatedTask(initialDelay: period, delay: period) { [self] _ in
            let now = nowNanoseconds()
            for client in clients where client.inFlight && now &- client.sentAt > limit { client.expire() }
            if counters.stop.load(ordering: .relaxed), case .open? = phase {
                open.arrivalsDone = true
                open.backlog.removeAll()
                checkFinished()
            }
        }
    }

    private func scheduleArrival() {
        guard case .open? = phase, !open.arrivalsDone else { return }
        loop.scheduleTask(deadline: .uptimeNanoseconds(open.nextArrival)) { [self] in
            guard case .open? = phase else { return }
            open.admitArrivals(now: nowNanoseconds(), stop: counters.stop.load(ordering: .relaxed))
            dispatch()
            scheduleArrival()
        }
    }

    private func dispatch() {
        guard case .open? = phase else { return }
        while !open.backlog.isEmpty, let client = open.idle.popLast() {
            guard client.isConnected else { continue }
            client.send(intended: open.backlog.removeFirst())
        }
        let connecting = clients.filter(\.isConnecting).count
        if open.backlog.count > connecting, nowNanoseconds() >= open.connectPauseUntil {
            let extra = min(open.backlog.count - connecting, open.maxClients - clients.count)
            for _ in 0..<max(extra, 0) {
                let client = LoadClient(worker: self, firstPayload: clients.count % settings.payloads.count)
                clients.append(client)
                client.connect()
            }
        }
        checkFinished()
    }
}

/// The open loop's arrivals: a Poisson process (exponential gaps) and the requests waiting for a connection.
struct OpenLoopState {
    var meanGapNanoseconds = 0.0
    var nextArrival: UInt64 = 0
    var end: UInt64 = 0
    var maxClients = 0
    var arrivalsDone = true
    var backlog = CircularBuffer<UInt64>()
    var idle: [LoadClient] = []
    var connectPauseUntil: UInt64 = 0

    mutating func start(rate: Double, end: UInt64, maxClients: Int, now: UInt64) {
        meanGapNanoseconds = 1e9 / rate
        self.end = end
        self.maxClients = maxClients
        backlog.removeAll()
        arrivalsDone = false
        nextArrival = now + gap()
        if nextArrival >= end { arrivalsDone = true }
    }

    /// Queues every arrival due by `now`; past the end (or on stop) no more come.
    mutating func admitArrivals(now: UInt64, stop: Bool) {
        while !stop, nextArrival <= now, nextArrival < end {
            backlog.append(nextArrival)
            nextArrival += gap()
        }
        if stop || nextArrival >= end { arrivalsDone = true }
    }

    private func gap() -> UInt64 {
        UInt64(-log(Double.random(in: Double.leastNonzeroMagnitude..<1)) * meanGapNanoseconds)
    }
}
