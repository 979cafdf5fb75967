import ArgumentParser
import COpenBLAS
import ForkliftEngine
import Foundation

struct Profile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure compute-only throughput (samples/s) at several batch sizes, and time per op type.")

    @Argument(help: "The .onnx file.") var model: String
    @Option(help: "Comma-separated batch sizes.") var batch = "1,8,32"
    @Option(help: "Compute threads (the engine's kernels and OpenBLAS).") var threads = 1
    @Option(help: "Minimum seconds of timed runs per batch size.") var minTime = 1.0
    @Flag(help: "Print JSON instead of a table.") var json = false

    func run() throws {
        let batches = batch.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !batches.isEmpty, batches.allSatisfy({ $0 > 0 }) else { throw CLIError("--batch takes positive integers, e.g. 1,8,32") }
        guard threads > 0 else { throw CLIError("--threads must be at least 1") }
        try OptionChecks.time(minTime, "--min-time")
        let loaded = try loadModel(model)
        if !loaded.isBatchable && batches != [1] {
            throw CLIError("\(model) has no batch dimension; use --batch 1")
        }
        BLAS.setThreads(threads)
        var results: [ComputeBenchmark.Result] = []
        for size in batches {
            do { results.append(try ComputeBenchmark.measure(loaded, batch: size, minTime: minTime)) } catch {
                throw CLIError("batch \(size): \(error)")
            }
        }
        if json {
            printJSON(results)
        } else {
            printTable(results, flops: loaded.summary.flopsPerSample)
        }
    }

    private func printTable(_ results: [ComputeBenchmark.Result], flops: Int?) {
        print("model: \(model)  threads: \(threads)")
        print("batch   samples/s    median ms   GFLOP/s   runs")
        for result in results {
            let gflops = flops.map { String(format: "%9.1f", Double($0) * result.samplesPerSecond / 1e9) } ?? "        -"
            print(
                String(format: "%5d %11.1f %12.3f", result.batch, result.samplesPerSecond, result.medianSeconds * 1000)
                    + " \(gflops) \(String(format: "%6d", result.runs))")
        }
        for result in results {
            print("\ntime per op type at batch \(result.batch) (ms per run, share):")
            let total = result.secondsPerOp.values.reduce(0, +)
            for (label, seconds) in result.secondsPerOp.sorted(by: { $0.value > $1.value }) {
                let name = label.padding(toLength: max(label.count, 28), withPad: " ", startingAt: 0)
                print("  \(name)" + String(format: " %9.3f  %5.1f%%", seconds * 1000, total > 0 ? 100 * seconds / total : 0))
            }
        }
    }

    private func printJSON(_ results: [ComputeBenchmark.Result]) {
        let object: [String: Any] = [
            "model": model, "threads": threads,
            "results": results.map { result in
                [
                    "batch": result.batch, "samples_per_second": result.samplesPerSecond,
                    "median_ms": result.medianSeconds * 1000, "runs": result.runs,
                    "ms_per_op": result.secondsPerOp.mapValues { $0 * 1000 },
                ] as [String: Any]
            },
        ]
        if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
            print(String(decoding: data, as: UTF8.self))
        }
    }
}

/// Plain `cblas_sgemm` throughput: the ceiling the engine's GEMM-bound models are measured against.
struct SgemmBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sgemm-bench", abstract: "Measure cblas_sgemm GFLOP/s for an N×N×N product.", shouldDisplay: false)

    @Option(help: "Matrix size.") var size = 2048
    @Option(help: "Compute threads (the engine's kernels and OpenBLAS).") var threads = 1
    @Option(help: "Timed repetitions.") var repeats = 5

    func run() throws {
        guard size > 0, size <= 8192, repeats > 0 else { throw CLIError("--size must be 1...8192 and --repeats positive") }
        // OpenBLAS's own threading: the ceiling the engine's sliced products are measured against.
        BLAS.setThreads(threads)
        openblas_set_num_threads(Int32(threads))
        let n = Int32(size)
        let a = [Float](repeating: 1.0 / Float(size), count: size * size)
        let b = [Float](repeating: 0.5, count: size * size)
        var c = [Float](repeating: 0, count: size * size)
        var times: [Double] = []
        for index in 0..<(repeats + 1) {
            let start = Date()
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, &c, n)
            if index > 0 { times.append(Date().timeIntervalSince(start)) }
        }
        times.sort()
        let gflops = 2 * pow(Double(size), 3) / times[times.count / 2] / 1e9
        print(String(format: "sgemm %d^3 threads %d: %.1f GFLOP/s", size, threads, gflops))
    }
}
