import ForkliftPool
import Foundation
import Testing

@testable import ForkliftEngine
@testable import ForkliftServer

/// The pure parts of the HTTP layer: JSON, request decoding and validation, response encoding,
/// metadata documents. No process, no socket.
@Suite struct CodecTests {
    static let model = ModelMetadata(
        name: "mlp", version: "1",
        inputs: [ValueSpec(name: "x", dtype: .float32, shape: [.symbolic("N"), .fixed(4)])],
        outputs: [
            ValueSpec(name: "probabilities", dtype: .float32, shape: [.symbolic("N"), .fixed(3)]),
            ValueSpec(name: "label", dtype: .int64, shape: [.symbolic("N")]),
        ],
        maxBatchSize: 8, labels: nil)

    static let twoInputs = ModelMetadata(
        name: "pair", version: "1",
        inputs: [
            ValueSpec(name: "a", dtype: .int64, shape: [.symbolic("N"), .fixed(2)]),
            ValueSpec(name: "b", dtype: .bool, shape: [.symbolic("N"), .fixed(2)]),
        ],
        outputs: [ValueSpec(name: "y", dtype: .int64, shape: [.symbolic("N")])],
        maxBatchSize: 4, labels: nil)

    static func decode(_ json: String, model: ModelMetadata = model, binary: [UInt8] = []) throws(ServerError) -> DecodedInferRequest {
        let header = Array(json.utf8)
        return try InferRequestDecoder.decode(body: header + binary, headerLength: binary.isEmpty ? nil : header.count, model: model)
    }

    static func expectError(_ json: String, model: ModelMetadata = model, binary: [UInt8] = [], status: Int = 400, _ fragment: String) {
        do {
            _ = try decode(json, model: model, binary: binary)
            Issue.record("expected \(status) containing '\(fragment)' for \(json)")
        } catch {
            #expect(error.status.code == status, "\(error)")
            #expect(error.message.contains(fragment), "'\(error.message)' should contain '\(fragment)'")
        }
    }

    static func floats(_ data: Data) -> [Float] {
        data.withUnsafeBytes { raw in (0..<data.count / 4).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
    }

    // MARK: JSON

    @Test func parsesJSONValues() throws {
        let value = try JSONParser.parse(Array(#"{"a": [1, -2.5e3, true, null, "x\u00e9\n\"", 9223372036854775807], "b": {}}"#.utf8))
        #expect(value["a"] == .array([.int(1), .double(-2500), .bool(true), .null, .string("xé\n\""), .int(Int64.max)]))
        #expect(value["b"] == .object([:]))
        #expect(try JSONParser.parse(Array("[\"\\ud83d\\ude00\"]".utf8)) == .array([.string("😀")]))
    }

    @Test func rejectsBadJSON() {
        for text in ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "[1] x", "\"\u{01}\"", "tru", "-", "[\"\\ud800\"]"] {
            #expect(throws: JSONParseError.self, "\(text)") { try JSONParser.parse(Array(text.utf8)) }
        }
        let deep = String(repeating: "[", count: 1000) + String(repeating: "]", count: 1000)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array(deep.utf8)) }
    }

    @Test func writesEscapedStrings() {
        var writer = JSONWriter()
        writer.string("a\"b\\c\n\u{01}é")
        #expect(String(decoding: writer.bytes, as: UTF8.self) == #""a\"b\\c\n\u0001é""#)
    }

    // MARK: Decoding infer requests

