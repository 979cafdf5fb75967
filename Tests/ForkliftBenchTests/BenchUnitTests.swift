import ForkliftBench
import Foundation
import Testing

@Suite struct BenchUnitTests {
    @Test func targetsParse() throws {
        let plain = try BenchTarget(parsing: "http://127.0.0.1:8000/")
        #expect(plain.host == "127.0.0.1" && plain.port == 8000 && plain.prefix == "")
        let bare = try BenchTarget(parsing: "localhost:9000")
        #expect(bare.host == "localhost" && bare.port == 9000)
        let prefixed = try BenchTarget(parsing: "http://[::1]:7000/serving/")
        #expect(prefixed.host == "::1" && prefixed.prefix == "/serving" && prefixed.hostHeader == "[::1]:7000")
        #expect(throws: BenchError.self) { try BenchTarget(parsing: "https://example:1") }
        #expect(throws: BenchError.self) { try BenchTarget(parsing: "http://:80") }
    }

    @Test func forkliftMetricsAreReadPerModel() {
        let text = """
            # TYPE forklift_batch_size histogram
            forklift_batch_size_bucket{model="digits",le="1.0"} 3
            forklift_batch_size_sum{model="digits"} 12.0
            forklift_batch_size_count{model="digits"} 4
            forklift_batch_size_sum{model="other"} 100.0
            forklift_batch_size_count{model="other"} 1
            forklift_queue_duration_seconds_sum{model="digits"} 0.02
            forklift_queue_duration_seconds_count{model="digits"} 10
            forklift_compute_duration_seconds_sum{model="digits"} 0.003
            forklift_compute_duration_seconds_count{model="digits"} 4
            forklift_compute_duration_seconds_sum{model="other"} 9.0
            """
        let after = ForkliftMetricsSample(exposition: text, model: "digits")
        #expect(after.batchSizeSum == 12 && after.batchCount == 4)
        let stats = after.since(ForkliftMetricsSample())
        #expect(stats.meanBatchSize == 3)
        #expect(abs((stats.meanQueueMilliseconds ?? 0) - 2) < 1e-9)
        #expect(abs((stats.meanComputeMilliseconds ?? 0) - 0.75) < 1e-9)
    }
}
