import ArgumentParser
import ForkliftEngine
import Foundation

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model's inputs, outputs, ops, parameters and FLOPs, and what the engine cannot run.")

    @Argument(help: "The .onnx file.") var model: String

    func run() throws {
        let url = URL(fileURLWithPath: model)
        let file: (inputs: [ValueSpec], outputs: [ValueSpec], counts: ModelSummary.Counts)
        do { file = try ModelSummary.inspectFile(url) } catch { throw CLIError("\(model): \(error)") }
        print("model: \(model)")
        let counts = file.counts
        print("parameters: \(grouped(counts.parameterCount)) (\(bytes(counts.parameterBytes)))")
        print("ops in the file: " + listing(counts.opCounts))
        let prepared: Model
        do {
            prepared = try Model(contentsOf: url)
        } catch {
            printSpecs(inputs: file.inputs, outputs: file.outputs)
            if !counts.unsupportedOps.isEmpty {
                print("unsupported ops: \(counts.unsupportedOps.joined(separator: ", "))")
            }
            throw CLIError("cannot load \(model): \(error)")
        }
        printSpecs(inputs: prepared.inputs, outputs: prepared.outputs)
        print("ops after folding and fusion: " + listing(prepared.summary.preparedOpCounts))
        if let flops = prepared.summary.flopsPerSample {
            print("FLOPs per sample: \(grouped(flops))")
        } else {
            print("FLOPs per sample: unknown (shapes depend on input values)")
        }
        print("unsupported ops: none")
    }

    private func printSpecs(inputs: [ValueSpec], outputs: [ValueSpec]) {
        print("inputs:")
        for spec in inputs { print("  \(spec)") }
        print("outputs:")
        for spec in outputs { print("  \(spec)") }
    }

    private func listing(_ counts: [String: Int]) -> String {
        counts.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
    }
}

func grouped(_ value: Int) -> String {
    let digits = Array(String(value))
    var out = ""
    for (index, digit) in digits.enumerated() {
        if index > 0, (digits.count - index) % 3 == 0 { out.append(",") }
        out.append(digit)
    }
    return out
}

func bytes(_ count: Int) -> String {
    if count >= 1 << 20 { return String(format: "%.1f MiB", Double(count) / Double(1 << 20)) }
    if count >= 1 << 10 { return String(format: "%.1f KiB", Double(count) / Double(1 << 10)) }
    return "\(count) B"
}