    @Test func decodesFlatAndNestedJSON() throws {
        let flat = try Self.decode(
            #"{"id": "r1", "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6, 7, 8.5]}]}"#)
        #expect(flat.id == "r1")
        #expect(flat.request.model == "mlp")
        #expect(flat.request.inputs[0].shape == [2, 4])
        #expect(Self.floats(flat.request.inputs[0].data) == [1, 2, 3, 4, 5, 6, 7, 8.5])
        #expect(flat.outputs == [RequestedOutput(index: 0, binary: false), RequestedOutput(index: 1, binary: false)])
        let nested = try Self.decode(
            #"{"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [[1, 2, 3, 4], [5, 6, 7, 8.5]]}]}"#)
        #expect(nested.request.inputs == flat.request.inputs)
    }

    @Test func decodesBinaryInputsAndOutputSelection() throws {
        let values: [Float] = [0.5, 1, 2, 3]
        let bytes = values.withUnsafeBytes { Array($0) }
        let decoded = try Self.decode(
            #"{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}}], "outputs": [{"name": "label", "parameters": {"binary_data": true}}]}"#,
            binary: bytes)
        #expect(Self.floats(decoded.request.inputs[0].data) == values)
        #expect(decoded.outputs == [RequestedOutput(index: 1, binary: true)])
        let all = try Self.decode(
            #"{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}], "parameters": {"binary_data_output": true}}"#
        )
        #expect(all.outputs.allSatisfy { $0.binary })
    }

    @Test func decodesIntegerAndBoolInputsInModelOrder() throws {
        let decoded = try Self.decode(
            #"{"inputs": [{"name": "b", "shape": [1, 2], "datatype": "BOOL", "data": [true, false]}, {"name": "a", "shape": [1, 2], "datatype": "INT64", "data": [-9007199254740993, 7]}]}"#,
            model: Self.twoInputs)
        let a = decoded.request.inputs[0].data.withUnsafeBytes { raw in
            (0..<2).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self) }
        }
        #expect(a == [-9_007_199_254_740_993, 7])
        #expect(Array(decoded.request.inputs[1].data) == [1, 0])
    }

