import Foundation
import Glibc
import Logging

/// The supervisor: keeps one zygote and `workers` worker connections alive, replacing what dies.
/// Its state is guarded by the scheduler's lock, so one lock orders every pool event.
final class PoolCore: @unchecked Sendable {
    let entries: [ModelEntry]
    let configuration: PoolConfiguration
    let logger: Logger
    let scheduler: Scheduler
    let metrics: PoolMetrics
    let desiredWorkers: Int
    let modelIndex: [String: Int]
    var lock: NSCondition { scheduler.lock }

    /// Runs `body` under the lock; callable from async code, which may not call lock() itself.
    func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    // Guarded by `lock`:
    var metadata: [ModelMetadata] = []
    var outputCounts: [Int] = []
    var zygote: ZygoteLink?
    var zygoteReady = false
    var generation = 0
    var pendingForks = 0
    var threadsRunning = 0
    var nextWorkerID = 1
    var startWaiter: CheckedContinuation<Result<Void, PoolError>, Never>?
    var startCalled = false
    /// Pids forked by each zygote generation, and the generations whose zygote died: their
    /// workers are orphans that this process reaps.
    var pidsByGeneration: [Int: [Int32]] = [:]
    var deadGenerations: Set<Int> = []
    /// A start outcome that arrived before `start()` was waiting for it.
    var startResult: Result<Void, PoolError>?

