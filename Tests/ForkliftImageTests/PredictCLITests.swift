import Foundation
import Testing

/// `forklift predict MODEL photo.jpg` through the real binary, on the tiny classifier that
/// scripts/make-test-images writes with onnxruntime's top-k for two photos.
@Suite struct PredictCLITests {
    typealias Fixtures = ImageFixtures

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The `forklift` binary built next to this test bundle (or `FORKLIFT_BIN`).
    static var forklift: String {
        if let override = ProcessInfo.processInfo.environment["FORKLIFT_BIN"] { return override }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("forklift").path
    }

    static func run(_ arguments: [String]) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: forklift)
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Read both pipes to the end before waiting, so a full pipe never blocks the child.
        let outData = output.fileHandleForReading.readDataToEndOfFile()
        let errData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }

    struct Score: Decodable, Equatable {
        var label: String
        var index: Int
        var score: Double
    }

    struct Answer: Decodable {
        var image: String
        var top: [Score]
    }

    static let model = Fixtures.folder.appendingPathComponent("model").path
    static func image(_ name: String) -> String { Fixtures.folder.appendingPathComponent(name).path }

    @Test func topKMatchesOnnxruntime() throws {
        let expected = try Fixtures.json("model/expected_top.json", as: [String: [Score]].self)
        let names = ["photo_china.jpg", "photo_orange.jpg"]
        let run = try Self.run(["predict", Self.model] + names.map(Self.image) + ["--top", "3", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let answers = try JSONDecoder().decode([Answer].self, from: Data(run.stdout.utf8))
        #expect(answers.map(\.image) == names.map(Self.image))
        for (name, answer) in zip(names, answers) {
            let reference = try #require(expected[name])
            #expect(answer.top.map(\.index) == reference.prefix(3).map(\.index), "\(name)")
            #expect(answer.top.map(\.label) == reference.prefix(3).map(\.label), "\(name)")
            for (score, want) in zip(answer.top, reference) {
                #expect(abs(score.score - want.score) < 1e-3, "\(name) class \(score.index): \(score.score) vs \(want.score)")
            }
        }
    }

    @Test func tableOutputNamesTheLabels() throws {
        let expected = try Fixtures.json("model/expected_top.json", as: [String: [Score]].self)
        let run = try Self.run(["predict", Self.model + "/model.onnx", Self.image("photo_china.jpg")])
        #expect(run.status == 0, "\(run.stderr)")
        let lines = run.stdout.split(separator: "\n")
        #expect(lines.count == 6)  // the file, then five classes (the model has five)
        let best = try #require(expected["photo_china.jpg"]?.first)
        #expect(lines.count > 1 && lines[1].contains(best.label))
    }

    @Test func badImagesAndModelsWithoutAnImageConfigFailWithAMessage() throws {
        let png = try Self.run(["predict", Self.model, Self.image("png_renamed.jpg")])
        #expect(png.status == 1 && png.stderr.contains("not a JPEG"), "\(png.stderr)")
        let giant = try Self.run(["predict", Self.model, Self.image("giant_header.jpg")])
        #expect(giant.status == 1 && giant.stderr.contains("exceeds the limit"), "\(giant.stderr)")
        let small = try Self.run(["predict", Self.model, Self.image("photo_china.jpg"), "--max-image-pixels", "1000"])
        #expect(small.status == 1 && small.stderr.contains("640×427"), "\(small.stderr)")
        let digits = Fixtures.root.appendingPathComponent("models/digits").path
        let noConfig = try Self.run(["predict", digits, Self.image("photo_china.jpg")])
        #expect(noConfig.status == 1 && noConfig.stderr.contains("\"image\""), "\(noConfig.stderr)")
    }
}
