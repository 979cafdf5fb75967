import Foundation
@preconcurrency import Glibc
import Synchronization
import Testing

/// Paths the server tests use.
enum TestPaths {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let digits = root.appendingPathComponent("models/digits")
    static let reference = root.appendingPathComponent(".cache/reference")

    /// The `forklift` binary built next to this test bundle (or `FORKLIFT_BIN`).
    static var forklift: String {
        if let override = ProcessInfo.processInfo.environment["FORKLIFT_BIN"] { return override }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("forklift").path
    }
}

struct ServerStartError: Error, CustomStringConvertible {
    let description: String
}

/// `forklift serve` as a child process on 127.0.0.1 and a port it picked. Stop it with `stop()`;
/// `deinit` kills it if a test forgot.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    let port: Int
    let stderrPath: String
    private let lines = LineBuffer()
    /// Signalled when stdout reaches end of file: every line the server printed has been read.
    private let drained = DispatchSemaphore(value: 0)
    private var stoppedReading = false

    /// Starts the server and waits for its "listening on" line.
    init(model: URL = TestPaths.digits, arguments: [String] = [], workers: Int = 2) throws {
        stderrPath = FileManager.default.temporaryDirectory.appendingPathComponent("forklift-serve-\(UUID().uuidString).log").path
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: TestPaths.forklift)
        process.arguments = ["serve", model.path, "--host", "127.0.0.1", "--port", "0", "--workers", String(workers)] + arguments
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        try process.run()
        let handle = stdout.fileHandleForReading
        let lines = self.lines
        let drained = self.drained
        // Drain stdout on a thread of its own so that the server never blocks on a full pipe.
        Thread.detachNewThread {
            var pending = ""
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty {
                    drained.signal()
                    return
                }
                pending += String(decoding: chunk, as: UTF8.self)
                while let newline = pending.firstIndex(of: "\n") {
                    let line = String(pending[..<newline])
                    pending = String(pending[pending.index(after: newline)...])
                    lines.lines.withLock { $0.append(line) }
                }
            }
        }
        var found: Int?
        for _ in 0..<1200 where found == nil {
            found = self.lines.lines.withLock { lines in
                lines.lazy.compactMap { line -> Int? in
                    guard let range = line.range(of: "listening on http://127.0.0.1:") else { return nil }
                    return Int(line[range.upperBound...])
                }.first
            }
            if found == nil {
                guard process.isRunning else { break }
                usleep(50_000)
            }
        }
        guard let found else {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            let printed = lines.lines.withLock { $0 }.joined(separator: "\n")
            let logged = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
            throw ServerStartError(description: "the server did not start: \(printed)\n\(logged)")
        }
        port = found
    }

    var output: [String] { lines.lines.withLock { $0 } }
    var stderrText: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
    var pid: pid_t { process.processIdentifier }

    /// SIGTERM, then waits for the exit and for the last printed line; returns the exit status.
    @discardableResult
    func stop(signal: Int32 = SIGTERM) -> Int32 {
        if process.isRunning { kill(process.processIdentifier, signal) }
        return waitForExit()
    }

    /// Waits for the exit and for the last printed line, sending nothing (a second SIGTERM would
    /// stop the server at once); returns the exit status.
    @discardableResult
    func waitForExit() -> Int32 {
        process.waitUntilExit()
        // The reader thread may still hold the final lines ("stopped") when the process is gone.
        if !stoppedReading {
            stoppedReading = drained.wait(timeout: .now() + 5) == .success
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: stderrPath)
    }
}

/// Lines a child printed, shared with the thread that reads them.
final class LineBuffer: Sendable {
    let lines = Mutex<[String]>([])
}

/// Processes by parent, read from /proc/*/stat.
enum ProcessTree {
    /// (pid, ppid, state) of every process.
    static func table() -> [(pid: pid_t, ppid: pid_t, state: Character)] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry in
            guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return nil }
            // The command name is in parentheses and may hold spaces: fields follow the last ')'.
            guard let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, let state = fields[0].first, let ppid = pid_t(fields[1]) else { return nil }
            return (pid, ppid, state)
        }
    }

    static func children(of parent: pid_t) -> [pid_t] {
        table().filter { $0.ppid == parent && $0.state != "Z" }.map(\.pid).sorted()
    }

    static func descendants(of root: pid_t) -> [pid_t] {
        let all = table()
        var found: [pid_t] = []
        var frontier = [root]
        while let next = frontier.popLast() {
            let kids = all.filter { $0.ppid == next }.map(\.pid)
            found += kids
            frontier += kids
        }
        return found.sorted()
    }

    /// True when the process is gone or a zombie.
    static func isGone(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else {
            return true
        }
        return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
    }

    /// Polls until every pid is gone; returns those still alive after `tries` × 50 ms.
    static func waitGone(_ pids: [pid_t], tries: Int = 200) -> [pid_t] {
        var alive = pids
        for _ in 0..<tries {
            alive = alive.filter { !isGone($0) }
            if alive.isEmpty { return [] }
            usleep(50_000)
        }
        return alive
    }
}

/// Runs `body(index)` on `count` threads at once and waits for all of them.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        Thread.detachNewThread {
            body(index)
            group.leave()
        }
    }
    group.wait()
}
