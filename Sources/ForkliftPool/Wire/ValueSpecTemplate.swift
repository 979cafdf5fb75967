import ForkliftEngine
import Foundation

/// Makes `ValueSpec`s from what the zygote reported. The engine declares `ValueSpec`'s fields
/// public but not its initializer, so the pool takes a template from a one-node model (built
/// here as raw ONNX protobuf, 70 bytes) and sets the fields. If the engine gains a public
/// initializer, this file can go.
enum ValueSpecTemplate {
    static let template: ValueSpec? = {
        // Identity(x: float32[1]) -> y, opset 13.
        func field(_ number: UInt8, _ bytes: [UInt8]) -> [UInt8] { [number << 3 | 2, UInt8(bytes.count)] + bytes }
        func text(_ number: UInt8, _ value: String) -> [UInt8] { field(number, Array(value.utf8)) }
        let shape = field(2, field(1, [0x08, 0x01]))  // shape { dim { dim_value: 1 } }
        let type = field(2, field(1, [0x08, 0x01] + shape))  // type { tensor_type { elem_type: FLOAT, shape } }
        let node = field(1, text(1, "x") + text(2, "y") + text(4, "Identity"))
        let graph = node + text(2, "g") + field(11, text(1, "x") + type) + field(12, text(1, "y") + type)
        let model: [UInt8] = [0x08, 0x08] + field(7, graph) + field(8, [0x10, 13])
        return (try? Model(data: Data(model)))?.inputs.first
    }()

    static func make(name: String, dtype: DType, shape: [Dim]?) throws(ControlError) -> ValueSpec {
        guard var spec = template else { throw ControlError("cannot build a ValueSpec (the template model did not load)") }
        spec.name = name
        spec.dtype = dtype
        spec.shape = shape
        return spec
    }
}
