import ForkliftEngine
import ForkliftImage
import ForkliftPool
import Foundation

/// `forklift predict MODEL photo.jpg`: JPEGs through the model's `image` config, answered with the
/// top-k labels of its first output.
struct ImagePrediction {
    let modelPath: String
    let model: Model
    let top: Int
    let limits: ImageLimits

    /// One image's answer, as `--json` prints it.
    struct Answer: Encodable {
        var image: String
        var top: [ClassScore]
    }

    /// Whether a file holds a JPEG (it starts with the SOI marker and a marker byte).
    static func isJPEG(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let start = (try? handle.read(upToCount: 3)) ?? Data()
        return start.count == 3 && start[start.startIndex] == 0xFF && start[start.startIndex + 1] == 0xD8
            && start[start.startIndex + 2] == 0xFF
    }

    func run(_ files: [String]) throws -> [Answer] {
        let entry: ModelEntry
        do {
            guard let first = try ModelRepository.scan(URL(fileURLWithPath: modelPath)).first else {
                throw CLIError("\(modelPath): no model")
            }
            entry = first
        } catch let error as RepositoryError {
            throw CLIError("\(error)")
        }
        let configPath = entry.path.deletingLastPathComponent().appendingPathComponent("config.json").path
        guard let preprocessing = entry.config.image else {
            throw CLIError("\(configPath): no \"image\" object, so the model cannot take JPEG inputs")
        }
        let inputName = try self.inputName(preprocessing)
        guard let spec = model.inputs.first(where: { $0.name == inputName }), spec.dtype == .float32 else {
            throw CLIError("the model's input '\(inputName)' is not float32")
        }
        let pipeline: ImagePipeline
        do { pipeline = try ImagePipeline(preprocessing: preprocessing, limits: limits) } catch {
            throw CLIError("\(configPath): \(error)")
        }
        // The model's declared rank says whether a sample gets a batch dimension of 1.
        let unbatched = spec.shape?.count == pipeline.sampleShape.count
        let shape = unbatched ? pipeline.sampleShape : [1] + pipeline.sampleShape
        let labels = try Self.labels(entry.config.labels)
        guard let output = model.outputs.first else { throw CLIError("the model has no output") }
        let session = Session(model: model)
        var answers: [Answer] = []
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read image '\(file)'") }
            let tensor = Tensor(dtype: .float32, shape: shape)
            do {
                try [UInt8](data).withUnsafeBytes { bytes in
                    try pipeline.write(jpeg: bytes, into: UnsafeMutableBufferPointer(start: tensor.floats, count: tensor.count))
                }
            } catch {
                throw CLIError("\(file): \(error)")
            }
            let result: Tensor
            do {
                guard let value = try session.run([inputName: tensor])[output.name] else { throw CLIError("no output '\(output.name)'") }
                result = value
            } catch let error as EngineError {
                throw CLIError("\(file): \(error)")
            }
            guard result.dtype == .float32 || result.dtype == .float64 else {
                throw CLIError("output '\(output.name)' is \(result.dtype); top-k needs scores")
            }
            answers.append(Answer(image: file, top: Classification.topK(result.doubles().map { Float($0) }, k: top, labels: labels)))
        }
        return answers
    }

    private func inputName(_ preprocessing: ImagePreprocessing) throws -> String {
        if let name = preprocessing.input {
            guard model.inputs.contains(where: { $0.name == name }) else {
                throw CLIError(
                    "config.json names image input '\(name)'; the model's inputs are \(model.inputs.map(\.name).joined(separator: ", "))")
            }
            guard model.inputs.count == 1 else {
                throw CLIError("the model has other inputs besides '\(name)'; predict feeds only the image")
            }
            return name
        }
        guard model.inputs.count == 1, let only = model.inputs.first else {
            throw CLIError(
                "the model has inputs \(model.inputs.map(\.name).joined(separator: ", ")): name the image's in config.json \"image\".\"input\""
            )
        }
        return only.name
    }

    private static func labels(_ path: String?) throws -> [String] {
        guard let path else { return [] }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw CLIError("cannot read labels file '\(path)'") }
        return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    static func printTable(_ answers: [Answer]) {
        for answer in answers {
            print(answer.image)
            for (rank, score) in answer.top.enumerated() {
                print(String(format: "%4d. %8.5f  ", rank + 1, score.score) + "\(score.label)  (class \(score.index))")
            }
        }
    }

    static func printJSON(_ answers: [Answer]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print(String(decoding: try encoder.encode(answers), as: UTF8.self))
    }
}
