import Foundation
import Synchronization
import Testing

@testable import ForkliftServer

/// JPEGs over HTTP: checked at the header by the server, decoded in the workers, classified.
/// The `colors` model (scripts/make-models) answers which channel is brightest on average;
/// the photos come from Debian's opencv-doc, which scripts/test installs.
@Suite(.serialized) struct ImageServingTests {
    static let colors = TestPaths.root.appendingPathComponent(".cache/models/colors")
    static let efficientNet = TestPaths.root.appendingPathComponent("models/efficientnet_lite0")
    static let photos = URL(fileURLWithPath: "/usr/share/doc/opencv-doc/examples/data")

    static func photo(_ name: String) throws -> [UInt8] {
        let url = photos.appendingPathComponent(name)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ServerStartError(description: "\(url.path) is missing: scripts/test installs Debian's opencv-doc")
        }
        return Array(data)
    }

    static func requireModel(_ folder: URL, madeBy script: String) throws {
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("model.onnx").path) else {
            throw ServerStartError(description: "\(folder.path) is missing: run \(script)")
        }
    }

    /// The same photo with everything after its first 1,000 bytes overwritten: the header still
    /// passes the server's check, the scan data does not decode.
    static func damaged(_ jpeg: [UInt8]) -> [UInt8] {
        var bytes = jpeg
        for index in 1000..<(bytes.count - 2) { bytes[index] = UInt8(truncatingIfNeeded: index &* 131) }
        return bytes
    }

    static func postJPEG(port: Int, model: String, _ jpeg: [UInt8], query: String = "") throws -> HTTPReply {
        try RawHTTP.request(
            port: port, "POST", "/v2/models/\(model)/infer\(query)", headers: [("Content-Type", "image/jpeg")], body: jpeg)
    }

    static func classes(_ reply: HTTPReply) throws -> [(label: String, score: Double)] {
        guard case .array(let entries)? = try JSONParser.parse(reply.body)["classification"] else {
            throw ServerStartError(description: "no classification in \(reply.text.prefix(300))")
        }
        return entries.compactMap { entry in
            guard case .string(let label)? = entry["label"] else { return nil }
            switch entry["score"] {
            case .double(let score)?: return (label, score)
            case .int(let score)?: return (label, Double(score))
            default: return nil
            }
        }
    }

    @Test func jpegBodyGetsTopKLabels() throws {
        try Self.requireModel(Self.colors, madeBy: "scripts/make-models")
        let server = try ServerProcess(model: Self.colors, workers: 1)
        defer { server.stop() }
        let reply = try Self.postJPEG(port: server.port, model: "colors", try Self.photo("orange.jpg"))
        #expect(reply.status == 200, "\(reply.text)")
        let classes = try Self.classes(reply)
        #expect(classes.map(\.label).first == "red")
        #expect(classes.count == 3, "k defaults to 5, and the model has 3 classes")
        #expect(abs(classes.map(\.score).reduce(0, +) - 1) < 1e-4, "softmax scores")
        #expect(zip(classes, classes.dropFirst()).allSatisfy { $0.score >= $1.score })
        let raw = try JSONParser.parse(reply.body)["outputs"]
        #expect(raw != nil, "the raw output tensor is in the answer too")
        let one = try Self.postJPEG(port: server.port, model: "colors", try Self.photo("orange.jpg"), query: "?k=1")
        #expect(try Self.classes(one).count == 1)
        let badK = try Self.postJPEG(port: server.port, model: "colors", try Self.photo("orange.jpg"), query: "?k=zero")
        #expect(badK.status == 400 && badK.text.contains("k='zero'"), "\(badK.text)")
    }

    /// The photo with a comment segment of `bytes` after its start-of-image marker: the same
    /// pixels in a larger file.
    static func padded(_ jpeg: [UInt8], by bytes: Int) -> [UInt8] {
        let length = bytes + 2
        let comment: [UInt8] = [0xFF, 0xFE, UInt8(length >> 8), UInt8(length & 0xFF)] + [UInt8](repeating: 0x20, count: bytes)
        return Array(jpeg.prefix(2)) + comment + jpeg.dropFirst(2)
    }

    /// A JPEG of 64 KB or more reaches the worker through its shared region, a smaller one
    /// through its socket; the same pixels give the same answer either way.
    @Test func largeJPEGsTravelThroughTheSharedRegion() throws {
        try Self.requireModel(Self.colors, madeBy: "scripts/make-models")
        let server = try ServerProcess(model: Self.colors, workers: 1)
        defer { server.stop() }
        let photo = try Self.photo("orange.jpg")
        let large = Self.padded(photo, by: 30_000)
        #expect(photo.count < 64 << 10 && large.count >= 64 << 10)
        let small = try Self.postJPEG(port: server.port, model: "colors", photo)
        let throughRegion = try Self.postJPEG(port: server.port, model: "colors", large)
        #expect(small.status == 200 && throughRegion.status == 200, "\(throughRegion.text.prefix(300))")
        #expect(throughRegion.text == small.text)
    }

    @Test func multipartUploadsAreClassified() throws {
        try Self.requireModel(Self.colors, madeBy: "scripts/make-models")
        let server = try ServerProcess(model: Self.colors, workers: 1)
        defer { server.stop() }
        let boundary = "forkliftTestBoundary7"
        func form(_ parts: [(headers: String, body: [UInt8])]) -> [UInt8] {
            var body: [UInt8] = []
            for part in parts { body += Array("--\(boundary)\r\n\(part.headers)\r\n\r\n".utf8) + part.body + Array("\r\n".utf8) }
            return body + Array("--\(boundary)--\r\n".utf8)
        }
        let headers = [("Content-Type", "multipart/form-data; boundary=\(boundary)")]
        let upload = form([
            (#"Content-Disposition: form-data; name="note""#, Array("first a text field".utf8)),
            (
                #"Content-Disposition: form-data; name="image"; filename="orange.jpg"\#r\#nContent-Type: image/jpeg"#,
                try Self.photo("orange.jpg")
            ),
        ])
        let reply = try RawHTTP.request(port: server.port, "POST", "/v2/models/colors/infer?k=2", headers: headers, body: upload)
        #expect(reply.status == 200, "\(reply.text)")
        #expect(try Self.classes(reply).map(\.label).first == "red")
        let textOnly = form([(#"Content-Disposition: form-data; name="note""#, Array("no file".utf8))])
        let missing = try RawHTTP.request(port: server.port, "POST", "/v2/models/colors/infer", headers: headers, body: textOnly)
        #expect(missing.status == 400 && missing.text.contains("no file part"), "\(missing.text)")
        let noBoundary = try RawHTTP.request(
            port: server.port, "POST", "/v2/models/colors/infer", headers: [("Content-Type", "multipart/form-data")], body: upload)
        #expect(noBoundary.status == 400 && noBoundary.text.contains("boundary"), "\(noBoundary.text)")
    }

    @Test func theHTTPLayerChecksHeadersAndLimits() throws {
        try Self.requireModel(Self.colors, madeBy: "scripts/make-models")
        let server = try ServerProcess(model: Self.colors, arguments: ["--max-image-pixels", "10000"], workers: 1)
        defer { server.stop() }
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + [UInt8](repeating: 0, count: 64)
        let notJPEG = try Self.postJPEG(port: server.port, model: "colors", png)
        #expect(notJPEG.status == 400 && notJPEG.text.contains("not a JPEG"), "\(notJPEG.text)")
        let tooLarge = try Self.postJPEG(port: server.port, model: "colors", try Self.photo("orange.jpg"))
        #expect(tooLarge.status == 400 && tooLarge.text.contains("exceeds the limit of 10000 pixels"), "\(tooLarge.text)")
        let metrics = try RawHTTP.get(port: server.port, "/metrics").text
        #expect((metricValue(metrics, #"forklift_batch_size_count{model="colors"}"#) ?? 0) == 0, "no bad image reached a worker")
    }

    @Test func aBadImageFailsAloneInItsBatch() throws {
        try Self.requireModel(Self.colors, madeBy: "scripts/make-models")
        // One worker and a hold-back, so that the concurrent requests share batches.
        let server = try ServerProcess(model: Self.colors, arguments: ["--max-queue-delay", "300"], workers: 1)
        defer { server.stop() }
        let good = try Self.photo("orange.jpg")
        let bad = Self.damaged(good)
        let replies = Mutex<[Int: HTTPReply]>([:])
        let port = server.port
        onThreads(8) { index in
            let reply = try? Self.postJPEG(port: port, model: "colors", index % 4 == 1 ? bad : good)
            if let reply { replies.withLock { $0[index] = reply } }
        }
        let all = replies.withLock { $0 }
        #expect(all.count == 8)
        for (index, reply) in all.sorted(by: { $0.key < $1.key }) {
            if index % 4 == 1 {
                // Decoded, and refused, by the worker: the header passed the HTTP layer's check.
                #expect(reply.status == 400 && reply.text.contains("input 'input': corrupt JPEG"), "request \(index): \(reply.text)")
            } else {
                #expect(reply.status == 200, "request \(index): \(reply.text)")
                #expect(try Self.classes(reply).first?.label == "red")
            }
        }
        let metrics = try RawHTTP.get(port: server.port, "/metrics").text
        let batches = metricValue(metrics, #"forklift_batch_size_count{model="colors"}"#) ?? 0
        let samples = metricValue(metrics, #"forklift_batch_size_sum{model="colors"}"#) ?? 0
        #expect(batches >= 1 && samples / batches > 1, "requests were batched: \(samples) samples in \(batches) batches")
        #expect(!metrics.contains("forklift_worker_restarts_total{"), "no worker was lost")
    }

    @Test func bytesInputsAndTheClassificationExtension() throws {
        try Self.requireModel(Self.colors, madeBy: "scripts/make-models")
        let server = try ServerProcess(model: Self.colors, workers: 1)
        defer { server.stop() }
        let photo = try Self.photo("orange.jpg")
        var data: [UInt8] = []
        for _ in 0..<2 {
            withUnsafeBytes(of: UInt32(photo.count).littleEndian) { data += $0 }
            data += photo
        }
        let header = Array(
            #"{"inputs": [{"name": "input", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": \#(data.count)}}], "outputs": [{"name": "logits", "parameters": {"classification": 2}}]}"#
                .utf8)
        let reply = try RawHTTP.request(
            port: server.port, "POST", "/v2/models/colors/infer", headers: [("Inference-Header-Content-Length", String(header.count))],
            body: header + data)
        #expect(reply.status == 200, "\(reply.text)")
        let json = try JSONParser.parse(reply.body)
        guard case .array(let outputs)? = json["outputs"], let logits = outputs.first else {
            Issue.record("no outputs in \(reply.text)")
            return
        }
        #expect(logits["datatype"] == .string("BYTES"))
        #expect(logits["shape"] == .array([.int(2), .int(2)]))
        guard case .array(let strings)? = logits["data"] else {
            Issue.record("no data in \(reply.text)")
            return
        }
        #expect(strings.count == 4)
        if case .string(let first)? = strings.first {
            #expect(first.hasSuffix(":0:red"), "Triton's value:index:label, got \(first)")
        }
        let wrongCount = Array(
            #"{"inputs": [{"name": "input", "shape": [3], "datatype": "BYTES", "parameters": {"binary_data_size": \#(data.count)}}]}"#.utf8)
        let mismatch = try RawHTTP.request(
            port: server.port, "POST", "/v2/models/colors/infer",
            headers: [("Inference-Header-Content-Length", String(wrongCount.count))], body: wrongCount + data)
        #expect(mismatch.status == 400 && mismatch.text.contains("says 3 images, the BYTES data holds 2"), "\(mismatch.text)")
    }

    @Test func aModelWithoutAnImageConfigRefusesJPEGs() throws {
        let server = try ServerProcess(workers: 1)
        defer { server.stop() }
        let reply = try Self.postJPEG(port: server.port, model: "digits", try Self.photo("orange.jpg"))
        #expect(reply.status == 415 && reply.text.contains("takes no images"), "\(reply.text)")
    }

    @Test func efficientNetNamesTheSquirrel() throws {
        try Self.requireModel(Self.efficientNet, madeBy: "scripts/fetch-models")
        let server = try ServerProcess(model: Self.efficientNet, workers: 1)
        defer { server.stop() }
        let squirrel = try Self.postJPEG(port: server.port, model: "efficientnet_lite0", try Self.photo("squirrel_cls.jpg"))
        #expect(squirrel.status == 200, "\(squirrel.text)")
        #expect(try Self.classes(squirrel).first?.label.hasPrefix("fox squirrel") == true, "\(squirrel.text.prefix(300))")
        let orange = try Self.postJPEG(port: server.port, model: "efficientnet_lite0", try Self.photo("orange.jpg"))
        #expect(try Self.classes(orange).first?.label == "orange", "\(orange.text.prefix(300))")
    }
}