    init(entries: [ModelEntry], configuration: PoolConfiguration, logger: Logger) {
        self.entries = entries
        self.configuration = configuration
        self.logger = logger
        metrics = PoolMetrics(modelNames: entries.map(\.name))
        scheduler = Scheduler(names: entries.map(\.name), configuration: configuration, metrics: metrics)
        desiredWorkers = max(1, configuration.workers)
        modelIndex = Dictionary(entries.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    var setup: ZygoteSetup {
        ZygoteSetup(
            models: entries.map { .init(name: $0.name, path: $0.path.path, image: $0.config.image) },
            threads: max(1, configuration.threads),
            maxImagePixels: configuration.maxImagePixels)
    }

    /// Starts the next zygote generation. The caller holds `lock`.
    func launchZygoteLocked(after delay: Double = 0) {
        generation += 1
        threadsRunning += 1
        let generation = generation
        guard delay > 0 else {
            ZygoteLink.launch(executable: configuration.executable, generation: generation, setup: setup, delegate: self)
            return
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + delay) { [self] in
            lock.lock()
            let stopped = scheduler.phase == .stopped
            if stopped { threadsRunning -= 1 }
            lock.unlock()
            guard !stopped else { return }
            ZygoteLink.launch(executable: configuration.executable, generation: generation, setup: setup, delegate: self)
        }
    }

    /// Asks the zygote for as many workers as are missing.
    func replenish() {
        lock.lock()
        guard scheduler.phase != .stopped, let link = zygote, zygoteReady else {
            lock.unlock()
            return
        }
        let missing = max(0, desiredWorkers - scheduler.workers.count - pendingForks)
        pendingForks += missing
        lock.unlock()
        for _ in 0..<missing where !link.requestFork() { break }
    }

    /// Resolves `start()`. The caller holds `lock`.
    func resolveStartLocked(_ result: Result<Void, PoolError>) {
        guard let waiter = startWaiter else {
            if startCalled && startResult == nil && scheduler.phase == .starting { startResult = result }
            return
        }
        startWaiter = nil
        if case .success = result { scheduler.phase = .serving }
        waiter.resume(returning: result)
    }

    /// Stops serving at once: queued requests fail, busy workers are killed, the zygote link
    /// closes. Threads then leave on their own and close their sockets.
    func stopNow() {
        lock.lock()
        scheduler.phase = .stopped
        var busy: [Int32] = []
        for slot in scheduler.workers.values {
            slot.stop = true
            if slot.batch != nil { busy.append(slot.pid) }
        }
        let link = zygote
        // A zygote still loading does not read its control socket: kill it rather than wait.
        let loading = !zygoteReady
        resolveStartLocked(.failure(.shuttingDown))
        lock.broadcast()
        lock.unlock()
        scheduler.failWaiting(with: .shuttingDown)
        for pid in busy { kill(pid, SIGKILL) }
        link?.close()
        if loading { link?.kill() }
    }

    func workerExited(_ slot: WorkerSlot, reason: PoolMetrics.RestartReason?) {
        lock.lock()
        let orphan = deadGenerations.contains(slot.generation)
        lock.unlock()
        // The socket is closed, so the worker is exiting; collect it if its zygote cannot.
        if orphan { OrphanReaper.reap(slot.pid, limit: 2) }
        lock.lock()
        threadsRunning -= 1
        let live = scheduler.workers.count
        lock.unlock()
        if let reason {
            metrics.restarted(reason)
            logger.warning(
                "worker lost; forking a replacement",
                metadata: ["pid": "\(slot.pid)", "reason": "\(reason.rawValue)", "live_workers": "\(live)"])
            replenish()
        } else {
            logger.debug("worker stopped", metadata: ["pid": "\(slot.pid)"])
        }
    }
}

extension PoolCore {
    /// Checks a request against its model (input count, one batch dimension across inputs) and
    /// wraps it for the scheduler.
    func pendingRequest(
        _ request: InferenceRequest, completion: @escaping @Sendable (Result<InferenceResult, PoolError>) -> Void
    ) throws(PoolError) -> PendingRequest {
        guard let index = modelIndex[request.model] else { throw .unknownModel(request.model) }
        let meta = locked { index < metadata.count ? metadata[index] : nil }
        guard let meta else { throw .modelNotReady(request.model) }
        guard request.inputs.count == meta.inputs.count else {
            throw .badInput("model '\(request.model)' takes \(meta.inputs.count) inputs, the request has \(request.inputs.count)")
        }
        var samples = 1
        if meta.maxBatchSize > 0 {
            // An image input is a BYTES list: its element count is its batch dimension.
            let dims = try request.inputs.enumerated().map { position, input throws(PoolError) in
                guard meta.inputs[position].name == meta.imageInput else { return input.shape.first }
                do {
                    return try BytesTensor.elements(of: input.data).count
                } catch {
                    throw .badInput("input '\(meta.inputs[position].name)': \(error)")
                }
            }
            guard let first = dims.first ?? nil, dims.allSatisfy({ $0 == first }) else {
                throw .badInput("model '\(request.model)': every input needs the same batch dimension (dimension 0)")
            }
            samples = first
        }
        return PendingRequest(model: index, inputs: request.inputs, samples: samples, completion: completion)
    }
}

extension PoolCore: ZygoteDelegate {
    func zygoteSpawned(_ link: ZygoteLink) {
        lock.lock()
        zygote = link
        zygoteReady = false
        pendingForks = 0
        let stopped = scheduler.phase == .stopped
        lock.unlock()
        logger.info("zygote started", metadata: ["pid": "\(link.pid)", "generation": "\(link.generation)"])
        if stopped { link.close() }
    }

    func zygoteFailedToSpawn(generation: Int, _ why: String) {
        lock.lock()
        defer { lock.unlock() }
        threadsRunning -= 1
        logger.error("cannot start the zygote", metadata: ["executable": "\(configuration.executable)", "error": "\(why)"])
        if scheduler.phase == .starting {
            resolveStartLocked(.failure(.loadFailed("cannot start the zygote '\(configuration.executable)': \(why)")))
        } else if scheduler.phase == .serving {
            launchZygoteLocked(after: 1)
        }
    }

    func zygoteLoaded(_ link: ZygoteLink, models: [LoadedModel]) {
        let failures = models.compactMap { model in model.error.map { "model '\(model.name)': \($0)" } }
        let problem: String? =
            if !failures.isEmpty { failures.joined(separator: "; ") } else if models.map(\.name) != entries.map(\.name) {
                "the zygote reported models \(models.map(\.name)), expected \(entries.map(\.name))"
            } else { nil }
        lock.lock()
        if let problem {
            logger.error("zygote failed to load models", metadata: ["pid": "\(link.pid)", "error": "\(problem)"])
            resolveStartLocked(.failure(.loadFailed(problem)))
            lock.unlock()
            link.close()
            return
        }
        if metadata.isEmpty {
            do throws(PoolError) {
                metadata = try zip(entries, models).map { (pair) throws(PoolError) -> ModelMetadata in
                    try Self.metadata(pair.0, pair.1, configuration)
                }
            } catch {
                resolveStartLocked(.failure(error))
                lock.unlock()
                link.close()
                return
            }
            outputCounts = metadata.map(\.outputs.count)
            scheduler.configureLocked(batchSizes: metadata.map(\.maxBatchSize), instances: metadata.map(\.instanceCount))
        }
        if zygote === link { zygoteReady = true }
        lock.unlock()
        logger.info(
            "zygote loaded the models", metadata: ["pid": "\(link.pid)", "models": "\(entries.map(\.name).joined(separator: ","))"])
        replenish()
    }

    static func metadata(_ entry: ModelEntry, _ model: LoadedModel, _ configuration: PoolConfiguration) throws(PoolError) -> ModelMetadata {
        do {
            let inputs = try model.inputs.map { spec throws(ControlError) in try spec.valueSpec() }
            let outputs = try model.outputs.map { spec throws(ControlError) in try spec.valueSpec() }
            let labels = try ModelRepository.labels(for: entry)
            let batch = model.batchable ? max(0, entry.config.maxBatchSize ?? configuration.defaultMaxBatchSize) : 0
            return ModelMetadata(
                name: entry.name, version: entry.version, inputs: inputs, outputs: outputs, maxBatchSize: batch, labels: labels,
                imageInput: model.imageInput, instanceCount: entry.config.instanceCount)
        } catch let error as ControlError {
            throw .loadFailed("model '\(entry.name)': \(error)")
        } catch {
            throw .loadFailed("model '\(entry.name)': \(error)")
        }
    }

    func zygoteForked(_ link: ZygoteLink, pid: Int32, fd: Int32) {
        lock.lock()
        if zygote === link { pendingForks = max(0, pendingForks - 1) }
        guard scheduler.phase != .stopped else {
            lock.unlock()
            SocketIO.close(fd)  // the worker sees EOF and exits
            return
        }
        do {
            try SocketIO.setNonBlocking(fd)
        } catch {
            lock.unlock()
            logger.error("cannot use a new worker's socket", metadata: ["pid": "\(pid)", "error": "\(error)"])
            SocketIO.close(fd)
            replenish()
            return
        }
        let slot = WorkerSlot(id: nextWorkerID, pid: pid, fd: fd, generation: link.generation)
        nextWorkerID += 1
        scheduler.workers[slot.id] = slot
        pidsByGeneration[link.generation, default: []].append(pid)
        threadsRunning += 1
        scheduler.updateWorkerGauges()
        let live = scheduler.workers.count
        if scheduler.phase == .starting && live >= desiredWorkers { resolveStartLocked(.success(())) }
        let connection = WorkerConnection(slot: slot, scheduler: scheduler, outputCounts: outputCounts, logger: logger) {
            [self] slot, reason in
            workerExited(slot, reason: reason)
        }
        lock.broadcast()
        lock.unlock()
        logger.info("worker started", metadata: ["pid": "\(pid)", "zygote": "\(link.pid)", "live_workers": "\(live)"])
        connection.start()
    }

    func zygoteRefused(_ link: ZygoteLink, _ why: String) {
        logger.critical("the zygote refused to fork a worker", metadata: ["pid": "\(link.pid)", "error": "\(why)"])
        lock.lock()
        if zygote === link { pendingForks = max(0, pendingForks - 1) }
        resolveStartLocked(.failure(.loadFailed("the zygote refused to fork a worker: \(why)")))
        lock.unlock()
        // Try again later rather than spin on a zygote that cannot fork now.
        DispatchQueue.global().asyncAfter(deadline: .now() + 1) { [self] in replenish() }
    }

    func zygoteExited(_ link: ZygoteLink, _ how: String) {
        lock.lock()
        deadGenerations.insert(link.generation)
        let live = Set(scheduler.workers.values.map(\.pid))
        let exited = (pidsByGeneration.removeValue(forKey: link.generation) ?? []).filter { !live.contains($0) }
        lock.unlock()
        // Workers that exited just before their zygote may have been left unreaped by it.
        for pid in exited { OrphanReaper.reap(pid, limit: 1) }
        lock.lock()
        defer { lock.unlock() }
        threadsRunning -= 1
        guard zygote === link else { return }
        zygote = nil
        zygoteReady = false
        pendingForks = 0
        switch scheduler.phase {
        case .starting:
            logger.error("the zygote exited while loading", metadata: ["pid": "\(link.pid)", "how": "\(how)"])
            resolveStartLocked(.failure(.loadFailed("the zygote (\(configuration.executable)) \(how) before its workers were ready")))
        case .serving:
            // Workers keep serving; a new zygote reloads the models for future forks.
            metrics.restarted(.zygote)
            let quick = monotonicNanoseconds() &- link.spawnedAt < 2_000_000_000
            logger.warning(
                "zygote died; restarting it",
                metadata: ["pid": "\(link.pid)", "how": "\(how)", "live_workers": "\(scheduler.workers.count)"])
            launchZygoteLocked(after: quick ? 1 : 0)
        case .draining, .stopped:
            logger.debug("zygote exited", metadata: ["pid": "\(link.pid)", "how": "\(how)"])
        }
    }
}
