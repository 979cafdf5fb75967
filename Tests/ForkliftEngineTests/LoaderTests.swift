import Foundation
import SwiftProtobuf
import Testing

@testable import ForkliftEngine

/// Weights come from raw bytes, from typed fields, or from an external file next to the model.
@Suite struct LoaderTests {
    static let weights: [Float] = [1, 2, 3, 4, 5, 6, 7, 8]

    static func gemmModel(_ weight: Onnx_TensorProto) throws -> Data {
        try BadModelTests.model(
            nodes: [BadModelTests.node("Gemm", "fc", ["x", "w"], ["y"])],
            inputs: [BadModelTests.valueInfo("x", [nil, 4])], outputs: [BadModelTests.valueInfo("y", [nil, 2])],
            initializers: [weight])
    }

    static func rawWeight() -> Onnx_TensorProto {
        var tensor = Onnx_TensorProto()
        tensor.name = "w"
        tensor.dataType = 1
        tensor.dims = [4, 2]
        tensor.rawData = weights.withUnsafeBytes { Data($0) }
        return tensor
    }

    static func run(_ model: Model) throws -> [Float] {
        let output = try Session(model: model).run(inputs: [Tensor(floats: [1, 0, 0, 1], shape: [1, 4])])
        return try #require(output.first).floatArray()
    }

    @Test func rawAndTypedWeightsAgree() throws {
        let typed = BadModelTests.initializer("w", dims: [4, 2], values: Self.weights)
        let fromTyped = try Self.run(Model(data: Self.gemmModel(typed)))
        let fromRaw = try Self.run(Model(data: Self.gemmModel(Self.rawWeight())))
        #expect(fromTyped == [8, 10])
        #expect(fromRaw == fromTyped)
    }

    @Test func externalWeightsLoadFromTheModelFolder() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("forklift-external-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var padded = Data(count: 16)
        padded.append(Self.weights.withUnsafeBytes { Data($0) })
        try padded.write(to: folder.appendingPathComponent("weights.bin"))
        var weight = Self.rawWeight()
        weight.clearRawData()
        weight.dataLocation = .external
        weight.externalData = [("location", "weights.bin"), ("offset", "16"), ("length", "32")].map { key, value in
            var entry = Onnx_StringStringEntryProto()
            entry.key = key
            entry.value = value
            return entry
        }
        let modelURL = folder.appendingPathComponent("model.onnx")
        try Self.gemmModel(weight).write(to: modelURL)
        #expect(try Self.run(Model(contentsOf: modelURL)) == [8, 10])

        weight.externalData[0].value = "../weights.bin"
        try Self.gemmModel(weight).write(to: modelURL)
        #expect { _ = try Model(contentsOf: modelURL) } throws: { "\($0)".contains("outside the model's folder") }
    }
}
