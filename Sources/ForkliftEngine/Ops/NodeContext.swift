/// What a kernel factory sees of its node: attributes, opset, which inputs exist and which are constant.
struct NodeContext: Sendable {
    let node: NodeIR
    /// The opset version of the node's domain that the model imports.
    let opset: Int
    /// Values of inputs that are constant at load time, by input position.
    let constants: [Tensor?]

    var inputCount: Int { node.inputs.count }
    var outputCount: Int { node.outputs.count }
    var fusedActivation: Activation? { node.fusedActivation }

    /// True when input `index` is given (ONNX marks a left-out optional input with an empty name).
    func hasInput(_ index: Int) -> Bool { index < node.inputs.count && !node.inputs[index].isEmpty }

    func constant(_ index: Int) -> Tensor? { index < constants.count ? constants[index] : nil }

    /// Rejects attributes that the kernel does not implement, so that they fail at load by name.
    func allowAttributes(_ names: Set<String>) throws(KernelError) {
        for name in node.attributes.keys.sorted() where !names.contains(name) {
            throw .unsupported("attribute '\(name)'")
        }
    }

    /// Checks the number of inputs and outputs against the operator's arity.
    func expect(inputs: ClosedRange<Int>, outputs: ClosedRange<Int> = 1...1) throws(KernelError) {
        guard inputs.contains(node.inputs.count) else {
            throw .invalid("expects \(inputs.lowerBound)...\(inputs.upperBound) inputs, has \(node.inputs.count)")
        }
        guard outputs.contains(node.outputs.count) else {
            throw .unsupported("\(node.outputs.count) outputs (this engine computes \(outputs.upperBound))")
        }
        for index in 0..<inputs.lowerBound where !hasInput(index) {
            throw .invalid("required input \(index) is missing")
        }
    }

    func int(_ name: String) throws(KernelError) -> Int? {
        switch node.attributes[name] {
        case nil: return nil
        case .int(let value): return value
        default: throw .invalid("attribute '\(name)' must be an int")
        }
    }

    func int(_ name: String, default value: Int) throws(KernelError) -> Int { try int(name) ?? value }

    func float(_ name: String) throws(KernelError) -> Float? {
        switch node.attributes[name] {
        case nil: return nil
        case .float(let value): return value
        case .int(let value): return Float(value)
        default: throw .invalid("attribute '\(name)' must be a float")
        }
    }

    func float(_ name: String, default value: Float) throws(KernelError) -> Float { try float(name) ?? value }

    func ints(_ name: String) throws(KernelError) -> [Int]? {
        switch node.attributes[name] {
        case nil: return nil
        case .ints(let values): return values
        case .int(let value): return [value]
        default: throw .invalid("attribute '\(name)' must be a list of ints")
        }
    }

    func floats(_ name: String) throws(KernelError) -> [Float]? {
        switch node.attributes[name] {
        case nil: return nil
        case .floats(let values): return values
        case .float(let value): return [value]
        default: throw .invalid("attribute '\(name)' must be a list of floats")
        }
    }

    func string(_ name: String) throws(KernelError) -> String? {
        switch node.attributes[name] {
        case nil: return nil
        case .string(let value): return value
        default: throw .invalid("attribute '\(name)' must be a string")
        }
    }

    func tensor(_ name: String) throws(KernelError) -> Tensor? {
        switch node.attributes[name] {
        case nil: return nil
        case .tensor(let value): return value
        default: throw .invalid("attribute '\(name)' must be a tensor")
        }
    }

    /// Integers of a constant input (axes, shapes, pads given as inputs in newer opsets).
    func constantIntegers(_ index: Int) -> [Int]? {
        guard let value = constant(index), value.dtype == .int64 || value.dtype == .int32 else { return nil }
        return value.integers()
    }
}
