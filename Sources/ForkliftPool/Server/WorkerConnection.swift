import CForkliftSys
import Foundation
import Glibc
import Logging

/// The server's end of one worker: a dedicated thread that sends batches and waits for replies
/// with blocking I/O and poll() deadlines, so that Swift concurrency's few threads never block.
struct WorkerConnection: Sendable {
    let slot: WorkerSlot
    let scheduler: Scheduler
    let outputCounts: [Int]
    let logger: Logger
    /// Called after the worker is gone, with whether a replacement is wanted and why.
    let onExit: @Sendable (WorkerSlot, PoolMetrics.RestartReason?) -> Void

    func start() {
        let name = "pool-worker-\(slot.id)"
        let thread = Thread {
            fl_name_current_thread(name)
            run()
        }
        thread.start()
    }

    private func run() {
        var reason: PoolMetrics.RestartReason?
        var removed = false
        var state = RegionState()
        loop: while true {
            switch scheduler.nextBatch(for: slot) {
            case .stop:
                break loop
            case .lost:
                logger.warning("worker died while idle", metadata: ["pid": "\(slot.pid)"])
                reason = scheduler.remove(slot, loss: .crash) ? .crash : nil
                removed = true
                break loop
            case .run(let batch):
                switch exchange(batch, state: &state) {
                case .answered:
                    continue
                case .timedOut:
                    // Hung, or too slow: kill it so that it frees its CPU, then replace it.
                    kill(slot.pid, SIGKILL)
                    reason = scheduler.remove(slot, loss: .timeout) ? .timeout : nil
                case .crashed(let alive):
                    // A worker that sent garbage may still run; one that closed its socket is
                    // gone (and its pid may already be reaped, so it is not signalled).
                    if alive { kill(slot.pid, SIGKILL) }
                    reason = scheduler.remove(slot, loss: .crash) ? .crash : nil
                }
                removed = true
                break loop
            }
        }
        if !removed { scheduler.remove(slot, loss: .crash) }
        SocketIO.close(slot.fd)
        onExit(slot, reason)
    }

    enum Outcome {
        case answered
        case timedOut
        case crashed(alive: Bool)
    }

    /// The connection thread's shared region, kept from one batch to the next.
    struct RegionState {
        /// The worker's shared region, made for the first batch with a large item.
        var region: SharedRegion?
        /// Set when a region cannot be made here: large items then go through the socket.
        var regionUnavailable = false
    }

    /// Regions grow to the largest batch's large items, in powers of two from the minimum; a
    /// batch past the maximum sends them through the socket.
    static let minimumRegionBytes = 4 << 20
    static let maximumRegionBytes = 256 << 20

    /// Sends one batch and waits for its reply.
    private func exchange(_ batch: Batch, state: inout RegionState) -> Outcome {
        var frame = Frame(kind: .batch, batchID: batch.id, model: UInt32(batch.model), requests: UInt32(batch.requests.count))
        frame.items = batch.requests.flatMap(\.inputs)
        if batch.pollAfter { frame.pollMicroseconds = UInt16(clamping: scheduler.busyPoll / 1000) }
        let reply: Frame
        do throws(SocketError) {
            let region = try regionWriter(for: frame.items, state: &state, deadline: batch.deadline)
            try FrameIO.write(frame, to: slot.fd, deadline: batch.deadline, placingIn: region)
            reply = try FrameIO.read(from: slot.fd, deadline: batch.deadline)
        } catch .timedOut {
            logger.error(
                "batch passed its deadline; killing the worker",
                metadata: [
                    "pid": "\(slot.pid)", "model": "\(scheduler.names[batch.model])", "requests": "\(batch.requests.count)",
                    "timeout_s": "\(scheduler.timeoutSeconds)",
                ])
            return .timedOut
        } catch .badFrame(let error) {
            logger.error("malformed frame from worker; dropping it", metadata: ["pid": "\(slot.pid)", "error": "\(error)"])
            return .crashed(alive: true)
        } catch {
            logger.warning(
                "worker died during a batch",
                metadata: ["pid": "\(slot.pid)", "error": "\(error)", "model": "\(scheduler.names[batch.model])"])
            return .crashed(alive: !error.isClosed)
        }
        let outputs = outputCounts[batch.model]
        guard reply.batchID == batch.id, reply.model == frame.model, reply.requests == frame.requests,
            reply.kind == .error || (reply.kind == .result && reply.items.count == (batch.requests.count - reply.failures.count) * outputs)
        else {
            logger.error(
                "worker reply does not match its batch; dropping the worker",
                metadata: [
                    "pid": "\(slot.pid)", "batch": "\(batch.id)", "reply_batch": "\(reply.batchID)", "items": "\(reply.items.count)",
                ])
            return .crashed(alive: true)
        }
        scheduler.finish(slot, batch: batch, reply: reply, outputsPerRequest: outputs)
        return .answered
    }

    /// A writer into the worker's region when the items include large ones and a region holds
    /// them. A bigger region is made and sent to the worker first when needed.
    private func regionWriter(for items: [WireTensor], state: inout RegionState, deadline: UInt64) throws(SocketError)
        -> RegionWriter?
    {
        let needed = RegionWriter.bytesNeeded(for: items)
        guard needed > 0, !state.regionUnavailable, needed <= Self.maximumRegionBytes else { return nil }
        if let region = state.region, region.size >= needed { return RegionWriter(region: region) }
        let size = max(Self.minimumRegionBytes, 1 << (Int.bitWidth - (needed - 1).leadingZeroBitCount))
        let made: (SharedRegion, Int32)
        do {
            made = try SharedRegion.create(size: size)
        } catch {
            logger.warning(
                "cannot make a shared region for the worker; large tensors go through its socket",
                metadata: ["pid": "\(slot.pid)", "bytes": "\(size)", "error": "\(error)"])
            state.regionUnavailable = true
            return nil
        }
        defer { SocketIO.close(made.1) }
        var announcement = Frame(kind: .region, batchID: 0, model: 0, requests: 0)
        announcement.regionSize = size
        announcement.attachedFD = made.1
        try FrameIO.write(announcement, to: slot.fd, deadline: deadline)
        state.region = made.0
        return RegionWriter(region: made.0)
    }
}
