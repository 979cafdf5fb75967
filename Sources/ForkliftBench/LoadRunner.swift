import Foundation
import Histogram
import NIOCore
import NIOPosix
import Synchronization

/// Set by a Ctrl-C handler; a running step stops soon after and reports what it has.
public final class Interruption: Sendable {
    private let flag = Atomic<Bool>(false)
    public init() {}
    public func request() { flag.store(true, ordering: .relaxed) }
    public var isRequested: Bool { flag.load(ordering: .relaxed) }
}

/// What the progress line shows while a step runs.
public struct ProgressSnapshot: Sendable {
    public var step: String
    public var phase: String
    public var elapsed: Double
    public var succeeded: Int
    public var failed: Int
    /// Successful requests per second over the last poll interval.
    public var currentRate: Double
}

/// How each step runs.
public struct RunSettings: Sendable {
    public var target: BenchTarget
    public var payloads: [RequestPayload]
    public var duration: Double = 10
    /// Requests per step instead of a duration (closed loop only).
    public var requests: Int?
    public var warmup: Double = 2
    public var timeout: Double = 30
    /// Connections the open loop may open in all.
    public var maxConnections = 1024
    /// Seconds each closed-loop client pauses between a response and its next request, as a
    /// user does between clicks: the server sees idle gaps, and latency still counts from the send.
    public var thinkTime: Double = 0

    public init(target: BenchTarget, payloads: [RequestPayload]) {
        self.target = target
        self.payloads = payloads
    }
}

/// Drives steps of load on its own event loops: warm-up, then the measured phase, with
/// Forklift's `/metrics` read between them and after.
public final class LoadRunner: Sendable {
    public let group: MultiThreadedEventLoopGroup
    public let settings: RunSettings
    let interruption: Interruption

    let address: SocketAddress?

