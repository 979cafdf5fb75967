import CForkliftSys
import ForkliftEngine
import ForkliftImage
import Foundation
import Glibc

/// Messages between the server and the zygote. They are rare (start, one per fork), so they are
/// length-prefixed JSON; a new worker's socket rides along a `worker` message as SCM_RIGHTS.
struct ControlMessage: Codable, Sendable {
    enum Kind: String, Codable, Sendable {
        /// server → zygote: which models to load and how many BLAS threads workers use.
        case setup
        /// zygote → server: what loading each model gave.
        case models
        /// server → zygote: fork one worker.
        case fork
        /// zygote → server: a worker was forked; its socket is attached.
        case worker
        /// zygote → server: a fork was refused or failed.
        case refused
    }

    var kind: Kind
    var setup: ZygoteSetup?
    var models: [LoadedModel]?
    var pid: Int32?
    var error: String?
}

struct ZygoteSetup: Codable, Sendable {
    struct Model: Codable, Sendable {
        var name: String
        var path: String
        var image: ImagePreprocessing?
    }

    var models: [Model]
    var threads: Int
    var maxImagePixels: Int
}

/// A model as the zygote loaded it, or the engine's error.
struct LoadedModel: Codable, Sendable {
    struct Spec: Codable, Sendable {
        var name: String
        var dtype: Int32
        /// Each dimension is a size, or nil for a symbolic one (named in `symbols`).
        var shape: [Int?]?
        var symbols: [String]?
    }

    var name: String
    var error: String?
    var inputs: [Spec] = []
    var outputs: [Spec] = []
    var batchable = false
    /// The input fed by the model's image pipeline, if it has one.
    var imageInput: String?
}

extension LoadedModel.Spec {
    init(_ spec: ValueSpec) {
        name = spec.name
        dtype = spec.dtype.rawValue
        shape = spec.shape?.map(\.value)
        symbols = spec.shape?.map { dim in if case .symbolic(let symbol) = dim { symbol } else { "" } }
    }

    func valueSpec() throws(ControlError) -> ValueSpec {
        guard let type = DType(rawValue: dtype) else { throw ControlError("value '\(name)': unknown dtype \(dtype)") }
        let dims = shape.map { sizes in
            sizes.enumerated().map { index, size -> Dim in
                if let size { return .fixed(size) }
                let symbol = symbols.flatMap { index < $0.count ? $0[index] : nil } ?? "?"
                return .symbolic(symbol.isEmpty ? "?" : symbol)
            }
        }
        return ValueSpec(name: name, dtype: type, shape: dims)
    }
}

struct ControlError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Length-prefixed JSON over a blocking control socket.
enum ControlIO {
    static let maxMessage = 16 << 20

    static func send(_ message: ControlMessage, on fd: Int32, attaching attached: Int32? = nil) throws(SocketError) {
        let body: Data
        do { body = try JSONEncoder().encode(message) } catch {
            throw .failed("encode control message: \(error)", EINVAL)
        }
        var bytes: [UInt8] = []
        bytes.appendLE(UInt32(body.count))
        bytes.append(contentsOf: body)
        try bytes.withBytes { (raw) throws(SocketError) in try SocketIO.writeAll(fd, raw, attaching: attached) }
    }

    /// Reads one message and the fd that came with it, if any (close-on-exec, owned by the caller).
    static func receive(on fd: Int32) throws(SocketError) -> (ControlMessage, Int32?) {
        var received: Int32 = -1
        var prefix = [UInt8](repeating: 0, count: 4)
        try prefix.withMutableBytes { (raw) throws(SocketError) in try SocketIO.readExactly(fd, raw, receivedFD: &received) }
        let length = Int(prefix.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) })
        guard length <= maxMessage else {
            SocketIO.close(received)
            throw .badFrame(FrameError("control message of \(length) bytes exceeds \(maxMessage)"))
        }
        var body = [UInt8](repeating: 0, count: length)
        do throws(SocketError) {
            try body.withMutableBytes { (raw) throws(SocketError) in try SocketIO.readExactly(fd, raw, receivedFD: &received) }
        } catch {
            SocketIO.close(received)
            throw error
        }
        do {
            let message = try JSONDecoder().decode(ControlMessage.self, from: Data(body))
            return (message, received >= 0 ? received : nil)
        } catch {
            SocketIO.close(received)
            throw .badFrame(FrameError("control message: \(error)"))
        }
    }
}
