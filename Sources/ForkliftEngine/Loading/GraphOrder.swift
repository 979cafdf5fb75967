/// Topological order of the graph's nodes, with the structural checks that need it.
enum GraphOrder {
    /// Sorts nodes so that each runs after the producers of its inputs (Kahn's algorithm, stable).
    static func sort(_ graph: inout GraphIR) throws(EngineError) {
        var producer: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for output in node.outputs where !output.isEmpty { producer[output] = index }
        }
        let available = Set(graph.inputs.map(\.name)).union(graph.constants.keys)
        var pending = [Int](repeating: 0, count: graph.nodes.count)
        var consumers = [[Int]](repeating: [], count: graph.nodes.count)
        for (index, node) in graph.nodes.enumerated() {
            for input in Set(node.inputs) where !input.isEmpty && !available.contains(input) {
                guard let source = producer[input] else {
                    throw .missingValue(node: node.name, value: input)
                }
                pending[index] += 1
                consumers[source].append(index)
            }
        }
        var ready = (0..<graph.nodes.count).filter { pending[$0] == 0 }.reversed() as [Int]
        var order: [Int] = []
        order.reserveCapacity(graph.nodes.count)
        while let next = ready.popLast() {
            order.append(next)
            for consumer in consumers[next].reversed() {
                pending[consumer] -= 1
                if pending[consumer] == 0 { ready.append(consumer) }
            }
        }
        guard order.count == graph.nodes.count else {
            let stuck = (0..<graph.nodes.count).filter { pending[$0] > 0 }.map { graph.nodes[$0].name }
            throw .cycle(nodes: stuck)
        }
        graph.nodes = order.map { graph.nodes[$0] }
    }

    /// Drops nodes none of whose outputs reach a graph output.
    static func removeDeadNodes(_ graph: inout GraphIR) {
        var needed = Set(graph.outputs.map(\.name))
        var keep = [Bool](repeating: false, count: graph.nodes.count)
        for index in stride(from: graph.nodes.count - 1, through: 0, by: -1) {
            let node = graph.nodes[index]
            if node.outputs.contains(where: needed.contains) {
                keep[index] = true
                needed.formUnion(node.inputs.filter { !$0.isEmpty })
            }
        }
        graph.nodes = graph.nodes.indices.filter { keep[$0] }.map { graph.nodes[$0] }
    }

    /// How many nodes read each value, and whether it is a graph output.
    static func consumerCounts(_ graph: GraphIR) -> [String: Int] {
        var counts: [String: Int] = [:]
        for node in graph.nodes {
            for input in node.inputs where !input.isEmpty { counts[input, default: 0] += 1 }
        }
        for output in graph.outputs { counts[output.name, default: 0] += 1 }
        return counts
    }
}
