import Dispatch
import Synchronization
import Testing

@testable import ForkliftEngine

/// Every part of every job runs exactly once, whoever claims it, including while other threads
/// dispatch at the same time (they fall back to running their parts themselves).
@Suite struct ParallelPoolTests {
    final class Tally: Sendable {
        let counts: Mutex<[Int]>
        init(_ size: Int) { counts = Mutex([Int](repeating: 0, count: size)) }
        func hit(_ index: Int) { counts.withLock { $0[index] += 1 } }
        var values: [Int] { counts.withLock { $0 } }
    }

    @Test func everyPartRunsOnce() {
        ComputeThreads.with(2) {
            for parts in [2, 3, 8, 64, 1000] {
                for _ in 0..<50 {
                    let tally = Tally(parts)
                    ParallelPool.shared.run(parts: parts) { tally.hit($0) }
                    #expect(tally.values == [Int](repeating: 1, count: parts), "\(parts) parts")
                }
            }
        }
    }

    /// Four threads dispatching at once each get every part run exactly once. Synchronous, so
    /// that it holds `ComputeThreads` (the thread count is process-wide) for its whole run.
    @Test func concurrentDispatchers() {
        let callers = 4
        let results = Mutex([Bool](repeating: false, count: callers))
        ComputeThreads.with(2) {
            DispatchQueue.concurrentPerform(iterations: callers) { caller in
                var allOnce = true
                for round in 0..<200 {
                    let parts = 2 + (caller + round) % 7
                    let tally = Tally(parts)
                    ParallelPool.shared.run(parts: parts) { tally.hit($0) }
                    allOnce = allOnce && tally.values.allSatisfy { $0 == 1 }
                }
                results.withLock { $0[caller] = allOnce }
            }
        }
        #expect(results.withLock { $0 } == [Bool](repeating: true, count: callers))
    }

    @Test func slicesCoverTheRangeInOrder() {
        for (count, parts) in [(10, 3), (3, 3), (16, 5), (0, 2)] {
            let ranges = (0..<parts).map { ParallelPool.slice(count, parts: parts, part: $0) }
            #expect(ranges.flatMap { Array($0) } == Array(0..<count))
            #expect(ranges.map(\.count).max()! - ranges.map(\.count).min()! <= 1)
        }
    }
}
