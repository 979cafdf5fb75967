import ForkliftEngine
import Foundation
import Glibc

/// A worker process: reads one batch frame at a time, runs it and replies. It has one thread
/// (plus BLAS threads when asked) and exits when its socket closes, i.e. when the server closed
/// it or died.
struct WorkerLoop {
    let models: [Model]
    let fd: Int32

    func run() -> Never {
        var sessions: [Int: Session] = [:]
        while true {
            let frame: Frame
            do throws(SocketError) {
                frame = try FrameIO.read(from: fd)
            } catch .closed {
                ZygoteLog.exit(0)
            } catch {
                ZygoteLog.write("worker: dropping the connection: \(error)")
                ZygoteLog.exit(2)
            }
            let index = Int(frame.model)
            guard frame.kind == .batch, index < models.count else {
                ZygoteLog.write("worker: unexpected frame (kind \(frame.kind), model \(frame.model)); exiting")
                ZygoteLog.exit(2)
            }
            // One session per model, made on first use so that unused models cost no buffers.
            let session = sessions[index] ?? Session(model: models[index])
            sessions[index] = session
            let reply = BatchRunner(session: session).run(frame)
            do {
                try FrameIO.write(reply, to: fd)
            } catch {
                ZygoteLog.exit(0)  // the server is gone
            }
        }
    }
}

/// Turns a batch frame into batch tensors, runs them and splits the outputs per request.
struct BatchRunner {
    let session: Session

    struct Failure: Error {
        let code: Frame.ErrorCode
        let message: String
    }

    func run(_ frame: Frame) -> Frame {
        do throws(Failure) {
            return try runChecked(frame)
        } catch {
            var reply = Frame(kind: .error, batchID: frame.batchID, model: frame.model, requests: frame.requests)
            reply.code = error.code.rawValue
            reply.message = error.message
            return reply
        }
    }

    private func runChecked(_ frame: Frame) throws(Failure) -> Frame {
        let model = session.model
        let perRequest = model.inputs.count
        let requests = Int(frame.requests)
        guard requests >= 1, frame.items.count == requests * perRequest else {
            throw Failure(
                code: .internalError, message: "batch of \(requests) requests carries \(frame.items.count) tensors for \(perRequest) inputs"
            )
        }
        let samples = try sampleCounts(frame.items, requests: requests, perRequest: perRequest)
        var inputs: [Tensor] = []
        for input in 0..<perRequest {
            let parts = (0..<requests).map { frame.items[$0 * perRequest + input] }
            inputs.append(try concatenate(parts, name: model.inputs[input].name))
        }
        let start = monotonicNanoseconds()
        let outputs: [Tensor]
        do throws(EngineError) {
            outputs = try session.run(inputs: inputs)
        } catch {
            switch error {
            case .unknownInput, .missingInput, .inputDType, .inputShape:
                throw Failure(code: .badInput, message: error.description)
            default:
                throw Failure(code: .internalError, message: error.description)
            }
        }
        let elapsed = monotonicNanoseconds() - start
        var reply = Frame(kind: .result, batchID: frame.batchID, model: frame.model, requests: frame.requests)
        reply.computeNanoseconds = elapsed
        reply.items = split(outputs, samples: samples)
        return reply
    }

    /// Samples per request: dimension 0 of its inputs, which must agree. One request alone may be
    /// of any shape (a model without a batch dimension).
    private func sampleCounts(_ items: [WireTensor], requests: Int, perRequest: Int) throws(Failure) -> [Int] {
        guard requests > 1 else { return [items.first?.shape.first ?? 1] }
        var counts: [Int] = []
        for request in 0..<requests {
            let mine = items[(request * perRequest)..<((request + 1) * perRequest)]
            guard let first = mine.first?.shape.first, mine.allSatisfy({ $0.shape.first == first }) else {
                throw Failure(code: .badInput, message: "request \(request) of the batch: inputs disagree on the batch dimension")
            }
            counts.append(first)
        }
        return counts
    }

    /// Stacks tensors along dimension 0; the rest of their shapes must match.
    private func concatenate(_ parts: [WireTensor], name: String) throws(Failure) -> Tensor {
        guard let first = parts.first else { throw Failure(code: .internalError, message: "empty batch") }
        if parts.count == 1 {
            return first.data.withUnsafeBytes { Tensor(dtype: first.dtype, shape: first.shape, bytes: $0) }
        }
        let tail = Array(first.shape.dropFirst())
        var total = 0
        for part in parts {
            guard part.dtype == first.dtype, part.shape.count == first.shape.count, Array(part.shape.dropFirst()) == tail else {
                throw Failure(
                    code: .badInput,
                    message:
                        "input '\(name)': requests of one batch differ in dtype or shape (\(part.dtype) \(part.shape) vs \(first.dtype) \(first.shape))"
                )
            }
            total += part.shape.first ?? 0
        }
        let batch = Tensor(dtype: first.dtype, shape: [total] + tail)
        var offset = 0
        for part in parts {
            part.data.withUnsafeBytes { raw in
                if let base = raw.baseAddress, raw.count > 0 { (batch.raw + offset).copyMemory(from: base, byteCount: raw.count) }
            }
            offset += part.data.count
        }
        return batch
    }

    /// Cuts each output back along dimension 0; an output without the batch dimension goes whole
    /// to every request.
    private func split(_ outputs: [Tensor], samples: [Int]) -> [WireTensor] {
        let total = samples.reduce(0, +)
        var items: [WireTensor] = []
        items.reserveCapacity(samples.count * outputs.count)
        var start = 0
        for count in samples {
            for output in outputs {
                if samples.count == 1 || output.rank == 0 || output.shape[0] != total {
                    items.append(
                        WireTensor(dtype: output.dtype, shape: output.shape, data: Data(bytes: output.raw, count: output.byteCount)))
                    continue
                }
                let rowBytes = total == 0 ? 0 : output.byteCount / total
                let data = Data(bytes: output.raw + start * rowBytes, count: count * rowBytes)
                items.append(WireTensor(dtype: output.dtype, shape: [count] + output.shape.dropFirst(), data: data))
            }
            start += count
        }
        return items
    }
}
