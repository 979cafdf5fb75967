import Foundation
import SwiftProtobuf

/// Parses an ONNX `ModelProto` into the loader's graph form. Checks structure, not semantics.
enum ModelReader {
    static func read(data: Data, baseDirectory: URL?) throws(EngineError) -> GraphIR {
        let model: Onnx_ModelProto
        do {
            model = try Onnx_ModelProto(serializedBytes: data)
        } catch {
            throw .malformedModel("not a valid ONNX protobuf (truncated or corrupt?): \(error)")
        }
        guard model.hasGraph else { throw .malformedModel("the file has no graph (is it an ONNX model?)") }
        var opsets: [String: Int] = [:]
        for entry in model.opsetImport {
            opsets[entry.domain == "ai.onnx" ? "" : entry.domain] = Int(entry.version)
        }
        if opsets[""] == nil {
            // IR version 2 models predate opset_import and mean opset 1.
            opsets[""] = 1
        }
        return try readGraph(model.graph, opsets: opsets, baseDirectory: baseDirectory)
    }

    private static func readGraph(_ graph: Onnx_GraphProto, opsets: [String: Int], baseDirectory: URL?) throws(EngineError) -> GraphIR {
        var constants: [String: Tensor] = [:]
        for initializer in graph.initializer {
            guard !initializer.name.isEmpty else { throw .malformedModel("an initializer has no name") }
            constants[initializer.name] = try TensorDecoding.decode(initializer, baseDirectory: baseDirectory)
        }
        if let sparse = graph.sparseInitializer.first {
            throw .malformedModel("sparse initializer '\(sparse.values.name)' is not supported")
        }
        // Inputs that also have an initializer are constants with a default (IR < 4 style).
        let inputs = try graph.input.filter { constants[$0.name] == nil }.map { (info) throws(EngineError) in
            try valueSpec(info, role: "input")
        }
        let outputs = try graph.output.map { (info) throws(EngineError) in try valueSpec(info, role: "output") }

        var nodes: [NodeIR] = []
        var produced = Set(inputs.map(\.name)).union(constants.keys)
        for (index, proto) in graph.node.enumerated() {
            let name = proto.name.isEmpty ? "\(proto.opType)_\(index)" : proto.name
            var attributes: [String: Attribute] = [:]
            for attribute in proto.attribute {
                attributes[attribute.name] = try decodeAttribute(attribute, node: name, baseDirectory: baseDirectory)
            }
            for output in proto.output where !output.isEmpty {
                guard produced.insert(output).inserted else {
                    throw .malformedModel("value '\(output)' is produced twice (second time by node '\(name)')")
                }
            }
            let node = NodeIR(
                name: name, opType: proto.opType, domain: proto.domain, inputs: proto.input,
                outputs: proto.output, attributes: attributes, fusedActivation: nil)
            if node.opType == "Constant", node.domain.isEmpty || node.domain == "ai.onnx" {
                let value = try ConstantNode.value(of: node, opset: opsets[""] ?? 1)
                if let output = node.outputs.first { constants[output] = value }
                continue
            }
            nodes.append(node)
        }
        for output in outputs where !produced.contains(output.name) {
            throw .malformedModel("graph output '\(output.name)' is not produced by any node, input or initializer")
        }
        return GraphIR(nodes: nodes, inputs: inputs, outputs: outputs, constants: constants, opsets: opsets)
    }

    private static func valueSpec(_ info: Onnx_ValueInfoProto, role: String) throws(EngineError) -> ValueSpec {
        guard case .tensorType(let tensorType)? = info.type.value else {
            throw .malformedModel("graph \(role) '\(info.name)' is not a tensor (sequences and maps are not supported)")
        }
        guard let dtype = DType(rawValue: tensorType.elemType) else {
            throw .malformedModel(
                "graph \(role) '\(info.name)' has dtype \(DType.onnxName(tensorType.elemType)), which the engine does not support")
        }
        let shape: [Dim]? =
            tensorType.hasShape
            ? tensorType.shape.dim.map { dim in
                switch dim.value {
                case .dimValue(let value)?: return value >= 0 ? .fixed(Int(clamping: value)) : .symbolic("?")
                case .dimParam(let param)?: return .symbolic(param.isEmpty ? "?" : param)
                case nil: return .symbolic("?")
                }
            } : nil
        return ValueSpec(name: info.name, dtype: dtype, shape: shape)
    }

    private static func decodeAttribute(_ proto: Onnx_AttributeProto, node: String, baseDirectory: URL?) throws(EngineError) -> Attribute {
        if !proto.refAttrName.isEmpty {
            throw .malformedModel("node '\(node)': attribute '\(proto.name)' refers to a function attribute, which is not supported")
        }
        switch proto.type {
        case .float: return .float(proto.f)
        case .int: return .int(Int(clamping: proto.i))
        case .string: return .string(String(decoding: proto.s, as: UTF8.self))
        case .floats: return .floats(proto.floats)
        case .ints: return .ints(proto.ints.map { Int(clamping: $0) })
        case .strings: return .strings(proto.strings.map { String(decoding: $0, as: UTF8.self) })
        case .tensor:
            do {
                return .tensor(try TensorDecoding.decode(proto.t, baseDirectory: baseDirectory))
            } catch {
                throw .malformedModel("node '\(node)', attribute '\(proto.name)': \(error)")
            }
        case .undefined:
            // Very old exporters leave the type out; infer it from the field that is set.
            if proto.hasF { return .float(proto.f) }
            if proto.hasI { return .int(Int(clamping: proto.i)) }
            if proto.hasS { return .string(String(decoding: proto.s, as: UTF8.self)) }
            if !proto.ints.isEmpty { return .ints(proto.ints.map { Int(clamping: $0) }) }
            if !proto.floats.isEmpty { return .floats(proto.floats) }
            return .other("undefined")
        default:
            return .other(String(describing: proto.type))
        }
    }
}

/// The `Constant` op, evaluated while reading: its value becomes a constant of the graph.
enum ConstantNode {
    static func value(of node: NodeIR, opset: Int) throws(EngineError) -> Tensor {
        let fail = { (error: KernelError) in EngineError.node(node: node.name, op: node.opType, error) }
        guard node.attributes.count == 1, let (name, attribute) = node.attributes.first else {
            throw fail(.invalid("needs exactly one value attribute, has \(node.attributes.count)"))
        }
        switch (name, attribute) {
        case ("value", .tensor(let tensor)): return tensor
        case ("value_float", .float(let value)): return Tensor(floats: [value], shape: [])
        case ("value_floats", .floats(let values)): return Tensor(floats: values, shape: [values.count])
        case ("value_int", .int(let value)): return Tensor(int64s: [Int64(value)], shape: [])
        case ("value_ints", .ints(let values)): return Tensor(int64s: values.map(Int64.init), shape: [values.count])
        default: throw fail(.unsupported("attribute '\(name)'"))
        }
    }
}
