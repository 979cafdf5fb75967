import ForkliftEngine
import Foundation
import Logging
import Testing

@testable import ForkliftPool

/// Paths, models and /proc readers shared by the pool tests.
enum PoolTestSupport {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let digits = root.appendingPathComponent("models/digits/model.onnx")
    static let wideMLP = root.appendingPathComponent(".cache/models/wide_mlp/model.onnx")
    static let resnet18 = root.appendingPathComponent(".cache/models/resnet18/model.onnx")

    struct Missing: Error, CustomStringConvertible {
        let description: String
    }

    /// The `forklift` binary that SwiftPM built next to the test bundle (the test target depends on
    /// the executable, so `swift build`/`swift test` build it first).
    static func forkliftBinary() throws -> String {
        var candidates: [URL] = []
        if let bundle = Bundle.main.executableURL {
            candidates.append(bundle.deletingLastPathComponent().appendingPathComponent("forklift"))
        }
        let argument0 = URL(fileURLWithPath: CommandLine.arguments[0])
        candidates.append(argument0.deletingLastPathComponent().appendingPathComponent("forklift"))
        for bundle in Bundle.allBundles {
            candidates.append(bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("forklift"))
        }
        for scratch in [".build-pool", ".build"] { candidates.append(root.appendingPathComponent("\(scratch)/debug/forklift")) }
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path) {
            return candidate.path
        }
        throw Missing(
            description:
                "the forklift binary was not found next to the tests (looked in \(candidates.map(\.path))); run `swift build` first")
    }

    static func configuration(workers: Int) throws -> PoolConfiguration {
        var configuration = PoolConfiguration()
        configuration.workers = workers
        configuration.executable = try forkliftBinary()
        configuration.loadTimeout = .seconds(120)
        return configuration
    }

    static let logger: Logger = {
        var logger = Logger(label: "forklift.pool.test")
        logger.logLevel = .info
        return logger
    }()

    static func entry(_ url: URL, name: String? = nil) throws -> ModelEntry {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw Missing(description: "\(url.path) is missing; run scripts/make-models")
        }
        var entries = try ModelRepository.scan(url)
        entries[0].name = name ?? url.deletingLastPathComponent().lastPathComponent
        return entries[0]
    }

    /// A distinct digits input (1 × 64 float32) per seed.
    static func digitsInput(_ seed: Int, samples: Int = 1) -> [Float] {
        (0..<(64 * samples)).map { Float((($0 * 7 + seed * 13) % 17)) / Float(1 + seed % 5) }
    }

    static func wire(_ values: [Float], shape: [Int]) -> WireTensor {
        WireTensor(dtype: .float32, shape: shape, data: values.withUnsafeBytes { Data($0) })
    }

    static func floats(_ tensor: WireTensor) -> [Float] {
        tensor.data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    static func int64s(_ tensor: WireTensor) -> [Int64] {
        tensor.data.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }
    }

    /// The engine's answer in this process, for comparison.
    static func reference(_ session: Session, _ values: [Float], shape: [Int]) throws -> [Tensor] {
        try session.run(inputs: [Tensor(floats: values, shape: shape)])
    }

    static func close(_ a: [Float], _ b: [Float], tolerance: Float = 1e-4) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
    }

    /// Polls `check` until it holds, for at most `limit` (a bound, not a timing assertion).
    static func eventually(_ limit: Duration = .seconds(60), _ check: () -> Bool) async -> Bool {
        let clock = ContinuousClock()
        let end = clock.now + limit
        while clock.now < end {
            if check() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return check()
    }

    /// /proc/PID/stat fields: state and parent pid, or nil when the process is gone.
    static func status(_ pid: Int32) -> (state: Character, parent: Int32)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 2, let state = fields[0].first, let parent = Int32(fields[1]) else { return nil }
        return (state, parent)
    }

    /// The process's state (R running or runnable, S asleep, …), read every millisecond for
    /// `duration` on a thread of its own, which starts before `body` runs: a test task that
    /// resumes late cannot make it miss what the process did right after `body`.
    static func states(of pid: Int32, for duration: Duration, around body: () async throws -> Void) async throws -> [Character] {
        let samples = StateSamples()
        let sampler = Thread {
            let clock = ContinuousClock()
            let end = clock.now + duration
            while clock.now < end {
                if let state = status(pid)?.state { samples.append(state) }
                Thread.sleep(forTimeInterval: 0.001)
            }
            samples.finish()
        }
        sampler.start()
        try await body()
        while !samples.finished { try await Task.sleep(for: .milliseconds(5)) }
        return samples.states
    }

    final class StateSamples: @unchecked Sendable {
        private let lock = NSLock()
        private var seen: [Character] = []
        private var done = false

        func append(_ state: Character) { lock.withLock { seen.append(state) } }
        func finish() { lock.withLock { done = true } }
        var finished: Bool { lock.withLock { done } }
        var states: [Character] { lock.withLock { seen } }
    }

    /// True while the process exists and is not a zombie.
    static func alive(_ pid: Int32) -> Bool {
        guard let status = status(pid) else { return false }
        return status.state != "Z" && status.state != "X"
    }

    /// Names of this process's threads, as `top -H` and perf show them.
    static func threadNames() -> Set<String> {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        let names = tasks.compactMap { try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8) }
        return Set(names.map { $0.trimmingCharacters(in: .newlines) })
    }

    /// Bytes of the process's mappings of shared batch regions (`memfd:forklift-batch`).
    static func sharedRegionBytes(_ pid: Int32) -> Int {
        guard let maps = try? String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8) else { return -1 }
        return maps.split(separator: "\n").filter { $0.contains("memfd:forklift-batch") }.reduce(0) { total, line in
            let bounds = line.prefix { $0 != " " }.split(separator: "-").compactMap { Int($0, radix: 16) }
            return bounds.count == 2 ? total + bounds[1] - bounds[0] : total
        }
    }

    /// `Rss:`, `Pss:` and shared pages (`Shared_Clean:` + `Shared_Dirty:`) of
    /// /proc/PID/smaps_rollup, in kB.
    static func memory(_ pid: Int32) -> (rss: Int, pss: Int, shared: Int)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8) else { return nil }
        func field(_ name: String) -> Int? {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return nil }
            return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
        }
        guard let rss = field("Rss"), let pss = field("Pss"), let clean = field("Shared_Clean"), let dirty = field("Shared_Dirty") else {
            return nil
        }
        return (rss, pss, clean + dirty)
    }
}
