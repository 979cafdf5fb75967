import ForkliftPool
import Foundation
import NIOCore
import Testing

@testable import ForkliftServer

/// A body kept as the parts it arrived in must read, by any range, like the same bytes in one array.
@Suite struct BodyPartsTests {
    private func parts(_ bytes: [UInt8], cuts: [Int]) -> BodyParts {
        var body = BodyParts()
        var start = 0
        for end in cuts + [bytes.count] {
            body.append(ByteBuffer(bytes: bytes[start..<end]))
            start = end
        }
        return body
    }

    @Test func everyRangeReadsLikeTheJoinedBytes() {
        let bytes = (0..<200).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        // Cuts that leave empty parts (repeated cuts) must be skipped.
        for cuts in [[], [1], [50, 50, 120], [10, 20, 30, 40, 199]] {
            let body = parts(bytes, cuts: cuts)
            #expect(body.count == bytes.count)
            #expect(body.joined() == bytes)
            for lower in stride(from: 0, through: bytes.count, by: 9) {
                for upper in stride(from: lower, through: bytes.count, by: 13) {
                    let range = lower..<upper
                    #expect(body.data(in: range) == Data(bytes[range]), "cuts \(cuts), range \(range)")
                    let seen = body.withBytes(in: range) { Array($0) }
                    #expect(seen == Array(bytes[range]), "cuts \(cuts), range \(range)")
                }
            }
        }
    }

    /// Parts of 16 KB and more are kept as the channel read them rather than copied.
    @Test func largePartsReadLikeTheJoinedBytes() {
        let bytes = (0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 5) }
        let body = parts(bytes, cuts: [20_000, 20_100, 45_000])
        #expect(body.joined() == bytes)
        for range in [
            0..<20_000, 19_990..<20_000, 19_990..<20_001, 19_990..<20_010, 100..<49_900, 20_000..<20_100, 44_999..<50_000, 30_000..<30_000,
        ] {
            #expect(body.data(in: range) == Data(bytes[range]), "range \(range)")
            #expect(body.withBytes(in: range) { Array($0) } == Array(bytes[range]), "range \(range)")
        }
    }

    /// A large binary tensor reaches the pool as pieces that share the parts' storage; the pool's
    /// thread then copies each one once, into the worker's region.
    @Test func largeTensorRangesArePiecesOfTheParts() {
        let bytes = (0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }
        let body = parts(bytes, cuts: [20_000, 20_100, 45_000])
        let range = 100..<49_900
        let tensor = body.tensorBytes(in: range)
        #expect(tensor.count == range.count)
        #expect(tensor.pieces.map(\.count) == [19_900, 100, 24_900, 4_900])
        #expect(tensor.joined == Data(bytes[range]))
        let firstPiece = tensor.pieces[0].withUnsafeBytes { $0.baseAddress }
        let firstPart = body.withBytes(in: range.lowerBound..<20_000) { $0.baseAddress }
        #expect(firstPiece == firstPart, "the first piece is the first part's memory, not a copy")
        let small = body.tensorBytes(in: 19_000..<21_000)
        #expect(small.pieces.count == 1, "a range under the copy limit is copied into one piece")
        #expect(small.joined == Data(bytes[19_000..<21_000]))
        #expect(bytes.tensorBytes(in: 5..<40_000).pieces == [Data(bytes[5..<40_000])])
    }

    @Test func anEmptyBodyReadsAsEmpty() {
        let body = BodyParts()
        #expect(body.count == 0)
        #expect(body.joined().isEmpty)
        #expect(body.data(in: 0..<0).isEmpty)
        #expect(body.withBytes(in: 0..<0) { $0.count } == 0)
    }

    @Test func arraysReadTheirOwnRanges() {
        let bytes: [UInt8] = [1, 2, 3, 4, 5]
        #expect(bytes.data(in: 1..<4) == Data([2, 3, 4]))
        #expect(bytes.withBytes(in: 2..<5) { Array($0) } == [3, 4, 5])
        #expect(bytes.data(in: 5..<5).isEmpty)
    }
}
