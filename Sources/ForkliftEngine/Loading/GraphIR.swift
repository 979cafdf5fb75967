/// An attribute value of a node, decoded from `AttributeProto`.
public enum Attribute: Sendable {
    case int(Int)
    case float(Float)
    case string(String)
    case ints([Int])
    case floats([Float])
    case strings([String])
    case tensor(Tensor)
    /// Graphs, sparse tensors and type protos: kept by name so that errors can mention them.
    case other(String)
}

/// An activation applied in place to an op's output, fused at load time.
public enum Activation: Sendable, Equatable {
    case relu
    case clip(min: Float, max: Float)
}

/// A node of the graph as the loader and its passes see it.
struct NodeIR: Sendable {
    var name: String
    var opType: String
    var domain: String
    var inputs: [String]
    var outputs: [String]
    var attributes: [String: Attribute]
    /// Set by the activation-fusion pass on Conv, Gemm and MatMul.
    var fusedActivation: Activation?

    var qualifiedOp: String { domain.isEmpty || domain == "ai.onnx" ? opType : "\(domain).\(opType)" }
}

/// A declared graph input or output: name, dtype and shape with symbolic dimensions.
public struct ValueSpec: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    public var dtype: DType
    public var shape: [Dim]?

    public init(name: String, dtype: DType, shape: [Dim]?) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }

    public var description: String {
        "\(name): \(dtype) \(shape.map { "[" + $0.map(\.description).joined(separator: ", ") + "]" } ?? "[?]")"
    }
}

/// One dimension of a declared shape.
public enum Dim: Sendable, Equatable, CustomStringConvertible {
    case fixed(Int)
    case symbolic(String)

    public var description: String {
        switch self {
        case .fixed(let value): String(value)
        case .symbolic(let name): name
        }
    }

    public var value: Int? {
        if case .fixed(let value) = self { return value }
        return nil
    }
}

/// The graph between parsing and planning.
struct GraphIR: Sendable {
    var nodes: [NodeIR]
    var inputs: [ValueSpec]
    var outputs: [ValueSpec]
    var constants: [String: Tensor]
    /// Opset version per domain ("" for the default domain).
    var opsets: [String: Int]

    func opset(for domain: String) -> Int {
        opsets[domain == "ai.onnx" ? "" : domain] ?? 0
    }
}