    public init(settings: RunSettings, threads: Int, interruption: Interruption = Interruption()) {
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(threads, 1))
        self.settings = settings
        self.interruption = interruption
        // Only an IP literal is used as is: a name such as localhost may resolve to several addresses,
        // which NIO's connect tries in turn (happy eyeballs).
        address = try? SocketAddress(ipAddress: settings.target.host, port: settings.target.port)
    }

    public func shutdown() { try? group.syncShutdownGracefully() }

    /// Runs one step. `metrics` reads the server's totals (nil for servers other than Forklift).
    public func run(
        _ mode: LoadMode, metrics: (() -> ForkliftMetricsSample?)? = nil, progress: (ProgressSnapshot) -> Void = { _ in }
    ) -> StepResult {
        let loops = Array(group.makeIterator())
        let workerCount: Int
        if case .concurrency(let clients) = mode { workerCount = min(loops.count, clients) } else { workerCount = loops.count }
        let load = LoadSettings(
            target: settings.target, payloads: settings.payloads, timeout: .nanoseconds(Int64(settings.timeout * 1e9)),
            maxConnections: settings.maxConnections, address: address, thinkTime: .nanoseconds(Int64(settings.thinkTime * 1e9)))
        let counters = StepCounters(workers: workerCount)
        let workers = (0..<workerCount).map { LoopWorker(loop: loops[$0], settings: load, counters: counters, index: $0) }
        defer { _ = try? EventLoopFuture.andAllComplete(workers.map { w in w.loop.submit { w.closeAll() } }, on: loops[0]).wait() }

        if settings.warmup > 0 && !interruption.isRequested {
            let end = nowNanoseconds() + UInt64(settings.warmup * 1e9)
            wait(
                phase(mode, workers: workers, end: end, budgets: false), counters: counters, step: mode.label, phase: "warm-up",
                progress: progress)
            _ = try? EventLoopFuture.andAllComplete(workers.map { w in w.loop.submit { w.resetStats() } }, on: loops[0]).wait()
            counters.reset()
        }
        let before = metrics?()
        let cpuBefore = Self.cpuSeconds()
        let start = nowNanoseconds()
        let end = start + UInt64(settings.duration * 1e9)
        let interrupted = wait(
            phase(mode, workers: workers, end: end, budgets: settings.requests != nil), counters: counters, step: mode.label,
            phase: "measuring", progress: progress)
        // A timed step is as long as asked: a request hanging past the end (until its timeout)
        // must not stretch the window and deflate the rate. Answers after the end add at most one per client.
        let elapsed = Double(nowNanoseconds() - start) / 1e9
        let seconds = settings.requests == nil && !interrupted ? min(elapsed, settings.duration) : elapsed
        let cpu = Self.cpuSeconds() - cpuBefore
        let after = before == nil ? nil : metrics?()
        let snapshots = workers.compactMap { w in try? w.loop.submit { w.snapshot() }.wait() }

        var histogram = LoopWorker.emptyHistogram()
        var overCompute = LoopWorker.emptyHistogram()
        var errors: [String: ErrorTally] = [:]
        for snapshot in snapshots {
            histogram.add(snapshot.histogram)
            overCompute.add(snapshot.overCompute)
            for (kind, tally) in snapshot.errors {
                errors[kind, default: ErrorTally(kind: kind, count: 0, firstMessage: tally.firstMessage)].count += tally.count
            }
        }
        let succeeded = snapshots.reduce(0) { $0 + $1.succeeded }
        var server: ServerSideStats?
        if let before, let after { server = after.since(before) }
        return StepResult(
            mode: mode, seconds: seconds, succeeded: succeeded, samples: snapshots.reduce(0) { $0 + $1.samples },
            errors: errors.values.sorted { $0.kind < $1.kind }, latency: succeeded > 0 ? LatencySummary(histogram) : nil,
            latencyOverCompute: succeeded > 0 && overCompute.totalCount == UInt64(succeeded) ? LatencySummary(overCompute) : nil,
            server: server, clientCPUSeconds: cpu, interrupted: interrupted, connections: snapshots.reduce(0) { $0 + $1.connections })
    }

    /// Starts one phase on every worker.
    private func phase(_ mode: LoadMode, workers: [LoopWorker], end: UInt64, budgets: Bool) -> [EventLoopFuture<Void>] {
        switch mode {
        case .concurrency(let clients):
            return workers.enumerated().map { index, worker in
                let mine = clients / workers.count + (index < clients % workers.count ? 1 : 0)
                // Client k of this worker is client index + k × workers overall.
                let perClient: [Int]? = settings.requests.flatMap { total in
                    guard budgets else { return nil }
                    return (0..<mine).map { k in
                        let overall = index + k * workers.count
                        return total / clients + (overall < total % clients ? 1 : 0)
                    }
                }
                return worker.loop.flatSubmit { worker.runClosed(clients: mine, deadline: end, budgets: perClient) }
            }
        case .rate(let rate):
            let share = rate / Double(workers.count)
            let maxClients = max(settings.maxConnections / workers.count, 1)
            return workers.map { worker in worker.loop.flatSubmit { worker.runOpen(rate: share, end: end, maxClients: maxClients) } }
        }
    }

    /// Waits for a phase, reporting progress; on Ctrl-C, stops the load and waits a little more.
    /// Returns true when it was interrupted.
    @discardableResult
    private func wait(
        _ futures: [EventLoopFuture<Void>], counters: StepCounters, step: String, phase: String, progress: (ProgressSnapshot) -> Void
    ) -> Bool {
        let remaining = Atomic<Int>(futures.count)
        for future in futures { future.whenComplete { _ in remaining.subtract(1, ordering: .relaxed) } }
        let start = nowNanoseconds()
        var last = (time: start, succeeded: 0)
        var stopAt: UInt64?
        while remaining.load(ordering: .relaxed) > 0 {
            usleep(50_000)
            let now = nowNanoseconds()
            if interruption.isRequested, stopAt == nil {
                counters.stop.store(true, ordering: .relaxed)
                stopAt = now
            }
            // After Ctrl-C, hanging requests are not waited for past two seconds.
            if let stopAt, now - stopAt > 2_000_000_000 { break }
            if now - last.time >= 250_000_000 {
                let succeeded = counters.succeeded
                progress(
                    ProgressSnapshot(
                        step: step, phase: phase, elapsed: Double(now - start) / 1e9, succeeded: succeeded,
                        failed: counters.failed,
                        currentRate: Double(succeeded - last.succeeded) / (Double(now - last.time) / 1e9)))
                last = (now, succeeded)
            }
        }
        return stopAt != nil
    }

    /// User plus system CPU seconds of this process so far.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
            + Double(usage.ru_stime.tv_usec) / 1e6
    }
}
