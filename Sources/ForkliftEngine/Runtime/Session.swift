import Foundation

/// The mutable side of inference: slots and recycled buffers for one model. Not thread-safe;
/// use one session per thread or process. Many sessions share one `Model`.
public final class Session {
    public let model: Model
    let bufferPool = BufferPool()
    /// When set, `run` adds each step's time under its op label.
    public var profile: OpProfile?

    public init(model: Model) {
        self.model = model
    }

    /// Runs the model on named inputs and returns the outputs by name.
    public func run(_ feeds: [String: Tensor]) throws(EngineError) -> [String: Tensor] {
        for name in feeds.keys where !model.inputs.contains(where: { $0.name == name }) {
            throw .unknownInput(name: name, expected: model.inputs.map(\.name))
        }
        var ordered: [Tensor] = []
        for spec in model.inputs {
            guard let tensor = feeds[spec.name] else { throw .missingInput(name: spec.name) }
            ordered.append(tensor)
        }
        let results = try run(inputs: ordered)
        return Dictionary(zip(model.outputs.map(\.name), results), uniquingKeysWith: { first, _ in first })
    }

    /// Runs the model on inputs in the order of `model.inputs`; outputs follow `model.outputs`.
    public func run(inputs: [Tensor]) throws(EngineError) -> [Tensor] {
        try InputValidation.check(inputs, against: model.inputs)
        let plan = model.plan
        var slots = plan.initialSlots
        for (slot, tensor) in zip(plan.inputSlots, inputs) { slots[slot] = tensor }
        for step in plan.steps {
            var stepInputs: [Tensor] = []
            stepInputs.reserveCapacity(step.inputs.count)
            for slot in step.inputs {
                if slot < 0 {
                    stepInputs.append(.absent)
                } else if let value = slots[slot] {
                    stepInputs.append(value)
                } else {
                    throw .node(node: step.name, op: step.label, .invalid("input slot \(slot) is empty (engine bug)"))
                }
            }
            let start = profile == nil ? 0 : OpProfile.now()
            let results: [Tensor]
            do {
                results = try Evaluation.run(step.kernel, inputs: stepInputs, pool: bufferPool)
            } catch {
                throw .node(node: step.name, op: step.label, error)
            }
            if let profile { profile.add(step.label, seconds: OpProfile.now() - start) }
            for (slot, value) in zip(step.outputs, results) { slots[slot] = value }
            for slot in step.releases { slots[slot] = nil }
        }
        var outputs: [Tensor] = []
        for (slot, spec) in zip(plan.outputSlots, model.outputs) {
            guard let value = slots[slot] else {
                throw .node(node: spec.name, op: "output", .invalid("graph output was not computed (engine bug)"))
            }
            outputs.append(value)
        }
        return outputs
    }
}

/// Time per op label over the runs of a session.
public final class OpProfile {
    public private(set) var seconds: [String: Double] = [:]
    public private(set) var calls: [String: Int] = [:]

    public init() {}

    func add(_ label: String, seconds elapsed: Double) {
        seconds[label, default: 0] += elapsed
        calls[label, default: 0] += 1
    }

    public func reset() {
        seconds = [:]
        calls = [:]
    }

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
}

/// Checks inputs against the model's declared dtypes and shapes before any kernel sees them.
enum InputValidation {
    static func check(_ inputs: [Tensor], against specs: [ValueSpec]) throws(EngineError) {
        guard inputs.count == specs.count else {
            throw .missingInput(name: specs.dropFirst(inputs.count).first?.name ?? "?")
        }
        var symbols: [String: Int] = [:]
        for (tensor, spec) in zip(inputs, specs) {
            guard tensor.dtype == spec.dtype else {
                throw .inputDType(name: spec.name, expected: spec.dtype, actual: tensor.dtype)
            }
            guard let dims = spec.shape else { continue }
            let expected = "[" + dims.map(\.description).joined(separator: ", ") + "]"
            guard dims.count == tensor.rank else {
                throw .inputShape(name: spec.name, expected: expected, actual: tensor.shape)
            }
            for (dim, actual) in zip(dims, tensor.shape) {
                switch dim {
                case .fixed(let size) where size != actual:
                    throw .inputShape(name: spec.name, expected: expected, actual: tensor.shape)
                case .symbolic(let name) where name != "?":
                    if let bound = symbols[name], bound != actual {
                        throw .inputShape(name: spec.name, expected: expected + " with \(name) = \(bound)", actual: tensor.shape)
                    }
                    symbols[name] = actual
                default:
                    break
                }
            }
        }
    }
}
