import CZlib
import Foundation
import Testing

@testable import ForkliftServer

/// `forklift serve` as a real process on 127.0.0.1: every endpoint, both infer encodings, and each
/// validation error with its status and message.
@Suite(.serialized) struct ServerEndpointTests {
    @Test func healthMetadataAndConfig() throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let port = server.port
        #expect(try RawHTTP.get(port: port, "/v2/health/live").status == 200)
        #expect(try RawHTTP.get(port: port, "/v2/health/ready").status == 200)
        #expect(try RawHTTP.get(port: port, "/v2/models/digits/ready").status == 200)
        #expect(try RawHTTP.get(port: port, "/v2/models/digits/versions/1/ready").status == 200)
        #expect(try RawHTTP.get(port: port, "/v2/models/nope/ready").status == 404)

        let serverMeta = try JSONParser.parse(RawHTTP.get(port: port, "/v2").body)
        #expect(serverMeta["name"] == .string("forklift"))
        guard case .array(let extensions)? = serverMeta["extensions"] else { throw ServerStartError(description: "no extensions") }
        #expect(extensions.contains(.string("binary_tensor_data")))

        for path in ["/v2/models/digits", "/v2/models/digits/versions/1"] {
            let reply = try RawHTTP.get(port: port, path)
            #expect(reply.status == 200)
            let meta = try JSONParser.parse(reply.body)
            #expect(meta["name"] == .string("digits"))
            #expect(meta["versions"] == .array([.string("1")]))
            #expect(
                meta["inputs"]
                    == .array([
                        .object(["name": .string("float_input"), "datatype": .string("FP32"), "shape": .array([.int(-1), .int(64)])])
                    ]))
            #expect(meta["outputs"]?.kind == "an array")
        }
        let missingVersion = try RawHTTP.get(port: port, "/v2/models/digits/versions/7")
        #expect(missingVersion.status == 404)
        #expect(missingVersion.text.contains("has no version '7'"))
        let unknown = try RawHTTP.get(port: port, "/v2/models/nope")
        #expect(unknown.status == 404)
        #expect(unknown.text == #"{"error":"unknown model 'nope'"}"#)

        let config = try JSONParser.parse(RawHTTP.get(port: port, "/v2/models/digits/config").body)
        #expect(config["name"] == .string("digits"))
        #expect(config["max_batch_size"] == .int(32))
        #expect(
            config["input"]
                == .array([.object(["name": .string("float_input"), "data_type": .string("TYPE_FP32"), "dims": .array([.int(64)])])]))
        guard case .array(let outputs)? = config["output"] else { throw ServerStartError(description: "no output") }
        #expect(
            outputs.contains(.object(["name": .string("probabilities"), "data_type": .string("TYPE_FP32"), "dims": .array([.int(10)])])))
        #expect(outputs.contains(.object(["name": .string("label"), "data_type": .string("TYPE_INT64"), "dims": .array([])])))
        #expect(config["dynamic_batching"] != nil)
        #expect(try RawHTTP.get(port: port, "/v2/models/nope/config").status == 404)
        #expect(server.output.contains { $0.contains("model digits (version 1)") })
        #expect(server.stop() == 0)
    }

    /// A binary tensor of 100 KB arrives in several reads; its bytes reach the worker in those
    /// pieces, and every row gets the engine's answer.
    @Test func largeBinaryInputsMatchTheEngine() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("forklift-large-\(UUID().uuidString)/digits")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        try FileManager.default.createSymbolicLink(
            at: folder.appendingPathComponent("model.onnx"), withDestinationURL: TestPaths.digits.appendingPathComponent("model.onnx"))
        try Data(#"{"max_batch_size": 512}"#.utf8).write(to: folder.appendingPathComponent("config.json"))
        let server = try ServerProcess(model: folder)
        defer { server.stop() }
        let reference = try Digits.Reference()
        let all = try Digits.rows()
        let rows = (0..<400).map { all[$0 % all.count] }
        let values = rows.flatMap { $0 }
        let header = Array(
            #"{"inputs": [{"name": "float_input", "shape": [\#(rows.count), 64], "datatype": "FP32", "parameters": {"binary_data_size": \#(values.count * 4)}}], "outputs": [{"name": "probabilities", "parameters": {"binary_data": true}}]}"#
                .utf8)
        let body = header + values.withUnsafeBytes { Array($0) }
        let reply = try RawHTTP.request(
            port: server.port, "POST", "/v2/models/digits/infer", headers: [("Inference-Header-Content-Length", String(header.count))],
            body: body)
        #expect(reply.status == 200, "\(reply.text)")
        let expected = try rows.flatMap { try reference.run($0).probabilities }
        #expect(Digits.close(try Digits.parseBinary(reply).probabilities, expected))
    }

    @Test func jsonAndBinaryInferMatchTheEngine() throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let reference = try Digits.Reference()
        let rows = try Digits.rows()
        for (index, row) in rows.prefix(10).enumerated() {
            let expected = try reference.run(row)
            // JSON, no Content-Type, with an id to echo.
            let reply = try RawHTTP.postJSON(
                port: server.port, "/v2/models/digits/infer", Digits.jsonRequest(row, id: "req-\(index)"), headers: [])
            #expect(reply.status == 200, "\(reply.text)")
            #expect(reply.headers["content-type"] == "application/json")
            let json = try Digits.parseJSON(reply)
            #expect(json.json["id"] == .string("req-\(index)"))
            #expect(json.json["model_name"] == .string("digits"))
            #expect(Digits.close(json.probabilities, expected.probabilities), "\(json.probabilities) vs \(expected.probabilities)")
            #expect(json.label == expected.label)
            // Triton binary tensors in and out, through the versioned route.
            let (headers, body) = Digits.binaryRequest(row)
            let binary = try RawHTTP.request(port: server.port, "POST", "/v2/models/digits/versions/1/infer", headers: headers, body: body)
            #expect(binary.status == 200, "\(binary.text)")
            let timing = try #require(binary.headers["server-timing"])
            #expect(
                timing.wholeMatch(of: /queue;dur=\d+\.\d{3}, compute;dur=\d+\.\d{3}/) != nil && !timing.hasSuffix("compute;dur=0.000"),
                "Server-Timing: \(timing)")
            let decoded = try Digits.parseBinary(binary)
            #expect(Digits.close(decoded.probabilities, expected.probabilities))
            #expect(decoded.label == expected.label)
        }
        // Nested data and one requested output.
        let row = rows[0]
        let nested = "[[" + row.map { "\($0)" }.joined(separator: ",") + "]]"
        let selective = try RawHTTP.postJSON(
            port: server.port, "/v2/models/digits/infer",
            #"{"inputs": [{"name": "float_input", "shape": [1, 64], "datatype": "FP32", "data": \#(nested)}], "outputs": [{"name": "label"}]}"#
        )
        #expect(selective.status == 200, "\(selective.text)")
        guard case .array(let outputs)? = try JSONParser.parse(selective.body)["outputs"] else {
            throw ServerStartError(description: "no outputs")
        }
        #expect(outputs.count == 1 && outputs[0]["name"] == .string("label"))
        // A batch of 4 in one request.
        let four = rows[0..<4].flatMap { $0 }.map { "\($0)" }.joined(separator: ",")
        let batch = try RawHTTP.postJSON(
            port: server.port, "/v2/models/digits/infer",
            #"{"inputs": [{"name": "float_input", "shape": [4, 64], "datatype": "FP32", "data": [\#(four)]}]}"#)
        #expect(batch.status == 200, "\(batch.text)")
        #expect(try Digits.parseJSON(batch).probabilities.count == 40)
        // Bodies over 256 KiB are decoded off the event loop: padded with JSON whitespace, the
        // same request gives the same answer, and a broken one the same error.
        let padding = String(repeating: " ", count: 300_000)
        let padded = try RawHTTP.postJSON(port: server.port, "/v2/models/digits/infer", padding + Digits.jsonRequest(rows[0]) + padding)
        #expect(padded.status == 200, "\(padded.text)")
        #expect(Digits.close(try Digits.parseJSON(padded).probabilities, try reference.run(rows[0]).probabilities))
        let broken = try RawHTTP.postJSON(port: server.port, "/v2/models/digits/infer", padding + "{\"inputs\": [")
        #expect(broken.status == 400 && broken.text.contains("invalid JSON"), "\(broken.text)")
    }

    /// Requests pipelined on one connection are answered in order, infer (which the pipeline's
    /// infer handler serves) mixed with requests for Hummingbird's router, and an infer request
    /// answered before its body was read (413) leaves the connection usable.
    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let server = try ServerProcess(arguments: ["--max-body", "20000"])
        defer { server.stop() }
        let reference = try Digits.Reference()
        let rows = try Digits.rows()
        let binary = Digits.binaryRequest(rows[1])
        let messages: [[UInt8]] = [
            RawHTTP.message(
                "POST", "/v2/models/digits/infer", headers: [("Content-Type", "application/json")],
                body: Array(Digits.jsonRequest(rows[0], id: "first").utf8)),
            RawHTTP.message("GET", "/v2/models/nope/ready"),
            RawHTTP.message("POST", "/v2/models/digits/infer", headers: binary.headers, body: binary.body),
            RawHTTP.message("POST", "/v2/models/digits/infer", body: [UInt8](repeating: 32, count: 30000)),
            RawHTTP.message("GET", "/v2/health/live"),
            RawHTTP.message("POST", "/v2/models/nope/infer", body: Array("{}".utf8)),
            RawHTTP.message("GET", "/v2/models/digits"),
            RawHTTP.message("POST", "/v2/models/digits/versions/1/infer", body: Array(Digits.jsonRequest(rows[2], id: "last").utf8)),
        ]
        let replies = try RawHTTP.pipelined(port: server.port, messages)
        #expect(replies.map(\.status) == [200, 404, 200, 413, 200, 404, 200, 200], "\(replies.map(\.text))")
        let first = try Digits.parseJSON(replies[0])
        #expect(first.json["id"] == .string("first"))
        #expect(Digits.close(first.probabilities, try reference.run(rows[0]).probabilities))
        #expect(Digits.close(try Digits.parseBinary(replies[2]).probabilities, try reference.run(rows[1]).probabilities))
        #expect(replies[3].text.contains("--max-body"), "\(replies[3].text)")
        #expect(replies[5].text.contains("unknown model 'nope'"))
        #expect(try JSONParser.parse(replies[6].body)["name"] == .string("digits"))
        let last = try Digits.parseJSON(replies[7])
        #expect(last.json["id"] == .string("last"))
        #expect(Digits.close(last.probabilities, try reference.run(rows[2]).probabilities))
        for reply in replies {
            #expect(reply.headers["server"] == "forklift" && reply.headers["date"]?.hasSuffix(" GMT") == true)
        }
        // A chunked body (no Content-Length) that grows past --max-body is refused as it arrives,
        // and the rest of it is read and dropped, so the next request on the connection works.
        let chunk = "1388\r\n" + String(repeating: " ", count: 5000) + "\r\n"
        let chunked = Array(
            ("POST /v2/models/digits/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                + String(repeating: chunk, count: 5) + "0\r\n\r\n").utf8)
        let afterChunked = try RawHTTP.pipelined(port: server.port, [chunked, RawHTTP.message("GET", "/v2/health/live")])
        #expect(afterChunked.map(\.status) == [413, 200])
        #expect(afterChunked[0].text.contains("exceeds the limit (--max-body) of 20000 bytes"), "\(afterChunked[0].text)")
        // A client that shuts its sending side after its requests still gets every answer.
        for order in [[0, 4], [4, 0], [0]] {
            let halfClosed = try RawHTTP.pipelined(port: server.port, order.map { messages[$0] }, halfClose: true)
            #expect(halfClosed.map(\.status) == order.map { _ in 200 }, "requests \(order)")
        }
    }

    @Test func compressedBodies() throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let row = try Digits.rows()[3]
        let expected = try Digits.Reference().run(row)
        let plain = Array(Digits.jsonRequest(row).utf8)
        for (encoding, bits) in [("gzip", Int32(31)), ("deflate", Int32(15))] {
            let body = try DecompressionTests.compress(plain, windowBits: bits)
            let reply = try RawHTTP.request(
                port: server.port, "POST", "/v2/models/digits/infer", headers: [("Content-Encoding", encoding)], body: body)
            #expect(reply.status == 200, "\(encoding): \(reply.text)")
            #expect(try Digits.parseJSON(reply).label == expected.label)
        }
    }

    @Test func expectContinueGetsAnInterimResponse() throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let row = try Digits.rows()[1]
        let reply = try RawHTTP.request(
            port: server.port, "POST", "/v2/models/digits/infer", headers: [("Expect", "100-continue")],
            body: Array(Digits.jsonRequest(row).utf8))
        #expect(reply.interimStatuses == [100])
        #expect(reply.status == 200, "\(reply.text)")
        #expect(try Digits.parseJSON(reply).label == Digits.Reference().run(row).label)

        // An HTTP/1.0 client knows no interim responses: its expectation is ignored. Without
        // `Connection: keep-alive`, HTTP/1.0 closes the connection after the answer.
        let body = Array(Digits.jsonRequest(row).utf8)
        let old = try RawHTTP.exchangeRaw(
            port: server.port,
            Array("POST /v2/models/digits/infer HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
        let text = String(decoding: old, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200") && !text.contains(" 100 Continue"), "\(text)")
        #expect(text.lowercased().contains("connection: close"), "\(text)")
    }

    @Test func validationErrorsOverHTTP() throws {
        let server = try ServerProcess(arguments: ["--max-body", "20000"])
        defer { server.stop() }
        let port = server.port
        let row = try Digits.rows()[0]
        func expectError(_ reply: HTTPReply, _ status: Int, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            #expect(reply.status == status, "\(reply.text)", sourceLocation: sourceLocation)
            let json = try JSONParser.parse(reply.body)
            guard case .string(let message)? = json["error"] else {
                Issue.record("no error message in \(reply.text)", sourceLocation: sourceLocation)
                return
            }
            #expect(message.contains(fragment), "'\(message)' should contain '\(fragment)'", sourceLocation: sourceLocation)
        }
        let infer = "/v2/models/digits/infer"
        try expectError(RawHTTP.postJSON(port: port, "/v2/models/nope/infer", Digits.jsonRequest(row)), 404, "unknown model 'nope'")
        try expectError(RawHTTP.postJSON(port: port, infer, "{\"inputs\": ["), 400, "not valid JSON")
        try expectError(
            RawHTTP.postJSON(port: port, infer, #"{"inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP32", "data": []}]}"#), 400,
            "unknown input 'x'")
        try expectError(RawHTTP.postJSON(port: port, infer, #"{"inputs": []}"#), 400, "missing input 'float_input'")
        let zeros = [String](repeating: "0", count: 64).joined(separator: ",")
        let twice = #"{"name": "float_input", "shape": [1, 64], "datatype": "FP32", "data": [\#(zeros)]}"#
        try expectError(RawHTTP.postJSON(port: port, infer, #"{"inputs": [\#(twice), \#(twice)]}"#), 400, "appears more than once")
        try expectError(
            RawHTTP.postJSON(
                port: port, infer, #"{"inputs": [{"name": "float_input", "shape": [1, 64], "datatype": "INT64", "data": []}]}"#), 400,
            "datatype INT64 does not match the model's FP32")
        try expectError(
            RawHTTP.postJSON(port: port, infer, #"{"inputs": [{"name": "float_input", "shape": [64], "datatype": "FP32", "data": []}]}"#),
            400, "has rank 1, the model expects rank 2")
        try expectError(
            RawHTTP.postJSON(
                port: port, infer, #"{"inputs": [{"name": "float_input", "shape": [1, 63], "datatype": "FP32", "data": []}]}"#), 400,
            "dimension 1 is 63, the model expects 64")
        try expectError(
            RawHTTP.postJSON(
                port: port, infer, #"{"inputs": [{"name": "float_input", "shape": [33, 64], "datatype": "FP32", "data": []}]}"#), 400,
            "batch size 33 exceeds the model's max_batch_size 32")
        try expectError(
            RawHTTP.postJSON(
                port: port, infer, #"{"inputs": [{"name": "float_input", "shape": [1, 64], "datatype": "FP32", "data": [1, 2]}]}"#), 400,
            "the shape needs 64 elements, 'data' has 2")
        // A binary size that the body does not hold, and one that disagrees with the shape.
        let header = Array(
            #"{"inputs": [{"name": "float_input", "shape": [1, 64], "datatype": "FP32", "parameters": {"binary_data_size": 256}}]}"#.utf8)
        try expectError(
            RawHTTP.request(
                port: port, "POST", infer, headers: [("Inference-Header-Content-Length", String(header.count))],
                body: header + [UInt8](repeating: 0, count: 100)), 400,
            "only 100 bytes of binary data are left")
        let wrongSize = Array(
            #"{"inputs": [{"name": "float_input", "shape": [1, 64], "datatype": "FP32", "parameters": {"binary_data_size": 4}}]}"#.utf8)
        try expectError(
            RawHTTP.request(
                port: port, "POST", infer, headers: [("Inference-Header-Content-Length", String(wrongSize.count))],
                body: wrongSize + [0, 0, 0, 0]), 400,
            "binary_data_size is 4 bytes, shape [1, 64] of FP32 needs 256")
        try expectError(
            RawHTTP.request(port: port, "POST", infer, headers: [("Inference-Header-Content-Length", "999999")], body: header), 400,
            "Inference-Header-Content-Length is 999999")
        try expectError(
            RawHTTP.request(port: port, "POST", infer, headers: [("Content-Type", "image/png")], body: Array(Digits.jsonRequest(row).utf8)),
            415, "unsupported Content-Type 'image/png'")
        try expectError(
            RawHTTP.request(port: port, "POST", infer, headers: [("Content-Encoding", "br")], body: Array(Digits.jsonRequest(row).utf8)),
            415, "unsupported Content-Encoding 'br'")
        try expectError(
            RawHTTP.request(port: port, "POST", infer, headers: [("Content-Encoding", "gzip")], body: Array("not gzip".utf8)), 400,
            "not valid gzip")
        try expectError(RawHTTP.request(port: port, "POST", infer, body: [UInt8](repeating: 32, count: 30000)), 413, "limit")
        let bomb = try DecompressionTests.compress([UInt8](repeating: 32, count: 1 << 20), windowBits: 31)
        try expectError(
            RawHTTP.request(port: port, "POST", infer, headers: [("Content-Encoding", "gzip")], body: bomb), 413,
            "decompressed body exceeds")
        // The server still answers after all that, and the metrics counted each outcome.
        #expect(try RawHTTP.postJSON(port: port, infer, Digits.jsonRequest(row)).status == 200)
        let metrics = try RawHTTP.get(port: port, "/metrics").text
        #expect((metricValue(metrics, #"forklift_requests_total{model="digits",outcome="bad_request"}"#) ?? 0) >= 10)
        #expect(metricValue(metrics, #"forklift_requests_total{model="digits",outcome="success"}"#) == 1)
        #expect(metricValue(metrics, #"forklift_requests_total{model="_unknown",outcome="not_found"}"#) == 1)
        #expect(metricValue(metrics, #"forklift_requests_total{model="digits",outcome="too_large"}"#) == 2)
        #expect(metrics.contains("forklift_request_duration_seconds_bucket"))
    }
}
