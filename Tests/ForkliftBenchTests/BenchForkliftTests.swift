import Foundation
import FoundationXML
import Testing

/// `forklift bench` against a real `forklift serve` of the digits model.
@Suite(.serialized) struct BenchForkliftTests {
    /// Fields every step of the JSON output has.
    static let stepFields = [
        "label", "seconds", "requests", "succeeded", "failed", "samples", "requests_per_second", "samples_per_second",
        "client_cpu_seconds", "client_cpu_cores", "interrupted", "connections", "errors", "latency_ms", "server_side",
    ]

    @Test func closedLoopSweepCountsAddUpAndWritesJSONAndSVG() throws {
        let server = try ForkliftServeProcess()
        defer { server.stop() }
        let folder = BenchPaths.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let json = folder.appendingPathComponent("run.json")
        let svg = folder.appendingPathComponent("run.svg")
        let run = try runBench([
            server.url, "--model", "digits", "--concurrency", "1,4", "--requests", "300", "--warmup", "0.2", "--batch", "2",
            "--json", json.path, "--plot", svg.path,
        ])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("| c=1 |") && run.stdout.contains("| c=4 |"))

        let object = try run.json(json)
        for key in ["url", "model", "endpoint", "batch", "binary", "client_threads", "interrupted", "server", "steps", "max_batch_size"] {
            #expect(object[key] != nil, "missing \(key)")
        }
        #expect((object["server"] as? [String: Any])?["name"] as? String == "forklift")
        let steps = try #require(object["steps"] as? [[String: Any]])
        #expect(steps.count == 2)
        for step in steps {
            for field in Self.stepFields { #expect(step[field] != nil, "step lacks \(field)") }
            let requests = step["requests"] as? Int ?? -1
            let succeeded = step["succeeded"] as? Int ?? -1
            let errors = (step["errors"] as? [[String: Any]]) ?? []
            let failed = errors.reduce(0) { $0 + ($1["count"] as? Int ?? 0) }
            #expect(requests == 300, "--requests 300 sends exactly 300")
            #expect(succeeded + failed == requests)
            #expect(step["failed"] as? Int == failed)
            #expect(step["samples"] as? Int == succeeded * 2, "two samples per request")
            let latency = try #require(step["latency_ms"] as? [String: Double])
            let ordered = ["p50", "p90", "p99", "p99_9", "max"].compactMap { latency[$0] }
            #expect(ordered.count == 5)
            #expect(ordered == ordered.sorted(), "percentiles must be ordered: \(ordered)")
            #expect(ordered[0] > 0)
            let side = try #require(step["server_side"] as? [String: Any])
            let meanBatch = try #require(side["mean_batch_size"] as? Double)
            #expect(meanBatch >= 2, "each request carries 2 samples, so batches hold at least 2")
            #expect(side["mean_queue_ms"] is Double)
            // Forklift sends Server-Timing on every answer: each latency less its own compute time.
            let overCompute = try #require(step["latency_over_compute_ms"] as? [String: Double])
            let overP50 = try #require(overCompute["p50"])
            #expect(overP50 > 0 && overP50 <= latency["p50"] ?? 0, "\(overP50) against p50 \(latency["p50"] ?? 0)")
        }

        let document = try XMLDocument(contentsOf: svg, options: [])
        let root = try #require(document.rootElement())
        #expect(root.name == "svg")
        let lines = Self.elements(named: "polyline", in: root)
        let ids = Set(lines.compactMap { Self.attribute("id", of: $0) })
        #expect(ids.isSuperset(of: ["throughput-0", "p50-0", "p99-0"]), "\(ids)")
        let throughput = try #require(lines.first { Self.attribute("id", of: $0) == "throughput-0" })
        #expect(Self.attribute("points", of: throughput)?.split(separator: " ").count == 2, "one point per step")
        let texts = Self.elements(named: "text", in: root).compactMap(\.stringValue)
        #expect(texts.contains("throughput (requests/s)") && texts.contains { $0.hasPrefix("latency (ms") })
        #expect(texts.contains { $0.contains("p99") }, "the legend names the p99 series")
    }

