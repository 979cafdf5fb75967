import Foundation

/// One class of a classifier's answer.
public struct ClassScore: Sendable, Equatable, Codable {
    public var label: String
    public var index: Int
    public var score: Float

    public init(label: String, index: Int, score: Float) {
        self.label = label
        self.index = index
        self.score = score
    }
}

/// Turns a classifier's output row into the top-k labels.
public enum Classification {
    /// Softmax, computed stably (the largest logit is subtracted first).
    public static func softmax(_ logits: [Float]) -> [Float] {
        guard let largest = logits.max(), largest.isFinite else { return logits.map { _ in Float.nan } }
        let exponentials = logits.map { exp($0 - largest) }
        let sum = exponentials.reduce(0, +)
        return exponentials.map { $0 / sum }
    }

    /// Whether `values` already are probabilities (all in 0...1, summing to 1 within rounding):
    /// many exported classifiers end in a Softmax node, and a second softmax would flatten them.
    public static func isDistribution(_ values: [Float]) -> Bool {
        guard !values.isEmpty, values.allSatisfy({ $0 >= 0 && $0 <= 1 }) else { return false }
        return abs(values.reduce(0, +) - 1) < 1e-3
    }

    /// The `k` best classes, best first (ties by lower index). `softmax`: true applies it, false
    /// takes the scores as they are, nil applies it unless the output already is a distribution.
    /// A class without a label is named by its index.
    public static func topK(_ output: [Float], k: Int, labels: [String] = [], softmax: Bool? = nil) -> [ClassScore] {
        let scores = (softmax ?? !isDistribution(output)) ? Self.softmax(output) : output
        let order = scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        return order.prefix(max(k, 0)).map { index in
            ClassScore(label: index < labels.count ? labels[index] : String(index), index: index, score: scores[index])
        }
    }
}
