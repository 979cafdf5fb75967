import Foundation

/// Why a model repository could not be read. Each case names the path at fault.
public enum RepositoryError: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound(path: String)
    case noModels(path: String)
    case unreadableConfig(path: String, reason: String)
    case missingLabels(path: String, config: String)

    public var description: String {
        switch self {
        case .notFound(let path): "\(path): no such file or directory"
        case .noModels(let path):
            "\(path): no models found (expected MODEL.onnx, <name>/model.onnx or <name>/<version>/model.onnx)"
        case .unreadableConfig(let path, let reason): "\(path): cannot read the model config: \(reason)"
        case .missingLabels(let path, let config): "\(path): labels file named by \(config) does not exist"
        }
    }
}

/// Finds the models to serve: one `.onnx` file, or a folder of model folders in the layout of
/// DESIGN.md (`<name>/model.onnx`, or Triton's `<name>/<version>/model.onnx`). A labels file
/// named by a config comes back as an absolute path in `ModelEntry.config.labels`.
public enum ModelRepository {
    static let modelFile = "model.onnx"
    static let configFile = "config.json"

    public static func scan(_ path: URL) throws(RepositoryError) -> [ModelEntry] {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: path.path, isDirectory: &isDirectory) else { throw .notFound(path: path.path) }
        if !isDirectory.boolValue {
            guard path.pathExtension == "onnx" else { throw .noModels(path: path.path) }
            let folder = path.deletingLastPathComponent()
            guard path.lastPathComponent == modelFile else {
                let name = path.deletingPathExtension().lastPathComponent
                return [ModelEntry(name: name, version: "1", path: path, config: try config(in: folder))]
            }
            // A repository's own file (`<name>/model.onnx` or `<name>/<version>/model.onnx`) keeps
            // the name it has in the repository, as Triton's layout gives it.
            if Int(folder.lastPathComponent) != nil {
                let modelFolder = folder.deletingLastPathComponent()
                return [
                    ModelEntry(
                        name: modelFolder.lastPathComponent, version: folder.lastPathComponent, path: path,
                        config: try config(in: modelFolder))
                ]
            }
            return [ModelEntry(name: folder.lastPathComponent, version: "1", path: path, config: try config(in: folder))]
        }
        let children: [String]
        do { children = try manager.contentsOfDirectory(atPath: path.path) } catch {
            throw .notFound(path: path.path)
        }
        var entries: [ModelEntry] = []
        for name in children.sorted() where !name.hasPrefix(".") {
            let folder = path.appendingPathComponent(name, isDirectory: true)
            guard isFolder(folder) else { continue }
            if let entry = try model(named: name, in: folder) { entries.append(entry) }
        }
        guard !entries.isEmpty else { throw .noModels(path: path.path) }
        return entries
    }

    /// `folder/model.onnx`, else the highest numbered `folder/<version>/model.onnx`.
    private static func model(named name: String, in folder: URL) throws(RepositoryError) -> ModelEntry? {
        let direct = folder.appendingPathComponent(modelFile)
        if FileManager.default.fileExists(atPath: direct.path) {
            return ModelEntry(name: name, version: "1", path: direct, config: try config(in: folder))
        }
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
            .compactMap { entry -> Int? in
                guard let number = Int(entry), number >= 0 else { return nil }
                let file = folder.appendingPathComponent(entry).appendingPathComponent(modelFile)
                return FileManager.default.fileExists(atPath: file.path) ? number : nil
            }
        guard let latest = versions.max() else { return nil }
        let file = folder.appendingPathComponent(String(latest)).appendingPathComponent(modelFile)
        return ModelEntry(name: name, version: String(latest), path: file, config: try config(in: folder))
    }

    /// Reads `folder/config.json` when present; a labels file it names must exist.
    static func config(in folder: URL) throws(RepositoryError) -> ModelConfig {
        let file = folder.appendingPathComponent(configFile)
        guard FileManager.default.fileExists(atPath: file.path) else { return ModelConfig() }
        let config: ModelConfig
        do {
            config = try JSONDecoder().decode(ModelConfig.self, from: Data(contentsOf: file))
        } catch let error as DecodingError {
            throw .unreadableConfig(path: file.path, reason: describe(error))
        } catch {
            throw .unreadableConfig(path: file.path, reason: error.localizedDescription)
        }
        if let size = config.maxBatchSize, size < 0 {
            throw .unreadableConfig(path: file.path, reason: "max_batch_size must be ≥ 0, not \(size)")
        }
        if let count = config.instanceCount, count < 1 {
            throw .unreadableConfig(path: file.path, reason: "instance_count must be ≥ 1, not \(count)")
        }
        if let labels = config.labels {
            let labelsPath = folder.appendingPathComponent(labels)
            guard FileManager.default.fileExists(atPath: labelsPath.path) else {
                throw .missingLabels(path: labelsPath.path, config: file.path)
            }
            // Resolved here because the version folder, not the config's folder, holds the model.
            var resolved = config
            resolved.labels = labelsPath.standardizedFileURL.path
            return resolved
        }
        return config
    }

    /// The labels of a model, one per non-empty line, or nil when its config names none.
    static func labels(for entry: ModelEntry) throws(RepositoryError) -> [String]? {
        guard let labels = entry.config.labels else { return nil }
        let file =
            labels.hasPrefix("/") ? URL(fileURLWithPath: labels) : entry.path.deletingLastPathComponent().appendingPathComponent(labels)
        do {
            let text = try String(contentsOf: file, encoding: .utf8)
            return text.split(whereSeparator: \.isNewline).map { String($0).trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
        } catch {
            throw .missingLabels(path: file.path, config: entry.path.path)
        }
    }

    private static func isFolder(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        // With a coding path the text syntax was fine and a field's own validation failed.
        case .dataCorrupted(let context):
            context.codingPath.isEmpty ? "invalid JSON: \(context.debugDescription)" : context.debugDescription
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            "field '\(context.codingPath.map(\.stringValue).joined(separator: "."))': \(context.debugDescription)"
        case .keyNotFound(let key, _): "missing field '\(key.stringValue)'"
        @unknown default: "\(error)"
        }
    }
}
