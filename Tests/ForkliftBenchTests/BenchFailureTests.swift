import Foundation
import Testing

/// `forklift bench` against servers that fail, hang, are absent or are not V2, and against stubs
/// that record when requests arrive.
@Suite(.serialized) final class BenchFailureTests {
    let folder = BenchPaths.scratch()

    deinit { try? FileManager.default.removeItem(at: folder) }

    /// Runs `forklift bench STUB_URL --endpoint /predict --body FILE ARGS` against a fresh stub server.
    func runStub(_ behavior: StubServer.Behavior, _ arguments: [String]) throws -> BenchRun {
        try runStubRecording(behavior, arguments).run
    }

    /// `runStub`, and when each request reached the stub (monotonic nanoseconds).
    func runStubRecording(_ behavior: StubServer.Behavior, _ arguments: [String]) throws -> (run: BenchRun, arrivals: [UInt64]) {
        let stub = try StubServer(behavior)
        defer { stub.stop() }
        let body = folder.appendingPathComponent("body.json")
        try Data("[1]".utf8).write(to: body)
        let run = try runBench([stub.url, "--endpoint", "/predict", "--body", body.path] + arguments)
        return (run, stub.arrivals.all)
    }

    /// Each client pauses between a response and its next request, on a keep-alive connection
    /// (the trickle stub) and on one the server closes after each answer. A pause can only come
    /// out longer on a busy machine, never shorter, so the gaps are checked from below.
    @Test(arguments: [StubServer.Behavior.trickle, .chunkedThenClose])
    func thinkTimeSpacesEachClientsRequests(behavior: StubServer.Behavior) throws {
        let json = folder.appendingPathComponent("think-\(behavior).json")
        let (run, arrivals) = try runStubRecording(
            behavior, ["--concurrency", "1", "--requests", "4", "--warmup", "0", "--think-time", "150", "--json", json.path])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains("150 ms think time per client"), "\(run.stdout)")
        let object = try run.json(json)
        #expect(object["think_time_ms"] as? Double == 150)
        #expect((object["steps"] as? [[String: Any]])?.first?["succeeded"] as? Int == 4)
        try #require(arrivals.count == 4, "\(arrivals)")
        for (earlier, later) in zip(arrivals, arrivals.dropFirst()) {
            #expect(later - earlier >= 150_000_000, "gap \(Double(later - earlier) / 1e6) ms")
        }
    }

    @Test func serverErrorsAreCountedAndTheRunExitsNonZero() throws {
        let json = folder.appendingPathComponent("fail.json")
        let run = try runStub(
            .failing,
            [
                "--concurrency", "3", "--requests", "30", "--warmup", "0",
                "--json", json.path,
            ])
        #expect(run.status == 1)
        #expect(run.stdout.contains("all 30 requests failed: HTTP 500 ×30 (first: boom: the stub always fails)"), "\(run.stdout)")
        let step = try #require((try run.json(json)["steps"] as? [[String: Any]])?.first)
        #expect(step["failed"] as? Int == 30)
        #expect(step["latency_ms"] is NSNull)
    }

    @Test func chunkedAnswersOnClosingConnectionsAllCount() throws {
        let json = folder.appendingPathComponent("close.json")
        let run = try runStub(.chunkedThenClose, ["--concurrency", "3", "--requests", "40", "--warmup", "0", "--json", json.path])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let step = try #require((try run.json(json)["steps"] as? [[String: Any]])?.first)
        #expect(step["succeeded"] as? Int == 40, "every request gets its own connection and its answer: \(step["errors"] ?? "")")
        #expect(step["failed"] as? Int == 0)
    }

    @Test func answersSplitAcrossReadsAllCount() throws {
        let json = folder.appendingPathComponent("trickle.json")
        let run = try runStub(.trickle, ["--concurrency", "2", "--requests", "30", "--warmup", "0", "--json", json.path])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let step = try #require((try run.json(json)["steps"] as? [[String: Any]])?.first)
        #expect(step["succeeded"] as? Int == 30, "each answer is put together from three reads: \(step["errors"] ?? "")")
        let latency = try #require(step["latency_ms"] as? [String: Double])
        #expect((latency["p50"] ?? 0) >= 6, "the last piece comes 6 ms after the first")
    }

    @Test func hangingRequestsTimeOutAndTheRunEnds() throws {
        let json = folder.appendingPathComponent("hang.json")
        let run = try runStub(
            .hanging,
            [
                "--concurrency", "2", "--duration", "1", "--warmup", "0",
                "--timeout", "0.4", "--json", json.path,
            ])
        #expect(run.status == 1)
        #expect(run.stdout.contains("timeout ×"), "\(run.stdout)")
        let step = try #require((try run.json(json)["steps"] as? [[String: Any]])?.first)
        let errors = try #require(step["errors"] as? [[String: Any]])
        #expect(errors.first?["kind"] as? String == "timeout")
        #expect((errors.first?["count"] as? Int ?? 0) >= 2, "each of 2 clients timed out at least once")
        #expect(step["succeeded"] as? Int == 0)
    }

    @Test func openLoopAgainstAHangingServerCountsWhatWasNotSent() throws {
        let json = folder.appendingPathComponent("open.json")
        let run = try runStub(
            .hanging,
            [
                "--rate", "100", "--duration", "1", "--warmup", "0",
                "--timeout", "0.5", "--max-connections", "4", "--json", json.path,
            ])
        #expect(run.status == 1)
        let step = try #require((try run.json(json)["steps"] as? [[String: Any]])?.first)
        let errors = try #require(step["errors"] as? [[String: Any]])
        let kinds = Set(errors.compactMap { $0["kind"] as? String })
        #expect(kinds.contains("timeout") && kinds.contains("not sent"), "\(kinds)")
        // Every intended arrival is accounted for: about 100 in one second.
        let total = errors.reduce(0) { $0 + ($1["count"] as? Int ?? 0) }
        #expect(total > 50 && total < 200, "\(total)")
    }

    @Test func unreachableServerIsOneLineAndExitTwo() throws {
        // Port 1 on loopback: nothing listens there.
        let run = try runBench(["http://127.0.0.1:1", "--model", "digits"])
        #expect(run.status == 2)
        #expect(run.stderr.split(separator: "\n").count == 1)
        #expect(run.stderr.contains("cannot reach http://127.0.0.1:1") && run.stderr.contains("connection refused"), "\(run.stderr)")
    }

    /// Numbers that would overflow the integers they become (or are not whole where they must
    /// be) are usage errors that name the flag, not crashes.
    @Test(arguments: [
        (["--concurrency", "1e30"], "--concurrency takes whole numbers"),
        (["--concurrency", "4,1.5"], "--concurrency takes whole numbers"),
        (["--rate", "1e-300"], "--rate takes requests per second"),
        (["--timeout", "1e30"], "--timeout must be positive and at most 1e9 seconds"),
        (["--duration", "inf"], "--duration must be positive"),
        (["--warmup", "nan"], "--warmup must be at least 0"),
        (["--rate", "5", "--think-time", "10"], "--think-time applies to the closed loop"),
    ])
    func outOfRangeNumbersAreUsageErrors(flags: [String], message: String) throws {
        let run = try runBench(["http://127.0.0.1:1", "--model", "digits"] + flags)
        #expect(run.status == 64, "\(run.stderr)")
        #expect(run.stderr.contains(message), "\(run.stderr)")
    }

    @Test func wrongURLsAreOneLineAndExitTwo() throws {
        let notURL = try runBench(["ftp://127.0.0.1:8080", "--model", "digits"])
        #expect(notURL.status == 2)
        #expect(notURL.stderr.contains("only http://"))
        #expect(notURL.stderr.split(separator: "\n").count == 1)

        let badPort = try runBench(["http://127.0.0.1:notaport", "--model", "digits"])
        #expect(badPort.status == 2)
        #expect(badPort.stderr.contains("'notaport' is not a port"))

        let stub = try StubServer(.failing)
        defer { stub.stop() }
        let notV2 = try runBench([stub.url, "--model", "digits"])
        #expect(notV2.status == 2)
        #expect(notV2.stderr.contains("does not speak the V2 inference protocol"), "\(notV2.stderr)")
        #expect(notV2.stderr.split(separator: "\n").count == 1)
    }
}
