/// The worker's times for one infer request, sent back in the standard `Server-Timing` response
/// header (durations in milliseconds): `queue;dur=0.041, compute;dur=35.120`. Browsers' developer
/// tools show it, and `forklift bench` subtracts each request's own compute time from its latency,
/// which separates serving overhead from compute that varies by milliseconds from run to run.
struct ServerTiming: Sendable, Equatable {
    var queueSeconds: Double
    var computeSeconds: Double

    static let field = "Server-Timing"

    var headerValue: String {
        "queue;dur=" + Self.milliseconds(queueSeconds) + ", compute;dur=" + Self.milliseconds(computeSeconds)
    }

    /// Milliseconds with three decimals, from whole microseconds: no floating-point formatting.
    static func milliseconds(_ seconds: Double) -> String {
        let micros = seconds.isFinite ? Int(max(0, min(seconds, 1e9)) * 1e6 + 0.5) : 0
        let fraction = micros % 1000
        let digits = fraction < 10 ? "00" : fraction < 100 ? "0" : ""
        return "\(micros / 1000)." + digits + "\(fraction)"
    }
}
