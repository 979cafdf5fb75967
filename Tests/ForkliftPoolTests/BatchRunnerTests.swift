import ForkliftEngine
import Foundation
import Testing

@testable import ForkliftPool

/// The worker's batch step in this process: requests of different sizes stacked into one batch
/// tensor (not zero-filled first, so every byte must come from a request) and cut back apart.
@Suite struct BatchRunnerTests {
    typealias Support = PoolTestSupport

    private func runner() throws -> (BatchRunner, Session) {
        let model = try Model(contentsOf: Support.digits)
        return (BatchRunner(served: ServedModel(model: model, image: nil)), Session(model: model))
    }

    @Test func stackedRequestsGetTheirOwnAnswers() throws {
        let (runner, session) = try runner()
        let samples = [1, 3, 2]
        var frame = Frame(kind: .batch, batchID: 7, model: 0, requests: UInt32(samples.count))
        let inputs = samples.enumerated().map { Support.digitsInput($0, samples: $1) }
        frame.items = zip(inputs, samples).map { Support.wire($0, shape: [$1, 64]) }
        let reply = runner.run(frame)
        #expect(reply.kind == .result, "\(reply.message)")
        let outputs = session.model.outputs.count
        #expect(reply.items.count == samples.count * outputs)
        for (request, count) in samples.enumerated() {
            let expected = try Support.reference(session, inputs[request], shape: [count, 64])
            for (index, tensor) in expected.enumerated() {
                let item = reply.items[request * outputs + index]
                #expect(item.shape == tensor.shape, "request \(request), output \(index)")
                switch tensor.dtype {
                case .float32: #expect(Support.close(Support.floats(item), tensor.floatArray()), "request \(request), output \(index)")
                default: #expect(item.data == Data(bytes: tensor.raw, count: tensor.byteCount), "request \(request), output \(index)")
                }
            }
        }
    }
}
