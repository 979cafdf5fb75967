import ArgumentParser
import ForkliftEngine
import ForkliftImage
import ForkliftServer
import Foundation

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Run a model on inputs from .npy or JSON files and print the outputs as V2 JSON, or on JPEG images and print the top-k labels.")

    @Argument(help: "The .onnx file, or a model folder holding model.onnx.") var model: String

    @Argument(help: "JPEG images, for a model whose config.json has an \"image\" object.") var images: [String] = []

    @Option(
        name: .shortAndLong,
        help: "An input file (.npy or .json). Models with several inputs take NAME=FILE for each.")
    var input: [String] = []

    @Option(help: "Compute threads (the engine's kernels and OpenBLAS).") var threads = 1
    @Option(help: "Labels printed per JPEG image.") var top = 5
    @Option(help: "Largest JPEG accepted, in pixels (from its header).") var maxImagePixels = ImageLimits.defaultMaxPixels
    @Flag(help: "Print the top-k labels of JPEG images as JSON.") var json = false

    func run() throws {
        var isFolder: ObjCBool = false
        let modelFile =
            FileManager.default.fileExists(atPath: model, isDirectory: &isFolder) && isFolder.boolValue
            ? URL(fileURLWithPath: model).appendingPathComponent("model.onnx").path : model
        let loaded = try loadModel(modelFile)
        BLAS.setThreads(threads)
        let jpegs = images + input.filter { ImagePrediction.isJPEG($0) }
        if !jpegs.isEmpty {
            guard jpegs.count == images.count + input.count else { throw CLIError("pass either JPEG images or tensor inputs, not both") }
            guard top > 0 else { throw CLIError("--top must be at least 1") }
            let prediction = ImagePrediction(modelPath: modelFile, model: loaded, top: top, limits: ImageLimits(maxPixels: maxImagePixels))
            let answers = try prediction.run(jpegs)
            if json { try ImagePrediction.printJSON(answers) } else { ImagePrediction.printTable(answers) }
            return
        }
        let feeds = try InputFiles.load(input, for: loaded)
        let outputs: [String: Tensor]
        do { outputs = try Session(model: loaded).run(feeds) } catch { throw CLIError("\(error)") }
        // A repository's model.onnx is known by its folder's name, as `forklift serve` names it.
        let url = URL(fileURLWithPath: modelFile)
        let modelName =
            url.lastPathComponent == "model.onnx"
            ? url.deletingLastPathComponent().lastPathComponent : url.deletingPathExtension().lastPathComponent
        let objects = loaded.outputs.compactMap { spec in outputs[spec.name].map { V2JSON.output(name: spec.name, tensor: $0) } }
        print(
            "{\"model_name\": \(V2JSON.quoted(modelName)), \"outputs\": ["
                + objects.joined(separator: ", ") + "]}")
    }
}

/// Reads `[NAME=]FILE` arguments into named input tensors of the model's dtypes.
enum InputFiles {
    static func load(_ arguments: [String], for model: Model) throws -> [String: Tensor] {
        guard !arguments.isEmpty else {
            throw CLIError(
                "no input: pass --input FILE (.npy or .json)"
                    + (model.inputs.count > 1 ? " as NAME=FILE for each of \(model.inputs.map(\.name).joined(separator: ", "))" : ""))
        }
        var feeds: [String: Tensor] = [:]
        for argument in arguments {
            let name: String
            let path: String
            if let equals = argument.firstIndex(of: "="), !FileManager.default.fileExists(atPath: argument) {
                name = String(argument[..<equals])
                path = String(argument[argument.index(after: equals)...])
            } else {
                guard model.inputs.count == 1, let only = model.inputs.first else {
                    throw CLIError(
                        "the model has inputs \(model.inputs.map(\.name).joined(separator: ", ")): pass --input NAME=FILE for each")
                }
                name = only.name
                path = argument
            }
            guard let spec = model.inputs.first(where: { $0.name == name }) else {
                throw CLIError("unknown input '\(name)'; the model's inputs are \(model.inputs.map(\.name).joined(separator: ", "))")
            }
            feeds[name] = try read(path, as: spec)
        }
        return feeds
    }

    private static func read(_ path: String, as spec: ValueSpec) throws -> Tensor {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read input file '\(path)'") }
        var tensor: Tensor
        do {
            tensor = path.hasSuffix(".npy") ? try NPY.read(data) : try TensorJSON.parse(data, dtype: spec.dtype)
        } catch {
            throw CLIError("\(path): \(error)")
        }
        if tensor.dtype != spec.dtype {
            throw CLIError("\(path): input '\(spec.name)' needs dtype \(spec.dtype), the file holds \(tensor.dtype)")
        }
        // One sample without the batch dimension gets a batch of one.
        if let dims = spec.shape, tensor.rank == dims.count - 1 {
            tensor = tensor.reshaped([1] + tensor.shape)
        }
        return tensor
    }
}

/// V2 inference-response JSON with keys in the protocol's order.
enum V2JSON {
    static func output(name: String, tensor: Tensor) -> String {
        let values = tensor.doubles()
        let data: String
        switch tensor.dtype {
        case .float32: data = values.map { number(Float($0)) }.joined(separator: ", ")
        case .float64: data = values.map { $0.isFinite ? "\($0)" : "null" }.joined(separator: ", ")
        case .bool: data = values.map { $0 != 0 ? "true" : "false" }.joined(separator: ", ")
        default: data = values.map { String(Int64($0)) }.joined(separator: ", ")
        }
        let shape = tensor.shape.map(String.init).joined(separator: ", ")
        return
            "{\"name\": \(quoted(name)), \"datatype\": \"\(V2DataType.name(tensor.dtype))\", \"shape\": [\(shape)], \"data\": [\(data)]}"
    }

    static func number(_ value: Float) -> String { value.isFinite ? "\(value)" : "null" }

    static func quoted(_ text: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [text], options: [.fragmentsAllowed])) ?? Data("[\"\"]".utf8)
        return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
    }
}
