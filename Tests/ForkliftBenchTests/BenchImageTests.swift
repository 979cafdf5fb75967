import ForkliftBench
import Foundation
import NIOPosix
import Testing

/// `forklift bench --input DIR_OF_JPEGS` against a real `forklift serve` of an image model.
@Suite(.serialized) struct BenchImageTests {
    /// The server's batch totals for `model`, read from its /metrics.
    static func metrics(_ server: ForkliftServeProcess, model: String) throws -> ForkliftMetricsSample {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let fetch = HTTPFetch(target: try BenchTarget(parsing: server.url), group: group)
        let answer = try fetch.get("/metrics")
        #expect(answer.status == 200)
        return ForkliftMetricsSample(exposition: answer.text, model: model)
    }

    static func jpegCount(in folder: URL) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.lowercased().hasSuffix(".jpg") || $0.lowercased().hasSuffix(".jpeg") }.count
    }

    @Test func folderOfPhotosFeedsTheImageModelInBatches() throws {
        // The folder also holds PNGs, text and XML: only the JPEGs are sent.
        #expect(Self.jpegCount(in: BenchPaths.photos) >= 20, "opencv-doc's sample photos")
        let server = try ForkliftServeProcess(model: BenchPaths.colors, workers: 2)
        defer { server.stop() }
        let before = try Self.metrics(server, model: "colors")
        let folder = BenchPaths.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let json = folder.appendingPathComponent("images.json")
        let run = try runBench([
            server.url, "--model", "colors", "--input", BenchPaths.photos.path, "--batch", "3", "--concurrency", "1,4",
            "--requests", "30", "--warmup", "0", "--json", json.path,
        ])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let object = try run.json(json)
        #expect(object["batch"] as? Int == 3)
        let steps = try #require(object["steps"] as? [[String: Any]])
        #expect(steps.count == 2)
        for step in steps {
            #expect(step["succeeded"] as? Int == 30, "every request of \(step["label"] ?? "?") succeeds: \(step["errors"] ?? "")")
            #expect(step["samples"] as? Int == 90, "three photos per request")
            let side = try #require(step["server_side"] as? [String: Any])
            #expect((side["mean_batch_size"] as? Double ?? 0) >= 3, "a batch holds at least one request's three photos")
        }
        // The server's own counters: every photo went through the image model's batches.
        let after = try Self.metrics(server, model: "colors")
        #expect(after.batchCount > before.batchCount)
        #expect(after.batchSizeSum - before.batchSizeSum == 180, "2 steps × 30 requests × 3 photos")
    }

    @Test func aCorruptPhotoIsCountedAsTheServersError() throws {
        let server = try ForkliftServeProcess(model: BenchPaths.colors)
        defer { server.stop() }
        let folder = BenchPaths.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        // A JPEG cut after its first kilobyte: the header is fine, the data is not.
        let photo = try Data(contentsOf: BenchPaths.photos.appendingPathComponent("fruits.jpg"))
        try photo.prefix(1024).write(to: folder.appendingPathComponent("cut.jpg"))
        let run = try runBench([
            server.url, "--model", "colors", "--input", folder.path, "--concurrency", "1", "--requests", "5", "--warmup", "0",
        ])
        #expect(run.status == 1, "every request failed")
        #expect(run.stdout.contains("all 5 requests failed: HTTP 4"), "\(run.stdout)")
    }
}