    /// Every element below `root` with this local name (the SVG namespace aside).
    static func elements(named name: String, in root: XMLElement) -> [XMLElement] {
        var found: [XMLElement] = []
        var stack = [root]
        while let element = stack.popLast() {
            if element.localName == name || element.name == name { found.append(element) }
            stack += (element.children ?? []).compactMap { $0 as? XMLElement }
        }
        return found
    }

    static func attribute(_ name: String, of element: XMLElement) -> String? {
        element.attributes?.first { $0.localName == name || $0.name == name }?.stringValue
    }

    @Test func openLoopJSONTensorsAndComputeComparison() throws {
        let server = try ForkliftServeProcess()
        defer { server.stop() }
        let folder = BenchPaths.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let json = folder.appendingPathComponent("open.json")
        let run = try runBench([
            server.url, "--model", "digits", "--rate", "200", "--duration", "1", "--warmup", "0.3", "--no-binary",
            "--compare-compute", BenchPaths.digits.appendingPathComponent("model.onnx").path, "--json", json.path,
        ])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("of compute-only at batch"))
        let object = try run.json(json)
        #expect(object["binary"] as? Bool == false)
        let step = try #require((object["steps"] as? [[String: Any]])?.first)
        #expect(step["rate"] as? Double == 200)
        let succeeded = step["succeeded"] as? Int ?? 0
        #expect(succeeded > 50, "about 200 requests in a second")
        #expect(succeeded + (step["failed"] as? Int ?? -1) == step["requests"] as? Int)
        let efficiency = try #require(step["efficiency"] as? Double)
        #expect(efficiency > 0 && efficiency < 1, "a loaded server cannot beat compute-only")
        let compute = try #require(object["compute"] as? [String: Any])
        #expect((compute["samples_per_second"] as? [[String: Any]])?.isEmpty == false)
    }

    @Test func errorsAreCountedByStatusWithTheFirstMessage() throws {
        let server = try ForkliftServeProcess()
        defer { server.stop() }
        let folder = BenchPaths.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        // Three numbers where the model takes 64: the server answers 400 to every request.
        let input = folder.appendingPathComponent("short.json")
        try Data("[[1, 2, 3]]".utf8).write(to: input)
        let json = folder.appendingPathComponent("errors.json")
        let run = try runBench([
            server.url, "--model", "digits", "--concurrency", "2", "--requests", "40", "--warmup", "0", "--input", input.path,
            "--json", json.path,
        ])
        #expect(run.status == 1, "every request failed")
        #expect(run.stdout.contains("all 40 requests failed: HTTP 400 ×40"), "\(run.stdout)")
        #expect(run.stdout.contains("float_input"), "the server's message names the input")
        let step = try #require((try run.json(json)["steps"] as? [[String: Any]])?.first)
        let errors = try #require(step["errors"] as? [[String: Any]])
        #expect(errors.count == 1)
        #expect(errors.first?["kind"] as? String == "HTTP 400")
        #expect(errors.first?["count"] as? Int == 40)
        #expect(step["succeeded"] as? Int == 0)
    }

    @Test func healthEndpointAndCtrlCPrintsTheStepsDone() throws {
        let server = try ForkliftServeProcess()
        defer { server.stop() }
        let run = try runBench(
            [server.url, "--endpoint", "health", "--concurrency", "2,4", "--duration", "1.5", "--warmup", "0"], interruptAfter: 2.5)
        #expect(run.status == 130, "\(run.stderr)")
        #expect(run.stdout.contains("| c=2 |"), "the finished step is printed")
        #expect(run.stdout.contains("interrupted"))
    }

    @Test func unknownModelIsOneLineAndExitTwo() throws {
        let server = try ForkliftServeProcess()
        defer { server.stop() }
        let run = try runBench([server.url, "--model", "no_such_model", "--requests", "1"])
        #expect(run.status == 2)
        let lines = run.stderr.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(run.stderr.contains("no model 'no_such_model'"))
        #expect(run.stdout.isEmpty)
    }
}
