/// Why a benchmark could not run. `setup` failures (the server, the URL or the model is wrong)
/// end the CLI with exit code 2; the rest with 1.
public struct BenchError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        /// The URL does not parse, or nothing there speaks V2.
        case badURL
        /// No connection could be made.
        case unreachable
        /// The server does not know the model.
        case unknownModel
        /// Flags or input files that cannot make requests for this model.
        case badInput
        /// Anything else: a server that answers nonsense, a failed compute benchmark.
        case failed
    }

    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }

    /// True for the failures the issue asks to end with exit code 2.
    public var isSetupFailure: Bool {
        switch kind {
        case .badURL, .unreachable, .unknownModel: true
        case .badInput, .failed: false
        }
    }
}
