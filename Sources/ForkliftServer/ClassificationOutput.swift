import ForkliftEngine
import ForkliftImage
import ForkliftPool
import Foundation

/// Triton's classification extension: a float output of shape [classes] or [batch, classes] becomes
/// a BYTES tensor of [k] or [batch, k] strings "value:index" or "value:index:label", best first.
/// The value is the output's own (Triton does not apply a softmax).
enum ClassificationOutput {
    /// The strings of the BYTES tensor, row-major, and its shape.
    struct Ranked {
        let shape: [Int]
        let entries: [String]
    }

    static func rank(_ tensor: WireTensor, classes: Int, labels: [String]?) throws(ServerError) -> Ranked {
        let values = try floats(tensor)
        let rows = tensor.shape.count >= 2 ? tensor.shape[0] : 1
        guard rows > 0, values.count % rows == 0 else {
            throw ServerError(.internalServerError, "classification: output shape \(Shape.describe(tensor.shape)) cannot be split in rows")
        }
        let width = values.count / rows
        let k = min(classes, width)
        var entries: [String] = []
        entries.reserveCapacity(rows * k)
        for row in 0..<rows {
            let scores = Classification.topK(Array(values[(row * width)..<((row + 1) * width)]), k: k, softmax: false)
            for score in scores {
                var text = "\(score.score):\(score.index)"
                if let labels, score.index < labels.count { text += ":\(labels[score.index])" }
                entries.append(text)
            }
        }
        return Ranked(shape: tensor.shape.count >= 2 ? [rows, k] : [k], entries: entries)
    }

    private static func floats(_ tensor: WireTensor) throws(ServerError) -> [Float] {
        switch tensor.dtype {
        case .float32:
            return tensor.data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        case .float64:
            return tensor.data.withUnsafeBytes { $0.bindMemory(to: Double.self).map { Float($0) } }
        default:
            throw .badRequest("classification needs a floating-point output, not \(V2DataType.name(tensor.dtype))")
        }
    }
}
