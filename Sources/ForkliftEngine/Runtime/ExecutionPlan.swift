/// The prepared program: nodes as numbered steps over numbered value slots, with the step after
/// which each intermediate value is dead so that its buffer can be reused.
struct ExecutionPlan: Sendable {
    struct Step: Sendable {
        let name: String
        /// The op type as profiles show it, with any fused activation (e.g. "Conv+Relu").
        let label: String
        let kernel: any Kernel
        /// Slot per input; -1 for a left-out optional input.
        let inputs: [Int]
        let outputs: [Int]
        /// Slots whose last reader is this step.
        let releases: [Int]
    }

    let steps: [Step]
    let slotCount: Int
    let inputSlots: [Int]
    let outputSlots: [Int]
    /// Constants by slot; the session starts each run from this.
    let initialSlots: [Tensor?]

    init(graph: GraphIR, kernels: [any Kernel]) {
        var slotOf: [String: Int] = [:]
        var initial: [Tensor?] = []
        func slot(_ name: String) -> Int {
            if let existing = slotOf[name] { return existing }
            slotOf[name] = initial.count
            initial.append(nil)
            return initial.count - 1
        }
        for (name, value) in graph.constants.sorted(by: { $0.key < $1.key }) { initial[slot(name)] = value }
        let inputSlots = graph.inputs.map { slot($0.name) }
        var stepInputs: [[Int]] = []
        var stepOutputs: [[Int]] = []
        for (index, node) in graph.nodes.enumerated() {
            stepInputs.append(node.inputs.map { $0.isEmpty ? -1 : slot($0) })
            // A left-out output still needs a slot of its own; "::" cannot start an ONNX name here.
            stepOutputs.append(node.outputs.enumerated().map { slot($1.isEmpty ? "::step\(index)::output\($0)" : $1) })
        }
        let outputSlots = graph.outputs.map { slot($0.name) }

        // A slot dies after its last reader, unless it is a graph output, a graph input or a constant.
        var lastReader = [Int](repeating: -1, count: initial.count)
        for (index, inputs) in stepInputs.enumerated() {
            for input in inputs where input >= 0 { lastReader[input] = index }
        }
        // Outputs nobody reads die right after they are made.
        for (index, outputs) in stepOutputs.enumerated() {
            for output in outputs where lastReader[output] < 0 { lastReader[output] = index }
        }
        let pinned = Set(outputSlots).union(inputSlots).union(initial.indices.filter { initial[$0] != nil })
        var releases = [[Int]](repeating: [], count: graph.nodes.count)
        for (slot, step) in lastReader.enumerated() where step >= 0 && !pinned.contains(slot) {
            releases[step].append(slot)
        }
        steps = graph.nodes.indices.map { index in
            let node = graph.nodes[index]
            return Step(
                name: node.name, label: Self.label(node), kernel: kernels[index], inputs: stepInputs[index],
                outputs: stepOutputs[index], releases: releases[index])
        }
        self.slotCount = initial.count
        self.inputSlots = inputSlots
        self.outputSlots = outputSlots
        self.initialSlots = initial
    }

    private static func label(_ node: NodeIR) -> String {
        let op = node.qualifiedOp + groupedConvSuffix(node)
        switch node.fusedActivation {
        case nil: return op
        case .relu: return op + "+Relu"
        case .clip: return op + "+Clip"
        }
    }

    /// Grouped (in practice depthwise) convolutions run a kernel of their own, so the profile
    /// shows them apart, by kernel size and stride: "Conv(group 5×5/2)".
    private static func groupedConvSuffix(_ node: NodeIR) -> String {
        guard node.opType == "Conv", case .int(let group)? = node.attributes["group"], group > 1 else { return "" }
        var suffix = "(group"
        if case .ints(let kernel)? = node.attributes["kernel_shape"] { suffix += " " + kernel.map(String.init).joined(separator: "×") }
        if case .ints(let strides)? = node.attributes["strides"], strides.contains(where: { $0 != 1 }) {
            suffix += "/" + strides.map(String.init).joined(separator: "×")
        }
        return suffix + ")"
    }
}
