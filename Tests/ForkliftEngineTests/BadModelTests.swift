import Foundation
import SwiftProtobuf
import Testing

@testable import ForkliftEngine

/// Broken models and inputs each get an error that names what is wrong, never a crash.
@Suite struct BadModelTests {
    // MARK: Building small models

    static func valueInfo(_ name: String, _ dims: [Int64?], dtype: Int32 = 1) -> Onnx_ValueInfoProto {
        var info = Onnx_ValueInfoProto()
        info.name = name
        var tensorType = Onnx_TypeProto.Tensor()
        tensorType.elemType = dtype
        tensorType.shape.dim = dims.map { value in
            var dim = Onnx_TensorShapeProto.Dimension()
            if let value { dim.dimValue = value } else { dim.dimParam = "N" }
            return dim
        }
        info.type.tensorType = tensorType
        return info
    }

    static func node(_ op: String, _ name: String, _ inputs: [String], _ outputs: [String], ints: [String: Int64] = [:]) -> Onnx_NodeProto {
        var node = Onnx_NodeProto()
        node.opType = op
        node.name = name
        node.input = inputs
        node.output = outputs
        node.attribute = ints.map { key, value in
            var attribute = Onnx_AttributeProto()
            attribute.name = key
            attribute.type = .int
            attribute.i = value
            return attribute
        }
        return node
    }

    static func initializer(_ name: String, dims: [Int64], values: [Float]) -> Onnx_TensorProto {
        var tensor = Onnx_TensorProto()
        tensor.name = name
        tensor.dataType = 1
        tensor.dims = dims
        tensor.floatData = values
        return tensor
    }

    static func model(
        nodes: [Onnx_NodeProto], inputs: [Onnx_ValueInfoProto], outputs: [Onnx_ValueInfoProto],
        initializers: [Onnx_TensorProto] = []
    ) throws -> Data {
        var model = Onnx_ModelProto()
        model.irVersion = 8
        var opset = Onnx_OperatorSetIdProto()
        opset.version = 13
        model.opsetImport = [opset]
        model.graph.node = nodes
        model.graph.input = inputs
        model.graph.output = outputs
        model.graph.initializer = initializers
        return try model.serializedData()
    }

    static func loadError(_ data: Data) -> EngineError? {
        do {
            _ = try Model(data: data)
            return nil
        } catch {
            return error
        }
    }

    // MARK: Load-time errors

    @Test func truncatedFileIsRejected() throws {
        let data = try #require(FileManager.default.contents(atPath: Fixtures.model("digits").path))
        let error = try #require(Self.loadError(data.prefix(data.count / 2)))
        #expect("\(error)".contains("truncated or corrupt"), "\(error)")
    }

    @Test func garbageIsRejected() throws {
        let error = try #require(Self.loadError(Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919) })))
        #expect("\(error)".contains("malformed model"), "\(error)")
    }

    @Test func cycleNamesItsNodes() throws {
        let data = try Self.model(
            nodes: [Self.node("Relu", "first", ["b"], ["a"]), Self.node("Relu", "second", ["a"], ["b"])],
            inputs: [Self.valueInfo("x", [1])], outputs: [Self.valueInfo("b", [1])])
        let error = try #require(Self.loadError(data))
        guard case .cycle(let nodes) = error else {
            Issue.record("expected a cycle, got \(error)")
            return
        }
        #expect(Set(nodes) == ["first", "second"])
        #expect("\(error)".contains("cycle"))
    }

    @Test func missingInitializerNamesNodeAndValue() throws {
        let data = try Self.model(
            nodes: [Self.node("Gemm", "fc1", ["x", "fc1.weight"], ["y"])],
            inputs: [Self.valueInfo("x", [nil, 4])], outputs: [Self.valueInfo("y", [nil, 2])])
        let error = try #require(Self.loadError(data))
        #expect("\(error)".contains("'fc1'") && "\(error)".contains("'fc1.weight'"), "\(error)")
    }

    @Test func unsupportedOpNamesNodeAndOp() throws {
        let data = try Self.model(
            nodes: [Self.node("NonMaxSuppression", "nms_7", ["x"], ["y"])],
            inputs: [Self.valueInfo("x", [1])], outputs: [Self.valueInfo("y", [1])])
        let error = try #require(Self.loadError(data))
        guard case .unsupportedOp(let node, let op, _) = error else {
            Issue.record("got \(error)")
            return
        }
        #expect(node == "nms_7" && op == "NonMaxSuppression")
    }

