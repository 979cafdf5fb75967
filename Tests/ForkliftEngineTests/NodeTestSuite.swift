import Foundation
import Testing

@testable import ForkliftEngine

/// ONNX's own backend test cases, as Debian's libonnx-testdata installs them: each case is a
/// model with input and expected output protobufs. Every case whose ops the engine claims must
/// pass, or be rejected at load with an "unsupported" error that names what it lacks.
///
/// `ONNX_NODE_FILTER=conv` runs only cases whose folder name contains "conv" and prints each.
@Suite struct NodeTestSuite {
    static let root = URL(fileURLWithPath: "/usr/share/libonnx-testdata/data")
    static let collections = ["node", "pytorch-converted", "pytorch-operator"]

    enum Outcome {
        case passed
        case rejected(String)
        case failed(String)
        case skipped
    }

    @Test func onnxBackendNodeCases() throws {
        let fileManager = FileManager.default
        try #require(fileManager.fileExists(atPath: Self.root.path), "install libonnx-testdata (scripts/test does)")
        let filter = ProcessInfo.processInfo.environment["ONNX_NODE_FILTER"]
        var passed: [String] = []
        var rejected: [(String, String)] = []
        var failed: [(String, String)] = []
        for collection in Self.collections {
            let folder = Self.root.appendingPathComponent(collection)
            let cases = (try? fileManager.contentsOfDirectory(atPath: folder.path))?.sorted() ?? []
            for name in cases {
                if let filter, !name.contains(filter) { continue }
                let label = "\(collection)/\(name)"
                switch Self.runCase(folder.appendingPathComponent(name)) {
                case .passed: passed.append(label)
                case .rejected(let why): rejected.append((label, why))
                case .failed(let why): failed.append((label, why))
                case .skipped: continue
                }
                if filter != nil {
                    print(
                        "[node] \(label): \(failed.last?.0 == label ? "FAILED \(failed.last?.1 ?? "")" : rejected.last?.0 == label ? "rejected: \(rejected.last?.1 ?? "")" : "passed")"
                    )
                }
            }
        }
        for (label, why) in rejected { print("[node] rejected at load: \(label): \(why)") }
        for (label, why) in failed { print("[node] FAILED: \(label): \(why)") }
        print("ONNX node tests: \(passed.count) cases passed, \(failed.count) failed, \(rejected.count) rejected at load")
        #expect(failed.isEmpty, "\(failed.count) ONNX backend cases failed: \(failed.prefix(10).map(\.0))")
        if filter == nil { #expect(passed.count >= 200, "too few cases ran: \(passed.count)") }
    }

    /// Runs one case folder; skips cases that use ops the engine does not claim.
    static func runCase(_ folder: URL) -> Outcome {
        let modelURL = folder.appendingPathComponent("model.onnx")
        guard let file = try? ModelSummary.inspectFile(modelURL), !file.outputs.isEmpty,
            file.counts.unsupportedOps.isEmpty
        else { return .skipped }
        let model: Model
        do {
            model = try Model(contentsOf: modelURL)
        } catch {
            if Self.isRejection(error) { return .rejected(error.description) }
            return .failed("load: \(error)")
        }
        let sets = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
            .filter { $0.hasPrefix("test_data_set_") }.sorted()
        let session = Session(model: model)
        for set in sets {
            let setURL = folder.appendingPathComponent(set)
            do {
                let inputs = try Self.readTensors(setURL, prefix: "input_")
                let expected = try Self.readTensors(setURL, prefix: "output_")
                let outputs = try session.run(inputs: inputs)
                guard outputs.count == expected.count else {
                    return .failed("\(set): \(outputs.count) outputs, expected \(expected.count)")
                }
                for (index, (actual, reference)) in zip(outputs, expected).enumerated() {
                    if let mismatch = Self.compare(actual, reference) {
                        return .failed("\(set) output \(index): \(mismatch)")
                    }
                }
            } catch {
                return .failed("\(set): \(error)")
            }
        }
        return .passed
    }

    static func isRejection(_ error: EngineError) -> Bool {
        switch error {
        case .node(_, _, .unsupported): true
        case .malformedModel(let message): message.contains("not support")
        default: false
        }
    }

    static func readTensors(_ folder: URL, prefix: String) throws -> [Tensor] {
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasPrefix(prefix) && $0.hasSuffix(".pb") }
            .sorted { Int($0.dropFirst(prefix.count).dropLast(3)) ?? 0 < Int($1.dropFirst(prefix.count).dropLast(3)) ?? 0 }
        return try names.map { try TensorFile.read(folder.appendingPathComponent($0)).tensor }
    }

    /// nil when equal within ONNX's backend tolerance (rtol 1e-3, atol 1e-5; ints exact).
    static func compare(_ actual: Tensor, _ expected: Tensor) -> String? {
        guard actual.dtype == expected.dtype else { return "dtype \(actual.dtype), expected \(expected.dtype)" }
        guard actual.shape == expected.shape else { return "shape \(actual.shape), expected \(expected.shape)" }
        let a = actual.doubles()
        let e = expected.doubles()
        let exact = actual.dtype != .float32 && actual.dtype != .float64
        for index in a.indices {
            let tolerance = exact ? 0 : 1e-5 + 1e-3 * abs(e[index])
            if a[index].isNaN && e[index].isNaN { continue }
            if a[index] == e[index] { continue }
            if !(abs(a[index] - e[index]) <= tolerance) {
                return "element \(index): \(a[index]), expected \(e[index])"
            }
        }
        return nil
    }
}
