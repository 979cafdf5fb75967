import Foundation
@preconcurrency import Glibc

/// Where the repository and the built `forklift` binary are.
enum BenchPaths {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let digits = repository.appendingPathComponent("models/digits")
    /// A tiny image model (32×32 RGB crops) that scripts/make-models writes.
    static let colors = repository.appendingPathComponent(".cache/models/colors")
    /// Photos that the opencv-doc package installs (scripts/lib/deps.sh lists it for tests).
    static let photos = URL(fileURLWithPath: "/usr/share/doc/opencv-doc/examples/data")

    /// The binary beside the test bundle, or `FORKLIFT_BIN`.
    static var forklift: String {
        if let path = ProcessInfo.processInfo.environment["FORKLIFT_BIN"] { return path }
        let bundle = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: bundle).deletingLastPathComponent().appendingPathComponent("forklift").path
    }

    /// A fresh folder for a test's files.
    static func scratch() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("forklift-bench-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

struct LaunchError: Error, CustomStringConvertible { let description: String }

/// `forklift serve MODEL --port 0 --workers N` (digits and one worker by default), stopped with SIGTERM by
/// `stop()` or at deinit.
final class ForkliftServeProcess: @unchecked Sendable {
    private let process = Process()
    let port: Int
    var url: String { "http://127.0.0.1:\(port)" }

    init(model: URL = BenchPaths.digits, workers: Int = 1) throws {
        process.executableURL = URL(fileURLWithPath: BenchPaths.forklift)
        process.arguments = ["serve", model.path, "--host", "127.0.0.1", "--port", "0", "--workers", String(workers)]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Read the banner line by line until it names the port; EOF means the server died.
        let reader = output.fileHandleForReading
        var text = ""
        var found: Int?
        while found == nil {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
            if let range = text.range(of: "listening on http://127.0.0.1:") {
                found = Int(text[range.upperBound...].prefix { $0.isNumber })
            }
        }
        guard let found else {
            ChildExit.wait(process)
            throw LaunchError(description: "forklift serve did not start: \(text)")
        }
        port = found
        // Keep draining stdout so that the server never blocks on a full pipe.
        Thread.detachNewThread {
            while !reader.availableData.isEmpty {}
        }
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        ChildExit.wait(process)
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        ChildExit.wait(process)
    }
}

/// What a finished `forklift bench` printed.
struct BenchRun {
    let status: Int32
    let stdout: String
    let stderr: String

    /// The JSON file the run wrote.
    func json(_ path: URL) throws -> [String: Any] {
        let data = try Data(contentsOf: path)
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw LaunchError(description: "\(path.path) is not a JSON object")
        }
        return object
    }
}

/// Runs `forklift bench ARGS`; output goes to files, so no pipe can fill up. `interruptAfter`
/// sends SIGINT (Ctrl-C) after that many seconds.
func runBench(_ arguments: [String], interruptAfter: Double? = nil) throws -> BenchRun {
    let folder = BenchPaths.scratch()
    defer { try? FileManager.default.removeItem(at: folder) }
    let out = folder.appendingPathComponent("stdout")
    let err = folder.appendingPathComponent("stderr")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    _ = FileManager.default.createFile(atPath: err.path, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: BenchPaths.forklift)
    process.arguments = ["bench"] + arguments
    process.standardOutput = try FileHandle(forWritingTo: out)
    process.standardError = try FileHandle(forWritingTo: err)
    process.standardInput = FileHandle.nullDevice
    try process.run()
    if let interruptAfter {
        usleep(UInt32(interruptAfter * 1e6))
        kill(process.processIdentifier, SIGINT)
    }
    let status = ChildExit.wait(process) ?? -1
    return BenchRun(
        status: status, stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
}
