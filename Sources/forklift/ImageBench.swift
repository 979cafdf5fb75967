import ArgumentParser
import ForkliftImage
import Foundation

/// Decode + preprocess throughput of the image pipeline on one thread, for scripts/bench-images.
struct ImageBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image-bench", abstract: "Measure JPEG decode + preprocess images/s on one thread.", shouldDisplay: false)

    @Argument(help: "JPEG files.") var files: [String]
    @Option(help: "The image config: a JSON object, or a config.json whose \"image\" field is used.") var config: String
    @Option(help: "Minimum seconds of timed runs per file.") var minTime = 1.0
    @Flag(help: "Decode at full size even when a DCT scale would do.") var noDctScaling = false
    @Flag(help: "Print one JSON object per file instead of a table.") var json = false

    func run() throws {
        let preprocessing = try ImageConfigArgument.parse(config)
        let pipeline: ImagePipeline
        do { pipeline = try ImagePipeline(preprocessing: preprocessing, dctScaling: !noDctScaling) } catch { throw CLIError("\(error)") }
        var output = [Float](repeating: 0, count: pipeline.sampleCount)
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read '\(file)'") }
            let jpeg = [UInt8](data)
            var times: [Double] = []
            let clock = ContinuousClock()
            let start = clock.now
            // One untimed run first: it sizes the pipeline's buffers.
            for index in 0... {
                let began = clock.now
                do {
                    try jpeg.withUnsafeBytes { bytes in
                        try output.withUnsafeMutableBufferPointer { try pipeline.write(jpeg: bytes, into: $0) }
                    }
                } catch {
                    throw CLIError("\(file): \(error)")
                }
                if index > 0 { times.append(Self.seconds(clock.now - began)) }
                if times.count >= 5 && Self.seconds(clock.now - start) >= minTime { break }
            }
            times.sort()
            let median = times[times.count / 2]
            let header = try jpeg.withUnsafeBytes { bytes in try JPEGDecoder.header(of: bytes) }
            if json {
                print(
                    "{\"file\": \(V2JSON.quoted(file)), \"width\": \(header.width), \"height\": \(header.height), "
                        + "\"dct_scaling\": \(!noDctScaling), \"median_ms\": \(median * 1000), \"images_per_second\": \(1 / median), "
                        + "\"runs\": \(times.count)}")
            } else {
                print(
                    "\(file) \(header.width)x\(header.height): "
                        + String(format: "%.1f images/s (median %.3f ms, %d runs)", 1 / median, median * 1000, times.count))
            }
        }
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
    }
}

/// Reads an image config given on the command line as JSON text or as a config.json path.
enum ImageConfigArgument {
    private struct ModelConfigFile: Decodable { var image: ImagePreprocessing? }

    static func parse(_ argument: String) throws -> ImagePreprocessing {
        let trimmed = argument.trimmingCharacters(in: .whitespaces)
        do {
            if trimmed.hasPrefix("{") { return try JSONDecoder().decode(ImagePreprocessing.self, from: Data(trimmed.utf8)) }
            guard let data = FileManager.default.contents(atPath: argument) else { throw CLIError("cannot read config '\(argument)'") }
            guard let image = try JSONDecoder().decode(ModelConfigFile.self, from: data).image else {
                throw CLIError("\(argument) has no \"image\" object")
            }
            return image
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError("image config: \(error)")
        }
    }
}
