import ArgumentParser
import ForkliftEngine
import Foundation

@main
struct Forklift: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forklift",
        abstract: "Serve, run and measure ONNX models on the CPU.",
        subcommands: [
            Bench.self, ImageBench.self, Inspect.self, Predict.self, Profile.self, Serve.self, SgemmBench.self, Zygote.self,
        ]
    )
}

/// A failure the CLI reports as one line on stderr with exit code 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Loads a model, turning engine errors into CLI errors that name the file.
func loadModel(_ path: String) throws -> Model {
    do {
        return try Model(contentsOf: URL(fileURLWithPath: path))
    } catch {
        throw CLIError("\(path): \(error)")
    }
}
