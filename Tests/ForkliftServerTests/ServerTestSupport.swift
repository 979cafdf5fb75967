import ForkliftEngine
import Foundation
import Testing

@testable import ForkliftServer

/// The digits model's samples and its in-process answers, and V2 request builders.
enum Digits {
    static let input = "float_input"

    /// Rows of the digits test set (64 floats each).
    static func rows() throws -> [[Float]] {
        let data = try Data(contentsOf: TestPaths.reference.appendingPathComponent("digits/test_X.npy"))
        let tensor = try NPY.read(data)
        let width = tensor.shape[1]
        let all = tensor.floatArray()
        return (0..<tensor.shape[0]).map { Array(all[$0 * width..<($0 + 1) * width]) }
    }

    /// The engine's answer for one row, run in this process: (probabilities, label).
    final class Reference: @unchecked Sendable {
        let session: Session
        let lock = NSLock()

        init() throws {
            session = Session(model: try Model(contentsOf: TestPaths.digits.appendingPathComponent("model.onnx")))
        }

        func run(_ row: [Float]) throws -> (probabilities: [Float], label: Int64) {
            lock.lock()
            defer { lock.unlock() }
            let outputs = try session.run([Digits.input: Tensor(floats: row, shape: [1, row.count])])
            guard let probabilities = outputs["probabilities"], let label = outputs["label"] else {
                throw ServerStartError(description: "no outputs")
            }
            return (probabilities.floatArray(), label.int64Array()[0])
        }
    }

    static func jsonRequest(_ row: [Float], id: String? = nil, extra: String = "") -> String {
        let data = row.map { "\($0)" }.joined(separator: ",")
        let idPart = id.map { #""id": "\#($0)", "# } ?? ""
        return
            #"{\#(idPart)"inputs": [{"name": "float_input", "shape": [1, \#(row.count)], "datatype": "FP32", "data": [\#(data)]}]\#(extra)}"#
    }

    /// A Triton binary request: JSON header, then the row's raw float32 bytes. Asks for binary outputs.
    static func binaryRequest(_ row: [Float]) -> (headers: [(String, String)], body: [UInt8]) {
        let header = Array(
            #"{"inputs": [{"name": "float_input", "shape": [1, \#(row.count)], "datatype": "FP32", "parameters": {"binary_data_size": \#(row.count * 4)}}], "parameters": {"binary_data_output": true}}"#
                .utf8)
        let bytes = row.withUnsafeBytes { Array($0) }
        return ([("Inference-Header-Content-Length", String(header.count))], header + bytes)
    }

    /// (probabilities, label) from a JSON infer response.
    static func parseJSON(_ reply: HTTPReply) throws -> (probabilities: [Float], label: Int64, json: JSON) {
        let json = try JSONParser.parse(reply.body)
        guard case .array(let outputs)? = json["outputs"] else { throw ServerStartError(description: "no outputs in \(reply.text)") }
        var probabilities: [Float] = []
        var label: Int64 = -1
        for output in outputs {
            guard case .array(let data)? = output["data"] else { continue }
            if output["name"] == .string("probabilities") {
                probabilities = data.compactMap {
                    switch $0 {
                    case .double(let value): Float(value)
                    case .int(let value): Float(value)
                    default: nil
                    }
                }
            } else if output["name"] == .string("label"), case .int(let value)? = data.first {
                label = value
            }
        }
        return (probabilities, label, json)
    }

    /// (probabilities, label) from a binary infer response.
    static func parseBinary(_ reply: HTTPReply) throws -> (probabilities: [Float], label: Int64) {
        guard let length = reply.headers["inference-header-content-length"].flatMap({ Int($0) }) else {
            throw ServerStartError(description: "no Inference-Header-Content-Length in \(reply.headers)")
        }
        let json = try JSONParser.parse(Array(reply.body[0..<length]))
        guard case .array(let outputs)? = json["outputs"] else { throw ServerStartError(description: "no outputs") }
        var offset = length
        var probabilities: [Float] = []
        var label: Int64 = -1
        for output in outputs {
            guard case .int(let size)? = output["parameters"]?["binary_data_size"] else {
                throw ServerStartError(description: "output without binary_data_size")
            }
            let bytes = Array(reply.body[offset..<offset + Int(size)])
            offset += Int(size)
            if output["name"] == .string("probabilities") {
                probabilities = bytes.withUnsafeBytes { raw in
                    (0..<Int(size) / 4).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
                }
            } else {
                label = bytes.withUnsafeBytes { $0.loadUnaligned(as: Int64.self) }
            }
        }
        return (probabilities, label)
    }

    static func close(_ a: [Float], _ b: [Float]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= 1e-5 + 1e-4 * abs($1) }
    }
}

/// Values of one Prometheus series from /metrics text, e.g. `forklift_batch_size_sum{model="digits"}`.
func metricValue(_ text: String, _ series: String) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.dropFirst(series.count + 1).trimmingCharacters(in: .whitespaces))
    }
    return nil
}