    @Test func unsupportedAttributeIsNamed() throws {
        let weights = Self.initializer("w", dims: [4, 2], values: [Float](repeating: 0.5, count: 8))
        let data = try Self.model(
            nodes: [Self.node("Gemm", "fc", ["x", "w"], ["y"], ints: ["fancy_mode": 1])],
            inputs: [Self.valueInfo("x", [nil, 4])], outputs: [Self.valueInfo("y", [nil, 2])], initializers: [weights])
        let error = try #require(Self.loadError(data))
        #expect("\(error)".contains("'fc'") && "\(error)".contains("fancy_mode"), "\(error)")
    }

    @Test func unsupportedDTypeIsNamed() throws {
        let data = try Self.model(
            nodes: [Self.node("Relu", "r", ["x"], ["y"])],
            inputs: [Self.valueInfo("x", [1], dtype: 10)], outputs: [Self.valueInfo("y", [1], dtype: 10)])
        let error = try #require(Self.loadError(data))
        #expect("\(error)".contains("'x'") && "\(error)".contains("float16"), "\(error)")
    }

    @Test func overflowingDimensionsAreRejected() throws {
        var huge = Onnx_TensorProto()
        huge.name = "w"
        huge.dataType = 1
        huge.dims = [1 << 40, 1 << 40]
        let data = try Self.model(
            nodes: [Self.node("Add", "add", ["x", "w"], ["y"])],
            inputs: [Self.valueInfo("x", [1])], outputs: [Self.valueInfo("y", [1])], initializers: [huge])
        let error = try #require(Self.loadError(data))
        #expect("\(error)".contains("'w'") && "\(error)".contains("overflowing"), "\(error)")
    }

    @Test func shortRawDataIsRejected() throws {
        var weights = Onnx_TensorProto()
        weights.name = "w"
        weights.dataType = 1
        weights.dims = [4, 2]
        weights.rawData = Data(count: 12)
        let data = try Self.model(
            nodes: [Self.node("Gemm", "fc", ["x", "w"], ["y"])],
            inputs: [Self.valueInfo("x", [nil, 4])], outputs: [Self.valueInfo("y", [nil, 2])], initializers: [weights])
        let error = try #require(Self.loadError(data))
        #expect("\(error)".contains("'w'") && "\(error)".contains("12 bytes"), "\(error)")
    }

    @Test func mismatchedWeightsFailAtLoadNotAtFirstRequest() throws {
        let weights = Self.initializer("w", dims: [3, 2], values: [Float](repeating: 1, count: 6))
        let data = try Self.model(
            nodes: [Self.node("Gemm", "fc", ["x", "w"], ["y"])],
            inputs: [Self.valueInfo("x", [nil, 4])], outputs: [Self.valueInfo("y", [nil, 2])], initializers: [weights])
        let error = try #require(Self.loadError(data))
        #expect("\(error)".contains("'fc'"), "\(error)")
    }

    // MARK: Run-time input errors

    @Test func wrongInputShapeNamesInputAndShapes() throws {
        let model = try Model(contentsOf: Fixtures.model("digits"))
        let input = Tensor(dtype: .float32, shape: [2, 63])
        #expect {
            _ = try Session(model: model).run(["float_input": input])
        } throws: { error in
            let text = "\(error)"
            return text.contains("float_input") && text.contains("[?, 64]") && text.contains("[2, 63]")
        }
    }

    @Test func wrongInputDTypeNamesInput() throws {
        let model = try Model(contentsOf: Fixtures.model("digits"))
        #expect {
            _ = try Session(model: model).run(["float_input": Tensor(int64s: [1], shape: [1, 1])])
        } throws: { error in
            "\(error)".contains("float_input") && "\(error)".contains("float32") && "\(error)".contains("int64")
        }
    }

    @Test func unknownAndMissingInputsAreNamed() throws {
        let model = try Model(contentsOf: Fixtures.model("digits"))
        #expect { _ = try Session(model: model).run([:]) } throws: { "\($0)".contains("missing input 'float_input'") }
        #expect {
            _ = try Session(model: model).run([
                "float_input": Tensor(dtype: .float32, shape: [1, 64]), "extra": Tensor(dtype: .float32, shape: [1]),
            ])
        } throws: { "\($0)".contains("unknown input 'extra'") }
    }
}