    @Test func rejectsEachValidationError() {
        let x = #""name": "x", "datatype": "FP32""#
        Self.expectError("[1]", "must be a JSON object")
        Self.expectError("{", "not valid JSON")
        Self.expectError("{}", "no 'inputs'")
        Self.expectError(#"{"inputs": [{"name": "y", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}"#, "unknown input 'y'")
        Self.expectError(#"{"inputs": []}"#, "missing input 'x'")
        Self.expectError(
            #"{"inputs": [{\#(x), "shape": [1, 4], "data": [1, 2, 3, 4]}, {\#(x), "shape": [1, 4], "data": [1, 2, 3, 4]}]}"#,
            "input 'x' appears more than once")
        Self.expectError(
            #"{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}"#,
            "input 'x': datatype FP64 does not match the model's FP32")
        Self.expectError(
            #"{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FLOAT", "data": [1, 2, 3, 4]}]}"#, "unknown datatype 'FLOAT'")
        Self.expectError(
            #"{"inputs": [{\#(x), "shape": [4], "data": [1, 2, 3, 4]}]}"#, "input 'x': shape [4] has rank 1, the model expects rank 2")
        Self.expectError(
            #"{"inputs": [{\#(x), "shape": [1, 5], "data": [1, 2, 3, 4, 5]}]}"#, "input 'x': dimension 1 is 5, the model expects 4")
        Self.expectError(#"{"inputs": [{\#(x), "shape": [9, 4], "data": []}]}"#, "batch size 9 exceeds the model's max_batch_size 8")
        Self.expectError(#"{"inputs": [{\#(x), "shape": [0, 4], "data": []}]}"#, "input 'x': dimension 0 is 0")
        Self.expectError(#"{"inputs": [{\#(x), "shape": [-1, 4], "data": []}]}"#, "shape must hold non-negative integers")
        Self.expectError(
            #"{"inputs": [{\#(x), "shape": [2, 4], "data": [1, 2, 3, 4]}]}"#, "input 'x': the shape needs 8 elements, 'data' has 4")
        Self.expectError(
            #"{"inputs": [{\#(x), "shape": [1, 4], "data": [1, "2", 3, 4]}]}"#, "input 'x': element 1 is a string, expected a number")
        Self.expectError(#"{"inputs": [{\#(x), "shape": [1, 4]}]}"#, "input 'x' has neither 'data' nor parameters.binary_data_size")
        Self.expectError(
            #"{"inputs": [{\#(x), "shape": [1, 4], "parameters": {"binary_data_size": 16}}]}"#, "no Inference-Header-Content-Length")
        Self.expectError(
            #"{"inputs": [{\#(x), "shape": [1, 4], "parameters": {"binary_data_size": 12}}]}"#, binary: [UInt8](repeating: 0, count: 12),
            "binary_data_size is 12 bytes, shape [1, 4] of FP32 needs 16")
        Self.expectError(
            #"{"inputs": [{\#(x), "shape": [1, 4], "parameters": {"binary_data_size": 16}}]}"#, binary: [UInt8](repeating: 0, count: 8),
            "only 8 bytes of binary data are left")
        Self.expectError(
            #"{"inputs": [{\#(x), "shape": [1, 4], "parameters": {"binary_data_size": 16}}]}"#, binary: [UInt8](repeating: 0, count: 20),
            "4 bytes of binary data follow the inputs")
        Self.expectError(
            #"{"inputs": [{\#(x), "shape": [1, 4], "data": [1, 2, 3, 4]}], "outputs": [{"name": "nope"}]}"#, "unknown output 'nope'")
        Self.expectError(#"{"inputs": [{\#(x), "shape": [1, 4], "data": [1, 2, 3, 4]}], "id": 5}"#, "'id' must be a string")
        // A huge declared shape is refused from the data actually sent, before any allocation.
        Self.expectError(#"{"inputs": [{\#(x), "shape": [8, 4611686018427387904], "data": [1]}]}"#, "dimension 1 is 4611686018427387904")
        Self.expectError(
            #"{"inputs": [{"name": "a", "shape": [1, 2], "datatype": "INT64", "data": [1, 2.5]}, {"name": "b", "shape": [1, 2], "datatype": "BOOL", "data": [true, false]}]}"#,
            model: Self.twoInputs, "element 1 is 2.5, expected an integer")
        Self.expectError(
            #"{"inputs": [{"name": "a", "shape": [1, 2], "datatype": "INT64", "data": [1, 2]}, {"name": "b", "shape": [1, 2], "datatype": "BOOL", "data": [1, 0]}]}"#,
            model: Self.twoInputs, "input 'b': element 0 is 1, expected true or false")
        Self.expectError(
            #"{"inputs": [{"name": "a", "shape": [2, 2], "datatype": "INT64", "data": [1, 2, 3, 4]}, {"name": "b", "shape": [1, 2], "datatype": "BOOL", "data": [true, false]}]}"#,
            model: Self.twoInputs, "input 'b' has batch size 1, input 'a' has 2")
        Self.expectError(
            #"{"inputs": [{\#(x), "shape": [1, 4], "data": [1, 2, 3, 4]}], "parameters": {"classification": 2}}"#, status: 501,
            "classification")
    }

    @Test func checksElementCountWithoutOverflow() {
        let unbounded = ModelMetadata(
            name: "any", version: "1",
            inputs: [ValueSpec(name: "x", dtype: .float32, shape: [.symbolic("a"), .symbolic("b"), .symbolic("c")])],
            outputs: [], maxBatchSize: 0, labels: nil)
        Self.expectError(
            #"{"inputs": [{"name": "x", "datatype": "FP32", "shape": [4294967296, 4294967296, 4294967296], "data": [1]}]}"#,
            model: unbounded, "too many elements")
        Self.expectError(
            #"{"inputs": [{"name": "x", "datatype": "FP32", "shape": [65536, 65536, 16], "parameters": {"binary_data_size": 4}}]}"#,
            model: unbounded, binary: [0, 0, 0, 0], "needs 274877906944")
    }

    // MARK: Encoding responses

    static func result() -> InferenceResult {
        let probabilities: [Float] = [0.25, 0.5, 0.25]
        return InferenceResult(
            outputs: [
                WireTensor(dtype: .float32, shape: [1, 3], data: probabilities.withUnsafeBytes { Data($0) }),
                WireTensor(dtype: .int64, shape: [1], data: withUnsafeBytes(of: Int64(1)) { Data($0) }),
            ],
            batchSize: 3, queueSeconds: 0, computeSeconds: 0)
    }

    @Test func encodesJSONResponse() throws {
        let encoded = try InferResponseEncoder.encode(
            Self.result(), outputs: [RequestedOutput(index: 0, binary: false), RequestedOutput(index: 1, binary: false)], model: Self.model,
            id: "r\"1")
        #expect(encoded.headerLength == nil)
        let text = String(decoding: encoded.body, as: UTF8.self)
        #expect(
            text
                == #"{"model_name":"mlp","model_version":"1","id":"r\"1","outputs":[{"name":"probabilities","datatype":"FP32","shape":[1,3],"data":[0.25,0.5,0.25]},{"name":"label","datatype":"INT64","shape":[1],"data":[1]}]}"#
        )
    }

    @Test func encodesBinaryResponse() throws {
        let encoded = try InferResponseEncoder.encode(
            Self.result(), outputs: [RequestedOutput(index: 1, binary: true)], model: Self.model, id: nil)
        let length = try #require(encoded.headerLength)
        let header = try JSONParser.parse(Array(encoded.body[0..<length]))
        #expect(
            header["outputs"]
                == .array([
                    .object([
                        "name": .string("label"), "datatype": .string("INT64"), "shape": .array([.int(1)]),
                        "parameters": .object(["binary_data_size": .int(8)]),
                    ])
                ]))
        #expect(Array(encoded.body[length...]) == [1, 0, 0, 0, 0, 0, 0, 0])
    }

    // MARK: Metadata documents

    @Test func writesModelMetadataAndConfig() throws {
        let metadata = try JSONParser.parse(MetadataDocuments.model(Self.model, versions: ["1"]))
        #expect(metadata["platform"] == .string("onnxruntime_onnx"))
        #expect(
            metadata["inputs"]
                == .array([.object(["name": .string("x"), "datatype": .string("FP32"), "shape": .array([.int(-1), .int(4)])])]))
        let config = try JSONParser.parse(
            MetadataDocuments.config(Self.model, settings: ServingSettings(workers: 2, maxQueueDelayMicroseconds: 0)))
        #expect(config["max_batch_size"] == .int(8))
        #expect(config["input"] == .array([.object(["name": .string("x"), "data_type": .string("TYPE_FP32"), "dims": .array([.int(4)])])]))
        #expect(config["output"]?.kind == "an array")
        #expect(config["dynamic_batching"] != nil)
        #expect(config["instance_group"] == .array([.object(["count": .int(2), "kind": .string("KIND_CPU")])]))
        var single = Self.model
        single.instanceCount = 1
        let limited = try JSONParser.parse(
            MetadataDocuments.config(single, settings: ServingSettings(workers: 2, maxQueueDelayMicroseconds: 0)))
        #expect(limited["instance_group"] == .array([.object(["count": .int(1), "kind": .string("KIND_CPU")])]))
        let server = try JSONParser.parse(MetadataDocuments.server())
        #expect(server["name"] == .string("forklift"))
    }

    @Test func catalogFindsVersions() throws {
        var v2 = Self.model
        v2.version = "10"
        var v1 = Self.model
        v1.version = "9"
        let catalog = ModelCatalog([v1, v2])
        #expect(try catalog.lookup("mlp").version == "10")
        #expect(try catalog.lookup("mlp", version: "9").version == "9")
        #expect(catalog.versions(of: "mlp") == ["9", "10"])
        #expect(throws: ServerError.self) { try catalog.lookup("mlp", version: "3") }
        #expect(throws: ServerError.self) { try catalog.lookup("nope") }
    }

    @Test func mapsPoolErrors() {
        #expect(ServerError(PoolError.unknownModel("m")).status.code == 404)
        #expect(ServerError(PoolError.modelNotReady("m")).status.code == 503)
        let full = ServerError(PoolError.queueFull(model: "m", capacity: 4))
        #expect(full.status.code == 503 && full.retryAfter == 1 && full.outcome == "queue_full")
        #expect(ServerError(PoolError.shuttingDown).status.code == 503)
        #expect(ServerError(PoolError.timeout(model: "m", seconds: 1)).status.code == 504)
        #expect(ServerError(PoolError.badInput("x")).status.code == 400)
        #expect(ServerError(PoolError.workerFailed("x")).status.code == 500)
    }
}
