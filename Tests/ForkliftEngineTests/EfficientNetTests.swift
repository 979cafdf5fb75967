import Foundation
import Testing

@testable import ForkliftEngine

/// The bundled EfficientNet-Lite0 (built by scripts/fetch-models from the published ImageNet
/// weights): the engine against onnxruntime, and real photos classified correctly.
@Suite struct EfficientNetTests {
    static let folder = Fixtures.root.appendingPathComponent("models/efficientnet_lite0")

    static func model() throws -> Model {
        let url = folder.appendingPathComponent("model.onnx")
        try #require(FileManager.default.fileExists(atPath: url.path), "missing \(url.path): run scripts/fetch-models")
        return try Model(contentsOf: url)
    }

    static func labels() throws -> [String] {
        let url = folder.appendingPathComponent("labels.txt")
        let text = try String(contentsOf: url, encoding: .utf8)
        return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    @Test(arguments: [1, 8])
    func agreesWithOnnxRuntime(batch: Int) throws {
        let model = try Self.model()
        let input = try Fixtures.reference("efficientnet_lite0", "input_b\(batch).npy")
        let expected = try Fixtures.reference("efficientnet_lite0", "logits_b\(batch).npy")
        let output = try #require(try Session(model: model).run(inputs: [input]).first)
        #expect(output.shape == [batch, 1000])
        let error = Fixtures.relativeError(output, expected)
        #expect(error <= 1e-4, "batch \(batch): relative error \(error)")
    }

    /// The preprocessed photos from opencv-doc get their ImageNet class; the class index is
    /// found by its text in labels.txt, so a shifted label file fails here too.
    @Test(arguments: [("squirrel", "fox squirrel, eastern fox squirrel, Sciurus niger"), ("orange", "orange")])
    func classifiesPhoto(image: String, label: String) throws {
        let labels = try Self.labels()
        #expect(labels.count == 1000)
        let want = try #require(labels.firstIndex(of: label), "labels.txt has no line '\(label)'")
        let input = try Fixtures.reference("efficientnet_lite0", "\(image).npy")
        #expect(input.shape == [1, 3, 224, 224])
        let logits = try #require(try Session(model: Self.model()).run(inputs: [input]).first).doubles()
        let top = try #require(logits.indices.max { logits[$0] < logits[$1] })
        #expect(top == want, "\(image): top-1 is '\(labels[top])', expected '\(label)'")
    }

    /// Every BatchNormalization folds into its Conv, every ReLU6 (Clip) fuses into the Conv
    /// before it, and the config names the graph's input.
    @Test func isPrepared() throws {
        let model = try Self.model()
        let ops = model.summary.preparedOpCounts
        #expect(model.summary.file.opCounts["BatchNormalization"] == 49)
        #expect(ops["BatchNormalization"] == nil && ops["Clip"] == nil, "\(ops)")
        // Stem, head, 16 depthwise and 15 expand convolutions end in ReLU6; 16 projections do not.
        #expect(ops["Conv+Clip"] == 33 && ops["Conv"] == 16, "\(ops)")
        #expect(model.outputs.first?.shape == [.symbolic("N"), .fixed(1000)])

        let data = try Data(contentsOf: Self.folder.appendingPathComponent("config.json"))
        let config = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let image = try #require(config["image"] as? [String: Any])
        #expect(image["input"] as? String == model.inputs.first?.name)
        #expect(config["max_batch_size"] as? Int == 32)
    }
}
