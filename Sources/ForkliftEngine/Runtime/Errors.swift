/// What a kernel reports. The loader and the session add the node's name and op.
public enum KernelError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The node uses an attribute value, input or dtype that the engine does not implement.
    case unsupported(String)
    /// The node or its inputs break the operator's specification.
    case invalid(String)
    /// The output shape depends on an input whose value is not known yet (load-time inference only).
    case shapeNeedsValue

    public var description: String {
        switch self {
        case .unsupported(let what): "unsupported: \(what)"
        case .invalid(let what): what
        case .shapeNeedsValue: "output shape depends on a value known only at run time"
        }
    }
}

/// Errors from loading or running a model. Each names the node, input or file at fault.
public enum EngineError: Error, Sendable, CustomStringConvertible {
    case unreadableFile(path: String, reason: String)
    case malformedModel(String)
    case unsupportedOp(node: String, op: String, domain: String)
    case node(node: String, op: String, KernelError)
    case cycle(nodes: [String])
    case missingValue(node: String, value: String)
    case unknownInput(name: String, expected: [String])
    case missingInput(name: String)
    case inputDType(name: String, expected: DType, actual: DType)
    case inputShape(name: String, expected: String, actual: [Int])

    public var description: String {
        switch self {
        case .unreadableFile(let path, let reason):
            "cannot read model '\(path)': \(reason)"
        case .malformedModel(let detail):
            "malformed model: \(detail)"
        case .unsupportedOp(let node, let op, let domain):
            "node '\(node)': unsupported op \(domain.isEmpty ? "" : domain + ".")\(op)"
        case .node(let node, let op, let error):
            "node '\(node)' (\(op)): \(error)"
        case .cycle(let nodes):
            "malformed model: the graph has a cycle through nodes \(nodes.prefix(8).map { "'\($0)'" }.joined(separator: ", "))"
        case .missingValue(let node, let value):
            "malformed model: node '\(node)' reads '\(value)', which no node, input or initializer produces"
        case .unknownInput(let name, let expected):
            "unknown input '\(name)'; the model's inputs are \(expected.joined(separator: ", "))"
        case .missingInput(let name):
            "missing input '\(name)'"
        case .inputDType(let name, let expected, let actual):
            "input '\(name)': expected dtype \(expected), got \(actual)"
        case .inputShape(let name, let expected, let actual):
            "input '\(name)': expected shape \(expected), got \(Shape.describe(actual))"
        }
    }
}
