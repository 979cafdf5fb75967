import Foundation
import Testing

@testable import ForkliftEngine

/// Whole models against onnxruntime's outputs for the same inputs (made by scripts/make-models).
@Suite struct ModelTests {
    @Test(arguments: ["digits", "wide_mlp", "resnet18"], [1, 8])
    func agreesWithOnnxRuntime(model name: String, batch: Int) throws {
        let model = try Model(contentsOf: Fixtures.model(name))
        let input = try Fixtures.reference(name, "input_b\(batch).npy")
        let outputs = try Session(model: model).run(inputs: [input])
        for (spec, actual) in zip(model.outputs, outputs) {
            let expected = try Fixtures.reference(name, "\(spec.name)_b\(batch).npy")
            #expect(actual.shape == expected.shape, "\(name).\(spec.name)")
            if spec.dtype == .float32 {
                let error = Fixtures.relativeError(actual, expected)
                #expect(error <= 1e-4, "\(name).\(spec.name) batch \(batch): relative error \(error)")
            } else {
                #expect(actual.doubles() == expected.doubles(), "\(name).\(spec.name) batch \(batch)")
            }
        }
    }

    @Test func digitsAccuracyEqualsScikitLearn() throws {
        let model = try Model(contentsOf: Fixtures.model("digits"))
        let images = try Fixtures.reference("digits", "test_X.npy")
        let labels = try Fixtures.reference("digits", "test_y.npy").doubles()
        let outputs = try Session(model: model).run(["float_input": images])
        let predicted = try #require(outputs["label"]).doubles()
        let correct = zip(predicted, labels).filter { $0 == $1 }.count
        let accuracy = Double(correct) / Double(labels.count)
        let json = try #require(
            FileManager.default.contents(atPath: Fixtures.cache.appendingPathComponent("reference/digits/accuracy.json").path))
        let reference = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        let sklearn = try #require(reference["sklearn_accuracy"] as? Double)
        #expect(abs(accuracy - sklearn) < 1e-12, "engine \(accuracy), scikit-learn \(sklearn)")
    }

    /// The load-time passes ran: BatchNormalization folded, Relu fused, the Shape→Gather→
    /// Unsqueeze→Concat→Reshape chain folded to a constant Reshape target.
    @Test func resnetIsPrepared() throws {
        let model = try Model(contentsOf: Fixtures.model("resnet18"))
        let ops = model.summary.preparedOpCounts
        #expect(model.summary.file.opCounts["BatchNormalization"] == 20)
        #expect(ops["BatchNormalization"] == nil)
        #expect(ops["Relu"] == 8, "only the Relus after a residual Add stay separate: \(ops)")
        #expect(ops["Conv+Relu"] == 9)
        for folded in ["Shape", "Gather", "Unsqueeze", "Concat"] { #expect(ops[folded] == nil, "\(folded) left: \(ops)") }
        #expect(model.outputs.first?.shape == [.symbolic("N"), .fixed(1000)])
        let flops = try #require(model.summary.flopsPerSample)
        #expect(flops > 3_400_000_000 && flops < 3_800_000_000, "ResNet-18 is ~3.6 GFLOPs per image, got \(flops)")
    }

    /// skl2onnx's MatMul + bias Add layers become Gemms, with the Relu after them fused.
    @Test func digitsLinearLayersBecomeGemms() throws {
        let ops = try Model(contentsOf: Fixtures.model("digits")).summary.preparedOpCounts
        #expect(ops["Gemm+Relu"] == 2 && ops["Gemm"] == 1, "\(ops)")
        #expect(ops["MatMul"] == nil && ops["Add"] == nil && ops["Relu"] == nil, "\(ops)")
    }

    /// Weights packed by the GEMM kernels are not kept a second time as plain constants.
    @Test func packedWeightsAreHeldOnce() throws {
        let model = try Model(contentsOf: Fixtures.model("wide_mlp"))
        let plainBytes = model.plan.initialSlots.compactMap { $0?.residentBytes }.reduce(0, +)
        #expect(model.summary.file.parameterBytes > 20_000_000)
        #expect(plainBytes < 100_000, "constants still held as plain tensors: \(plainBytes) bytes")
        let input = try Fixtures.reference("wide_mlp", "input_b8.npy")
        let expected = try Fixtures.reference("wide_mlp", "logits_b8.npy")
        let output = try #require(try Session(model: model).run(inputs: [input]).first)
        #expect(Fixtures.relativeError(output, expected) <= 1e-4)
    }

    /// Intermediate buffers are recycled: a second run of the same shape allocates nothing new.
    @Test func buffersAreReused() throws {
        let model = try Model(contentsOf: Fixtures.model("wide_mlp"))
        let session = Session(model: model)
        let input = try Fixtures.reference("wide_mlp", "input_b8.npy")
        _ = try session.run(inputs: [input])
        let pool = session.bufferPool
        let afterFirst = pool.allocations
        for _ in 0..<3 { _ = try session.run(inputs: [input]) }
        #expect(pool.allocations == afterFirst)
        #expect(afterFirst <= 3, "784→2048→2048→10 needs at most 3 live buffers, allocated \(afterFirst)")
    }
}
