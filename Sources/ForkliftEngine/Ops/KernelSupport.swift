import Foundation

extension Activation {
    /// Applies the activation in place over `count` floats.
    func apply(_ data: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .relu:
            for i in 0..<count { data[i] = max(data[i], 0) }
        case .clip(let low, let high):
            for i in 0..<count { data[i] = min(max(data[i], low), high) }
        }
    }
}

extension Optional where Wrapped == Activation {
    func apply(_ data: UnsafeMutablePointer<Float>, count: Int) {
        if let activation = self { activation.apply(data, count: count) }
    }
}

extension TensorType {
    /// Throws unless the dtype is one of `allowed`; `role` names the input in the message.
    func require(_ allowed: Set<DType>, _ role: String) throws(KernelError) {
        guard allowed.contains(dtype) else {
            throw .unsupported("\(role) has dtype \(dtype); supported: \(allowed.map(\.description).sorted().joined(separator: ", "))")
        }
    }
}
