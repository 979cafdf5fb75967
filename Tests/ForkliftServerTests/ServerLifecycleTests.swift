import Foundation
@preconcurrency import Glibc
import Synchronization
import Testing

@testable import ForkliftServer

/// Batching under concurrency, shutdown, crashes and start-up failures of `forklift serve`.
@Suite(.serialized) struct ServerLifecycleTests {
    /// Counts replies by status from many threads.
    final class Tally: Sendable {
        let statuses = Mutex<[Int: Int]>([:])
        let mismatches = Mutex<[String]>([])
        let done = Atomic<Int>(0)

        func add(_ status: Int) {
            statuses.withLock { $0[status, default: 0] += 1 }
            done.add(1, ordering: .relaxed)
        }

        func mismatch(_ text: String) { mismatches.withLock { $0.append(text) } }
        var all: [Int: Int] { statuses.withLock { $0 } }
    }

    @Test func concurrentRequestsAreBatchedAndAnsweredEachToItsOwn() throws {
        // One worker and a short hold-back make batches of several requests certain.
        let server = try ServerProcess(arguments: ["--max-queue-delay", "5"], workers: 1)
        defer { server.stop() }
        let rows = try Digits.rows()
        let reference = try Digits.Reference()
        let expected = try rows.map { try reference.run($0) }
        let tally = Tally()
        let port = server.port
        onThreads(32) { thread in
            for round in 0..<8 {
                // Threads walk the rows in different orders, so each batch mixes different samples.
                let index = (thread * 37 + round * 11) % rows.count
                let binary = (thread + round) % 2 == 0
                do {
                    let reply: HTTPReply
                    let answer: (probabilities: [Float], label: Int64)
                    if binary {
                        let (headers, body) = Digits.binaryRequest(rows[index])
                        reply = try RawHTTP.request(port: port, "POST", "/v2/models/digits/infer", headers: headers, body: body)
                        answer = reply.status == 200 ? try Digits.parseBinary(reply) : ([], -1)
                    } else {
                        reply = try RawHTTP.postJSON(port: port, "/v2/models/digits/infer", Digits.jsonRequest(rows[index]))
                        let parsed = reply.status == 200 ? try Digits.parseJSON(reply) : ([], -1, .null)
                        answer = (parsed.0, parsed.1)
                    }
                    tally.add(reply.status)
                    if reply.status == 200,
                        answer.label != expected[index].label || !Digits.close(answer.probabilities, expected[index].probabilities)
                    {
                        tally.mismatch("row \(index): got label \(answer.label), expected \(expected[index].label)")
                    }
                } catch {
                    tally.add(-1)
                    tally.mismatch("row \(index): \(error)")
                }
            }
        }
        #expect(tally.all == [200: 256], "\(tally.all)")
        #expect(tally.mismatches.withLock { $0 }.isEmpty, "\(tally.mismatches.withLock { $0.prefix(5) })")
        let metrics = try RawHTTP.get(port: port, "/metrics").text
        let sum = metricValue(metrics, #"forklift_batch_size_sum{model="digits"}"#) ?? 0
        let count = metricValue(metrics, #"forklift_batch_size_count{model="digits"}"#) ?? 0
        #expect(sum == 256, "batch sizes sum to \(sum)")
        #expect(count > 0 && count < sum, "\(Int(count)) batches for \(Int(sum)) samples: no batching")
        #expect(metricValue(metrics, #"forklift_requests_total{model="digits",outcome="success"}"#) == 256)
        // One compute time per batch, each a positive duration.
        #expect(metricValue(metrics, #"forklift_compute_duration_seconds_count{model="digits"}"#) == count)
        #expect((metricValue(metrics, #"forklift_compute_duration_seconds_sum{model="digits"}"#) ?? 0) > 0)
        for name in ["forklift_queue_duration_seconds", "forklift_queue_depth", "forklift_busy_workers", "forklift_live_workers"] {
            #expect(metrics.contains(name), "no \(name) in /metrics")
        }
    }

    @Test func sigtermFinishesAcceptedRequestsAndLeavesNoProcess() throws {
        // Requests sit in the queue for the hold-back, so they are in flight when SIGTERM comes.
        let server = try ServerProcess(arguments: ["--max-queue-delay", "400"], workers: 1)
        let children = ProcessTree.descendants(of: server.pid)
        #expect(children.count >= 2, "expected a zygote and a worker, found \(children)")
        let rows = try Digits.rows()
        let tally = Tally()
        let sent = Atomic<Int>(0)
        let port = server.port
        let group = DispatchGroup()
        for index in 0..<16 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                do {
                    let reply = try RawHTTP.request(
                        port: port, "POST", "/v2/models/digits/infer", body: Array(Digits.jsonRequest(rows[index]).utf8),
                        afterSend: { sent.add(1, ordering: .relaxed) })
                    tally.add(reply.status)
                } catch {
                    tally.add(-1)
                    tally.mismatch("\(error)")
                }
            }
        }
        while sent.load(ordering: .relaxed) < 16 { usleep(1000) }
        usleep(100_000)  // let the server read the requests it has accepted
        kill(server.pid, SIGTERM)
        group.wait()
        let status = server.waitForExit()
        #expect(tally.all == [200: 16], "\(tally.all) \(tally.mismatches.withLock { $0 })")
        #expect(status == 0, "exit status \(status): \(server.stderrText)")
        #expect(ProcessTree.waitGone(children).isEmpty, "left running: \(children.filter { !ProcessTree.isGone($0) })")
        #expect(server.output.contains { $0.contains("stopped") })
    }

