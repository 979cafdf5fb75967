import Foundation
import Synchronization

/// A request waiting for its answer. Its mutable fields belong to the scheduler's lock.
final class PendingRequest: @unchecked Sendable {
    let model: Int
    let inputs: [WireTensor]
    let samples: Int
    let enqueued: UInt64
    var retried = false
    private var completion: (@Sendable (Result<InferenceResult, PoolError>) -> Void)?

    init(
        model: Int, inputs: [WireTensor], samples: Int, completion: @escaping @Sendable (Result<InferenceResult, PoolError>) -> Void
    ) {
        self.model = model
        self.inputs = inputs
        self.samples = samples
        self.completion = completion
        enqueued = monotonicNanoseconds()
    }

    /// Answers the caller, once; call only after the request left every queue and batch.
    func finish(_ result: Result<InferenceResult, PoolError>) {
        completion?(result)
        completion = nil
    }
}

/// Requests sent to one worker together.
struct Batch: Sendable {
    let id: UInt64
    let model: Int
    let requests: [PendingRequest]
    let samples: Int
    let started: UInt64
    let deadline: UInt64
    /// The pool had nothing else to do when the batch left, and requests have been coming back
    /// within `--busy-poll`: its worker polls for the next batch after replying.
    let pollAfter: Bool
}

/// A worker connection as the scheduler sees it. Fields belong to the scheduler's lock.
final class WorkerSlot: @unchecked Sendable {
    let id: Int
    let pid: Int32
    let fd: Int32
    let generation: Int
    var batch: Batch?
    /// Set by shutdown: the thread leaves at its next look at the queues.
    var stop = false

    init(id: Int, pid: Int32, fd: Int32, generation: Int) {
        self.id = id
        self.pid = pid
        self.fd = fd
        self.generation = generation
    }
}

/// What an idle worker thread is told to do next.
enum WorkerOrder {
    case run(Batch)
    /// Its socket showed an event while idle: the worker died.
    case lost
    case stop
}

/// One bounded queue per model and the greedy adaptive batcher. All state is guarded by `lock`;
/// worker threads block in `nextBatch` on the condition, never in Swift concurrency.
final class Scheduler: @unchecked Sendable {
    struct ModelQueue {
        let maxBatchSize: Int
        /// Batches of this model that may run at once.
        var maxRunning = Int.max
        var waiting: [PendingRequest] = []
        var queuedSamples = 0
    }

    enum Phase { case starting, serving, draining, stopped }

    let lock = NSCondition()
    let metrics: PoolMetrics
    let maxQueue: Int
    let timeout: UInt64
    let maxQueueDelay: UInt64
    /// `--busy-poll` in nanoseconds; zero turns polling off.
    let busyPoll: UInt64
    let names: [String]
    // Guarded by `lock`:
    var queues: [ModelQueue] = []
    var workers: [Int: WorkerSlot] = [:]
    var phase = Phase.starting
    private var nextBatchID: UInt64 = 1
    /// When the pool last went idle (nothing queued or running), until the next request came.
    private var idleSince: UInt64?
    /// How often the pool's recent idle gaps (from going idle to the next request) ended within
    /// `busyPoll`, averaged over the last several. Polling pays when nearly all of them did, as
    /// with one client that sends its next request on each answer. Sparse or random traffic,
    /// whose next request often comes later, would mostly poll in vain, so it does not poll; nor
    /// does a pool that has not yet seen enough requests to tell.
    private var recentQuickReturns = 0.0
    /// Requests per batch, averaged over the last several batches. Polling is for light load,
    /// where each request is a batch of its own; under heavier load the worker's wake-up is not
    /// what requests wait for, and polling would take CPU from the threads they do wait for.
    private var recentRequestsPerBatch = 1.0
    /// True while a connection thread polls for requests instead of sleeping on the condition.
    private var polling = false
    /// Counts enqueues, for the polling thread to watch without the lock.
    private let arrivals = Atomic<UInt64>(0)

    /// How long an idle worker sleeps between checks of its socket (tests make it long, so that
    /// a lost wake-up shows as a stall rather than being covered by this check).
    let idleCheck: TimeInterval

