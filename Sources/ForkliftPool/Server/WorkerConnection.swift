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
        let thread = Thread { run() }
        thread.name = "forklift-worker-\(slot.id)"
        thread.start()
    }

    private func run() {
        var reason: PoolMetrics.RestartReason?
        var removed = false
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
                switch exchange(batch) {
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

    /// Sends one batch and waits for its reply.
    private func exchange(_ batch: Batch) -> Outcome {
        var frame = Frame(kind: .batch, batchID: batch.id, model: UInt32(batch.model), requests: UInt32(batch.requests.count))
        frame.items = batch.requests.flatMap(\.inputs)
        let reply: Frame
        do throws(SocketError) {
            try FrameIO.write(frame, to: slot.fd, deadline: batch.deadline)
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
}
