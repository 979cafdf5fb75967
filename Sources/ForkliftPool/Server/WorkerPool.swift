import CForkliftSys
import Foundation
import Glibc
import Logging

/// The worker pool: a zygote that preloads the models, worker processes forked from it, and
/// the scheduler that batches requests onto them (DESIGN.md, Processes and Batching).
///
///     let pool = WorkerPool(models: try ModelRepository.scan(url), configuration: config, logger: logger)
///     try await pool.start()
///     let result = try await pool.infer(InferenceRequest(model: "digits", inputs: [tensor]))
///     await pool.shutdown(grace: .seconds(30))
public final class WorkerPool: Sendable {
    private let core: PoolCore

    public init(models: [ModelEntry], configuration: PoolConfiguration, logger: Logger) {
        core = PoolCore(entries: models, configuration: configuration, logger: logger)
    }

    deinit {
        // Not shut down: stop at once so that no worker or zygote outlives the pool.
        core.stopNow()
    }

    /// Spawns the zygote, waits for every model to load and for the workers to be ready, within
    /// `loadTimeout`. A model that fails to load fails the start with `.loadFailed`.
    public func start() async throws(PoolError) {
        // A write to a dead worker must come back as EPIPE (a crash), not kill the server.
        signal(SIGPIPE, SIG_IGN)
        // Workers outlive a dead zygote; as a subreaper this process inherits and reaps them.
        if fl_set_child_subreaper() != 0 {
            core.logger.warning("prctl(PR_SET_CHILD_SUBREAPER) failed; workers of a dead zygote may stay zombies")
        }
        let core = core
        let again = core.locked {
            defer { core.startCalled = true }
            return core.startCalled
        }
        guard !again else { throw .loadFailed("start() was already called") }
        guard !core.entries.isEmpty else { throw .loadFailed("no models to serve") }
        let limit = core.configuration.loadTimeout
        let watchdog = Task { [core] in
            try? await Task.sleep(for: limit)
            guard !Task.isCancelled else { return }
            let seconds = Double(Scheduler.nanoseconds(limit)) / 1e9
            core.locked {
                core.resolveStartLocked(.failure(.loadFailed("loading the models took longer than the load timeout (\(seconds) s)")))
            }
        }
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, PoolError>, Never>) in
            core.locked {
                core.startWaiter = continuation
                if let early = core.startResult {
                    core.resolveStartLocked(early)
                } else if core.scheduler.phase == .starting {
                    core.launchZygoteLocked()
                } else {
                    core.resolveStartLocked(.failure(.shuttingDown))
                }
            }
        }
        watchdog.cancel()
        if case .failure(let error) = result {
            await shutdown(grace: .zero)
            throw error
        }
        core.logger.info(
            "worker pool ready", metadata: ["workers": "\(workerPIDs.count)", "zygote": "\(zygotePID.map(String.init) ?? "-")"])
    }

    /// What each model takes and gives, in the order of the repository. Empty before `start()`.
    public var metadata: [ModelMetadata] {
        core.lock.lock()
        defer { core.lock.unlock() }
        return core.metadata
    }

    /// True while the model is served and has at least one live worker.
    public func isReady(model: String) -> Bool {
        core.lock.lock()
        defer { core.lock.unlock() }
        return core.modelIndex[model] != nil && core.scheduler.phase == .serving && !core.scheduler.workers.isEmpty
    }

    /// True while every model is ready.
    public var isReady: Bool {
        core.lock.lock()
        defer { core.lock.unlock() }
        return core.scheduler.phase == .serving && !core.scheduler.workers.isEmpty
    }

    /// Pids of the live worker processes (for tests and diagnostics).
    public var workerPIDs: [Int32] {
        core.lock.lock()
        defer { core.lock.unlock() }
        return core.scheduler.workers.values.sorted { $0.id < $1.id }.map(\.pid)
    }

    /// Pid of the current zygote, nil while it is being restarted.
    public var zygotePID: Int32? {
        core.lock.lock()
        defer { core.lock.unlock() }
        return core.zygote?.pid
    }

    /// Requests waiting in the model's queue (for tests and diagnostics).
    func queueDepth(model: String) -> Int {
        core.lock.lock()
        defer { core.lock.unlock() }
        guard let index = core.modelIndex[model], index < core.scheduler.queues.count else { return 0 }
        return core.scheduler.queues[index].waiting.count
    }

    /// Requests of the model queued or running (for tests and diagnostics).
    func pendingCount(model: String) -> Int {
        core.lock.lock()
        defer { core.lock.unlock() }
        guard let index = core.modelIndex[model], index < core.scheduler.queues.count else { return 0 }
        let running = core.scheduler.workers.values.reduce(0) { $0 + ($1.batch.map { $0.model == index ? $0.requests.count : 0 } ?? 0) }
        return core.scheduler.queues[index].waiting.count + running
    }

    /// Queues the request for its model's next batch and waits for its outputs.
    public func infer(_ request: InferenceRequest) async throws(PoolError) -> InferenceResult {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<InferenceResult, PoolError>, Never>) in
            submit(request) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Queues the request for its model's next batch. `completion` runs once, on a pool thread
    /// (the worker connection's that read the answer) or at once on the caller's when the request
    /// is refused, so it must only hand the result on. The HTTP layer uses this rather than
    /// `infer`, so that an answer costs no task and no hop through Swift's executor.
    public func submit(
        _ request: InferenceRequest, completion: @escaping @Sendable (Result<InferenceResult, PoolError>) -> Void
    ) {
        let core = core
        let pending: PendingRequest
        do throws(PoolError) {
            pending = try core.pendingRequest(request, completion: completion)
        } catch {
            completion(.failure(error))
            return
        }
        switch core.locked({ core.scheduler.enqueueLocked(pending, zygoteReady: core.zygoteReady) }) {
        case .success(true): core.scheduler.wakeOneWorker()
        case .success(false): break
        case .failure(let refused): completion(.failure(refused))
        }
    }

    /// Stops taking requests (`.shuttingDown`), finishes what is queued and running within
    /// `grace`, then closes the workers and the zygote and waits for them. Idempotent.
    public func shutdown(grace: Duration) async {
        let core = core
        core.locked {
            if core.scheduler.phase == .serving { core.scheduler.phase = .draining }
            core.lock.broadcast()
        }
        let deadline = monotonicNanoseconds() &+ Scheduler.nanoseconds(grace)
        while monotonicNanoseconds() < deadline {
            if core.locked({ core.scheduler.idleLocked }) { break }
            try? await Task.sleep(for: .milliseconds(2))
        }
        core.stopNow()
        // Wait for the worker threads to close their sockets and for the zygote to be reaped
        // (it waits up to two seconds for its workers); bounded, in case something is wedged.
        let waitLimit = monotonicNanoseconds() &+ 10_000_000_000
        while monotonicNanoseconds() < waitLimit {
            if core.locked({ core.threadsRunning }) == 0 { break }
            try? await Task.sleep(for: .milliseconds(5))
        }
        core.logger.info("worker pool stopped")
    }
}