    init(names: [String], configuration: PoolConfiguration, metrics: PoolMetrics, idleCheck: TimeInterval = 0.1) {
        self.names = names
        self.idleCheck = idleCheck
        self.metrics = metrics
        maxQueue = max(1, configuration.maxQueue)
        timeout = Self.nanoseconds(configuration.timeout)
        maxQueueDelay = Self.nanoseconds(configuration.maxQueueDelay)
        busyPoll = Self.nanoseconds(configuration.busyPoll)
    }

    static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        return UInt64(clamping: seconds) &* 1_000_000_000 &+ UInt64(clamping: attoseconds / 1_000_000_000)
    }

    /// Called once the models are known, before serving starts. The caller holds `lock`.
    /// `instances` limits the batches of each model that run at once (nil: no limit).
    func configureLocked(batchSizes: [Int], instances: [Int?] = []) {
        queues = batchSizes.enumerated().map { index, size in
            var queue = ModelQueue(maxBatchSize: size)
            if index < instances.count, let limit = instances[index] { queue.maxRunning = max(1, limit) }
            return queue
        }
    }

    var timeoutSeconds: Double { Double(timeout) / 1e9 }

    // MARK: requests

    /// Queues a request, or says why not. The caller holds `lock`. True means an idle worker may
    /// take the request now: the caller then calls `wakeOneWorker` once it has let go of the lock.
    /// False means that no wake-up is needed: a connection thread is polling and takes it, or the
    /// model runs as many batches as its instance count allows, and the thread that finishes one
    /// takes it (waking an idle thread would only put it back to sleep).
    func enqueueLocked(_ request: PendingRequest, zygoteReady: Bool) -> Result<Bool, PoolError> {
        switch phase {
        case .starting: return .failure(.modelNotReady(names[request.model]))
        case .draining, .stopped: return .failure(.shuttingDown)
        case .serving: break
        }
        guard request.model < queues.count else { return .failure(.unknownModel(names[request.model])) }
        if workers.isEmpty && !zygoteReady { return .failure(.modelNotReady(names[request.model])) }
        guard queues[request.model].waiting.count < maxQueue else {
            return .failure(.queueFull(model: names[request.model], capacity: maxQueue))
        }
        if let since = idleSince {
            let quick = request.enqueued &- min(since, request.enqueued) <= busyPoll
            recentQuickReturns += ((quick ? 1 : 0) - recentQuickReturns) / 8
            idleSince = nil
        }
        queues[request.model].waiting.append(request)
        queues[request.model].queuedSamples += request.samples
        metrics.models[request.model].queueDepth.record(queues[request.model].waiting.count)
        arrivals.add(1, ordering: .relaxed)
        return .success(!polling && !isAtInstanceLimit(request.model))
    }

    /// Wakes one idle worker thread for a request just queued; called without holding `lock`. A
    /// thread woken while the lock is held wakes only to block on it, and must then be woken again
    /// by the unlock: two more futex calls and a second wake-up per request (by strace). One idle
    /// worker is enough for one request; a broadcast woke them all to find one batch.
    func wakeOneWorker() {
        lock.signal()
    }

    /// Blocks the calling worker thread until there is a batch for it, its socket shows an event
    /// while idle (the worker died), or it must stop.
    func nextBatch(for slot: WorkerSlot) -> WorkerOrder {
        lock.lock()
        let order = nextOrderLocked(for: slot)
        lock.unlock()
        // Histograms take a lock of their own: recorded here, not while other threads wait for ours.
        if case .run(let batch) = order { recordTaken(batch) }
        return order
    }

    private func nextOrderLocked(for slot: WorkerSlot) -> WorkerOrder {
        var polled = false
        while true {
            if slot.stop || phase == .stopped {
                passWakeUpLocked()
                return .stop
            }
            let now = monotonicNanoseconds()
            var wakeAt = now + UInt64(idleCheck * 1e9)
            if let model = oldestReadyQueue() {
                let queue = queues[model]
                let holdUntil = queue.waiting[0].enqueued &+ maxQueueDelay
                let full = queue.queuedSamples >= max(queue.maxBatchSize, 1)
                // An optional hold-back lets a partial batch fill; never while draining.
                if maxQueueDelay == 0 || full || now >= holdUntil || phase != .serving {
                    let batch = takeBatch(model: model, now: now, for: slot)
                    slot.batch = batch
                    updateWorkerGauges()
                    // Requests left over (a full batch) are for another idle worker.
                    passWakeUpLocked()
                    return .run(batch)
                }
                wakeAt = min(wakeAt, holdUntil)
            } else if !polled && shouldPollLocked(slot) {
                polled = true
                pollForArrivalLocked()
                continue
            }
            let timedOut = !lock.wait(until: Date(timeIntervalSinceNow: Double(wakeAt &- min(now, wakeAt)) / 1e9))
            if timedOut && SocketIO.hasEvent(slot.fd) {
                passWakeUpLocked()
                return .lost
            }
        }
    }

    /// A thread whose worker has just gone idle polls for the next request while polling pays,
    /// the pool has nothing else to do (so the cores are otherwise idle), and no other thread
    /// polls already.
    private func shouldPollLocked(_ slot: WorkerSlot) -> Bool {
        pollPaysLocked && !polling && !slot.stop && phase == .serving && workers.values.allSatisfy { $0.batch == nil }
    }

    private var pollPaysLocked: Bool { busyPoll > 0 && recentQuickReturns >= 0.9 && recentRequestsPerBatch < 1.5 }

    /// Polls, without the lock, until a request is queued or `busyPoll` passes. Enqueues
    /// meanwhile wake no one. The caller holds `lock`, and holds it again on return.
    private func pollForArrivalLocked() {
        polling = true
        let seen = arrivals.load(ordering: .relaxed)
        lock.unlock()
        BusyPoll.spin(for: busyPoll) { arrivals.load(ordering: .relaxed) != seen }
        lock.lock()
        polling = false
    }

    /// Enqueues signal one waiting worker. A thread that leaves `nextBatch` without taking
    /// everything (stopping, its worker lost, or a batch that was full) may have been that one, so
    /// it passes the signal on; otherwise the request would wait for an idle worker's next check.
    private func passWakeUpLocked() {
        if oldestReadyQueue() != nil { lock.signal() }
    }

    /// The model whose first waiting request has waited longest, among those with fewer batches
    /// running than their instance count. A model at its count waits for one of its batches to
    /// finish; the thread that finishes it looks at the queues next.
    private func oldestReadyQueue() -> Int? {
        var best: Int?
        for index in queues.indices {
            guard let head = queues[index].waiting.first else { continue }
            if isAtInstanceLimit(index) { continue }
            if let current = best, let other = queues[current].waiting.first, other.enqueued <= head.enqueued { continue }
            best = index
        }
        return best
    }

    private func isAtInstanceLimit(_ model: Int) -> Bool {
        let limit = queues[model].maxRunning
        return limit < Int.max && workers.values.reduce(0) { $0 + ($1.batch?.model == model ? 1 : 0) } >= limit
    }

    /// Takes waiting requests of one model up to its batch size in samples (always at least one).
    private func takeBatch(model: Int, now: UInt64, for slot: WorkerSlot) -> Batch {
        let limit = queues[model].maxBatchSize
        var taken = 0
        var samples = 0
        for request in queues[model].waiting {
            if taken > 0 && (limit <= 1 || samples + request.samples > limit) { break }
            taken += 1
            samples += request.samples
        }
        let requests = Array(queues[model].waiting.prefix(taken))
        recentRequestsPerBatch += (Double(taken) - recentRequestsPerBatch) / 8
        queues[model].waiting.removeFirst(taken)
        queues[model].queuedSamples -= samples
        metrics.models[model].queueDepth.record(queues[model].waiting.count)
        let pollAfter =
            pollPaysLocked && queues.allSatisfy(\.waiting.isEmpty) && workers.values.allSatisfy { $0 === slot || $0.batch == nil }
        defer { nextBatchID &+= 1 }
        return Batch(
            id: nextBatchID, model: model, requests: requests, samples: samples, started: now, deadline: now &+ timeout,
            pollAfter: pollAfter)
    }

    /// The batch's size and its requests' time in the queue. Needs no lock.
    private func recordTaken(_ batch: Batch) {
        let perModel = metrics.models[batch.model]
        perModel.batchSize.record(batch.samples)
        for request in batch.requests { perModel.queueDuration.recordNanoseconds(Int64(clamping: batch.started &- request.enqueued)) }
    }

    /// The caller holds `lock`.
    func updateWorkerGauges() {
        metrics.liveWorkers.record(workers.count)
        metrics.busyWorkers.record(workers.values.reduce(0) { $0 + ($1.batch == nil ? 0 : 1) })
    }

    // MARK: completions

    /// A worker answered its batch: each request gets its own outputs, or the batch's error.
    func finish(_ slot: WorkerSlot, batch: Batch, reply: Frame, outputsPerRequest: Int) {
        lock.lock()
        slot.batch = nil
        if idleLocked { idleSince = monotonicNanoseconds() }
        updateWorkerGauges()
        // No broadcast: waiting workers wait for requests, not for each other, and this thread
        // looks at the queues itself next.
        lock.unlock()
        if reply.kind == .result {
            metrics.models[batch.model].computeDuration.recordNanoseconds(Int64(clamping: reply.computeNanoseconds))
        }
        let compute = Double(reply.computeNanoseconds) / 1e9
        let failures = Dictionary(reply.failures.map { (Int($0.request), $0.message) }, uniquingKeysWith: { first, _ in first })
        var nextItem = 0
        for (index, request) in batch.requests.enumerated() {
            let result: Result<InferenceResult, PoolError>
            if reply.kind == .error {
                result = .failure(
                    reply.code == Frame.ErrorCode.badInput.rawValue
                        ? .badInput(reply.message) : .workerFailed("model '\(names[batch.model])': \(reply.message)"))
            } else if let message = failures[index] {
                result = .failure(.badInput(message))
            } else {
                let outputs = Array(reply.items[nextItem..<(nextItem + outputsPerRequest)])
                nextItem += outputsPerRequest
                let queued = Double(batch.started &- min(request.enqueued, batch.started)) / 1e9
                result = .success(
                    InferenceResult(outputs: outputs, batchSize: batch.samples, queueSeconds: queued, computeSeconds: compute))
            }
            request.finish(result)
        }
    }

    enum Loss { case crash, timeout }

    /// A worker is gone. A crashed batch is retried once (its requests go back to the head of
    /// their queue); a timed-out batch fails. Returns false when the pool is stopping, so that no
    /// replacement is wanted.
    @discardableResult
    func remove(_ slot: WorkerSlot, loss: Loss) -> Bool {
        lock.lock()
        workers[slot.id] = nil
        let batch = slot.batch
        slot.batch = nil
        var failed: [(PendingRequest, PoolError)] = []
        let stopping = phase == .stopped || slot.stop
        if let batch {
            var retry: [PendingRequest] = []
            for request in batch.requests {
                if stopping {
                    failed.append((request, .shuttingDown))
                } else if loss == .timeout {
                    failed.append((request, .timeout(model: names[batch.model], seconds: timeoutSeconds)))
                } else if request.retried {
                    failed.append(
                        (request, .workerFailed("model '\(names[batch.model])': the worker died twice while running this request")))
                } else {
                    request.retried = true
                    retry.append(request)
                }
            }
            queues[batch.model].waiting.insert(contentsOf: retry, at: 0)
            queues[batch.model].queuedSamples += retry.reduce(0) { $0 + $1.samples }
        }
        updateWorkerGauges()
        lock.broadcast()
        lock.unlock()
        for (request, error) in failed { request.finish(.failure(error)) }
        return !stopping
    }

    /// Fails everything still waiting (shutdown past its grace period).
    func failWaiting(with error: PoolError) {
        lock.lock()
        var failed: [PendingRequest] = []
        for index in queues.indices {
            failed += queues[index].waiting
            queues[index].waiting = []
            queues[index].queuedSamples = 0
            metrics.models[index].queueDepth.record(0)
        }
        lock.unlock()
        for request in failed { request.finish(.failure(error)) }
    }

    /// True when nothing is queued or running. The caller holds `lock`.
    var idleLocked: Bool {
        queues.allSatisfy(\.waiting.isEmpty) && workers.values.allSatisfy { $0.batch == nil }
    }
}
