import ForkliftImage
import Foundation
import Testing

@Suite struct ClassificationTests {
    @Test func softmaxSumsToOneAndKeepsOrder() {
        let logits: [Float] = [1, 3, -2, 0.5, 3]
        let probabilities = Classification.softmax(logits)
        #expect(abs(probabilities.reduce(0, +) - 1) < 1e-6)
        #expect(probabilities[1] > probabilities[0] && probabilities[0] > probabilities[3] && probabilities[3] > probabilities[2])
        // Large logits do not overflow: the largest is subtracted first.
        let large = Classification.softmax([1000, 999])
        #expect(abs(large[0] - 1 / (1 + exp(Float(-1)))) < 1e-6)
    }

    @Test func topKIsBestFirstWithLabelsAndTiesByIndex() {
        let top = Classification.topK([1, 3, -2, 0.5, 3], k: 3, labels: ["a", "b", "c", "d", "e"])
        #expect(top.map(\.index) == [1, 4, 0])
        #expect(top.map(\.label) == ["b", "e", "a"])
        #expect(top[0].score == top[1].score && top[1].score > top[2].score)
    }

    @Test func kBeyondTheClassesGivesEveryClassAndMissingLabelsAreIndices() {
        let top = Classification.topK([0.1, 0.2], k: 10, labels: ["only one"])
        #expect(top.count == 2)
        #expect(top.map(\.label) == ["1", "only one"])
        #expect(Classification.topK([0.1, 0.2], k: 0).isEmpty)
    }

    @Test func aDistributionIsNotSoftmaxedTwice() {
        let probabilities: [Float] = [0.7, 0.2, 0.1]
        #expect(Classification.topK(probabilities, k: 1)[0].score == 0.7)
        #expect(Classification.topK(probabilities, k: 1, softmax: true)[0].score < 0.7)
        #expect(!Classification.isDistribution([2, -1]))
    }
}