    /// A second SIGTERM does not wait out the grace period, which a client that never finishes
    /// its request would otherwise hold up to the end.
    @Test func secondSigtermStopsAtOnce() throws {
        let server = try ServerProcess(arguments: ["--graceful-timeout", "60"], workers: 1)
        let children = ProcessTree.descendants(of: server.pid)
        #expect(children.count >= 2, "expected a zygote and a worker, found \(children)")
        let fd = try RawHTTP.connection(port: server.port)
        defer { close(fd) }
        let head = RawHTTP.requestHead("POST", "/v2/models/digits/infer", fields: [("Host", "127.0.0.1")], bodyCount: 100)
        try RawHTTP.sendAll(fd, head + Array(#"{"inp"#.utf8))  // 5 of the 100 body bytes
        usleep(200_000)  // let the server read the head: the request is now in flight
        kill(server.pid, SIGTERM)
        usleep(500_000)
        #expect(server.process.isRunning, "the first SIGTERM waits for the request in flight")
        let status = server.stop(signal: SIGTERM)
        #expect(status == 128 + SIGTERM, "exit status \(status): \(server.stderrText)")
        #expect(server.stderrText.contains("second signal (SIGTERM): stopping at once"), "\(server.stderrText)")
        #expect(ProcessTree.waitGone(children).isEmpty, "left running: \(children.filter { !ProcessTree.isGone($0) })")
    }

    @Test func killedWorkerUnderLoadFailsNoRequest() throws {
        let server = try ServerProcess(workers: 2)
        defer { server.stop() }
        let zygote = try #require(ProcessTree.children(of: server.pid).first)
        let workers = ProcessTree.children(of: zygote)
        #expect(workers.count == 2, "workers \(workers)")
        let rows = try Digits.rows()
        let tally = Tally()
        let port = server.port
        let victim = try #require(workers.first)
        let killer = Thread {
            while tally.done.load(ordering: .relaxed) < 60 { usleep(1000) }
            kill(victim, SIGKILL)
        }
        killer.start()
        onThreads(8) { thread in
            for round in 0..<40 {
                let index = (thread * 40 + round) % rows.count
                do {
                    let reply = try RawHTTP.postJSON(port: port, "/v2/models/digits/infer", Digits.jsonRequest(rows[index]))
                    tally.add(reply.status)
                    if reply.status != 200 { tally.mismatch(reply.text) }
                } catch {
                    tally.add(-1)
                    tally.mismatch("\(error)")
                }
            }
        }
        #expect(tally.all == [200: 320], "\(tally.all) \(tally.mismatches.withLock { $0.prefix(3) })")
        #expect(ProcessTree.waitGone([victim]).isEmpty)
        // A new worker replaces the dead one.
        var replaced: [pid_t] = []
        for _ in 0..<200 {
            replaced = ProcessTree.children(of: zygote)
            if replaced.count == 2, !replaced.contains(victim) { break }
            usleep(50_000)
        }
        #expect(replaced.count == 2 && !replaced.contains(victim), "workers after the kill: \(replaced)")
        #expect(try RawHTTP.get(port: port, "/v2/health/ready").status == 200)
        let metrics = try RawHTTP.get(port: port, "/metrics").text
        #expect(metrics.contains("forklift_worker_restarts_total"))
    }

    @Test func killedServerLeavesNoOrphans() throws {
        let server = try ServerProcess(workers: 2)
        let children = ProcessTree.descendants(of: server.pid)
        #expect(children.count == 3, "expected a zygote and two workers, found \(children)")
        server.stop(signal: SIGKILL)
        #expect(ProcessTree.waitGone(children).isEmpty, "orphans: \(children.filter { !ProcessTree.isGone($0) })")
    }

    @Test func portInUseExitsWithAClearMessage() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        try #require(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let (status, output) = try Self.runServe(["serve", TestPaths.digits.path, "--port", String(port), "--workers", "1"])
        #expect(status != 0)
        #expect(output.contains("cannot listen on 127.0.0.1:\(port): address already in use"), "\(output)")
    }

    @Test func modelsThatDoNotLoadExitWithAClearMessage() throws {
        let missing = try Self.runServe(["serve", "/nonexistent/models", "--port", "0"])
        #expect(missing.status != 0)
        #expect(missing.output.contains("/nonexistent/models: no such file or directory"), "\(missing.output)")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("forklift-bad-\(UUID().uuidString)/broken")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        try Data("not an onnx model".utf8).write(to: folder.appendingPathComponent("model.onnx"))
        let broken = try Self.runServe(["serve", folder.deletingLastPathComponent().path, "--port", "0", "--workers", "1"])
        #expect(broken.status != 0)
        #expect(broken.output.contains("broken"), "\(broken.output)")
    }

    /// Times past what integer nanoseconds hold (or, for `--busy-poll`, the batch frame's field),
    /// infinite or not numbers at all are usage errors that name the flag, not crashes.
    @Test func outOfRangeTimesAreUsageErrors() throws {
        for (flag, value, message) in [
            ("--timeout", "1e30", "--timeout must be positive and at most 1e9 seconds"),
            ("--load-timeout", "inf", "--load-timeout must be positive"),
            ("--graceful-timeout", "nan", "--graceful-timeout must be positive"),
            ("--max-queue-delay", "1e300", "--max-queue-delay must be at least 0 and at most 1e12 milliseconds"),
            ("--failure-log-interval", "inf", "--failure-log-interval must be at least 0"),
            ("--busy-poll", "60000", "--busy-poll must be in 0...50000 microseconds"),
        ] {
            let run = try Self.runServe(["serve", TestPaths.digits.path, "--port", "0", "--workers", "1", flag, value])
            #expect(run.status == 64, "\(flag) \(value): \(run.output)")
            #expect(run.output.contains(message), "\(run.output)")
        }
    }

    /// Runs `forklift` to completion; returns its exit status and stdout + stderr.
    static func runServe(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestPaths.forklift)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// Overload and deadline answers: 503 with Retry-After for a full queue, 504 past --timeout.
@Suite(.serialized) struct ServerOverloadTests {
    /// With a log interval of an hour, the rejections after the first are counted, not logged;
    /// with zero, each is logged.
    @Test(arguments: [3600, 0]) func fullQueueAnswers503WithRetryAfter(failureLogInterval: Int) throws {
        // One worker holding each batch back 500 ms, and room for 2 waiting requests.
        let server = try ServerProcess(
            arguments: ["--max-queue", "2", "--max-queue-delay", "500", "--failure-log-interval", "\(failureLogInterval)"], workers: 1)
        defer { server.stop() }
        let row = try Digits.rows()[0]
        let replies = Mutex<[HTTPReply]>([])
        let port = server.port
        onThreads(8) { _ in
            if let reply = try? RawHTTP.postJSON(port: port, "/v2/models/digits/infer", Digits.jsonRequest(row)) {
                replies.withLock { $0.append(reply) }
            }
        }
        let all = replies.withLock { $0 }
        #expect(all.count == 8)
        let rejected = all.filter { $0.status == 503 }
        #expect(!rejected.isEmpty, "statuses \(all.map(\.status))")
        #expect(all.allSatisfy { $0.status == 200 || $0.status == 503 }, "statuses \(all.map(\.status))")
        for reply in rejected {
            #expect(reply.headers["retry-after"] == "1")
            #expect(reply.text.contains("queue of model 'digits' is full"), "\(reply.text)")
        }
        let metrics = try RawHTTP.get(port: port, "/metrics").text
        #expect(metricValue(metrics, #"forklift_requests_total{model="digits",outcome="queue_full"}"#) == Double(rejected.count))
        let warnings = server.stderrText.split(separator: "\n").filter { $0.contains("infer failed") && $0.contains("status=503") }
        #expect(warnings.count == (failureLogInterval == 0 ? rejected.count : 1), "\(warnings)")
    }

    @Test func batchPastTheDeadlineAnswers504() throws {
        let resnet = TestPaths.root.appendingPathComponent(".cache/models/resnet18/model.onnx")
        try #require(FileManager.default.fileExists(atPath: resnet.path), "run scripts/make-models first")
        let server = try ServerProcess(model: resnet, arguments: ["--timeout", "0.001"], workers: 1)
        defer { server.stop() }
        let count = 3 * 224 * 224
        let header = Array(
            #"{"inputs": [{"name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32", "parameters": {"binary_data_size": \#(count * 4)}}]}"#
                .utf8)
        let reply = try RawHTTP.request(
            port: server.port, "POST", "/v2/models/resnet18/infer", headers: [("Inference-Header-Content-Length", String(header.count))],
            body: header + [UInt8](repeating: 0, count: count * 4))
        #expect(reply.status == 504, "\(reply.text)")
        #expect(reply.text.contains("deadline"), "\(reply.text)")
        // The killed worker is replaced and the server stays up.
        #expect(try RawHTTP.get(port: server.port, "/v2/health/live").status == 200)
    }
}
