import ForkliftEngine
import ForkliftImage
import Foundation

/// Turns a batch frame into batch tensors, runs them and splits the outputs per request. A model
/// with an image feed gets its JPEGs decoded here, in the worker, never on the HTTP threads.
final class BatchRunner {
    let session: Session
    let image: ImageFeed?

    init(served: ServedModel) {
        session = Session(model: served.model)
        image = served.image
    }

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
        var reply = Frame(kind: .result, batchID: frame.batchID, model: frame.model, requests: frame.requests)
        var survivors = Array(0..<requests)
        var decoded: ImageFeed.DecodedBatch?
        if let image {
            let batch = image.decode(items: survivors.map { frame.items[$0 * perRequest + image.inputIndex] })
            survivors = batch.survivors
            reply.failures = batch.failures
            decoded = batch
            if survivors.isEmpty { return reply }
        }
        let samples = try sampleCounts(frame.items, survivors: survivors, perRequest: perRequest, imageSamples: decoded?.samples)
        var inputs: [Tensor] = []
        for input in 0..<perRequest {
            if let decoded, input == image?.inputIndex {
                inputs.append(decoded.tensor)
                continue
            }
            let parts = survivors.map { frame.items[$0 * perRequest + input] }
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
        reply.computeNanoseconds = monotonicNanoseconds() - start
        reply.items = split(outputs, samples: samples)
        return reply
    }

    /// Samples per request: dimension 0 of its inputs (or its number of images), which must agree.
    /// One request alone may be of any shape (a model without a batch dimension).
    private func sampleCounts(_ items: [WireTensor], survivors: [Int], perRequest: Int, imageSamples: [Int]?) throws(Failure) -> [Int] {
        var counts: [Int] = []
        for (position, request) in survivors.enumerated() {
            let dims = (0..<perRequest).filter { $0 != image?.inputIndex }.map { items[request * perRequest + $0].shape.first }
            let disagree = Failure(code: .badInput, message: "request \(request) of the batch: inputs disagree on the batch dimension")
            if let imageSamples {
                guard dims.allSatisfy({ $0 == imageSamples[position] }) else { throw disagree }
                counts.append(imageSamples[position])
            } else if survivors.count == 1 {
                counts.append((dims.first ?? nil) ?? 1)
            } else {
                guard let first = dims.first, let size = first, dims.allSatisfy({ $0 == size }) else { throw disagree }
                counts.append(size)
            }
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
        // Not zero-filled: the parts fill it exactly, since each one's bytes match its shape (the
        // frame's parser checks that) and each has a dimension 0 (`sampleCounts` checks that).
        let batch = Tensor.uninitialized(dtype: first.dtype, shape: [total] + tail)
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
