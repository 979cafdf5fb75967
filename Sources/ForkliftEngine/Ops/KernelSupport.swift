import Foundation

extension Activation {
    /// The activation as a clamp to [low, high], the form the fused epilogues apply.
    var bounds: (low: Float, high: Float) {
        switch self {
        case .relu: (0, .infinity)
        case .clip(let low, let high): (low, high)
        }
    }

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
