import CZlib
import Foundation

/// Inflates request bodies sent with `Content-Encoding: gzip` or `deflate` (tritonclient's
/// `request_compression_algorithm`), stopping at the body limit so a small bomb cannot expand
/// into a large allocation.
public enum Decompression {
    public enum Encoding: Sendable {
        case gzip
        case deflate
    }

    /// The encoding named by a `Content-Encoding` header; nil for identity. 415 for anything else.
    public static func encoding(_ header: String?) throws(ServerError) -> Encoding? {
        guard let header else { return nil }
        switch header.trimmingCharacters(in: .whitespaces).lowercased() {
        case "", "identity": return nil
        case "gzip", "x-gzip": return .gzip
        case "deflate": return .deflate
        default: throw ServerError(.unsupportedMediaType, "unsupported Content-Encoding '\(header)': use gzip, deflate or none")
        }
    }

    /// The inflated bytes; 413 past `limit`, 400 when the data is not valid for the encoding.
    public static func inflate(_ input: [UInt8], encoding: Encoding, limit: Int) throws(ServerError) -> [UInt8] {
        var stream = z_stream()
        // 15 window bits; +32 detects a zlib or gzip header by itself. HTTP's "deflate" means the
        // zlib format, but some clients send raw deflate: that is retried with -15 below.
        let windowBits: Int32 = encoding == .gzip ? 15 + 16 : 15 + 32
        guard inflateInit2_(&stream, windowBits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw ServerError(.internalServerError, "zlib could not start")
        }
        defer { inflateEnd(&stream) }
        do {
            return try run(&stream, input, limit: limit, encoding: encoding)
        } catch let error where encoding == .deflate && error.status == .badRequest {
            return try inflateRaw(input, limit: limit)
        }
    }

    private static func inflateRaw(_ input: [UInt8], limit: Int) throws(ServerError) -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw ServerError(.internalServerError, "zlib could not start")
        }
        defer { inflateEnd(&stream) }
        return try run(&stream, input, limit: limit, encoding: .deflate)
    }

    private static func run(_ stream: inout z_stream, _ input: [UInt8], limit: Int, encoding: Encoding) throws(ServerError) -> [UInt8] {
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var mutableInput = input
        var status: Int32 = Z_OK
        mutableInput.withUnsafeMutableBufferPointer { inputBuffer in
            stream.next_in = inputBuffer.baseAddress
            stream.avail_in = UInt32(inputBuffer.count)
            repeat {
                chunk.withUnsafeMutableBufferPointer { chunkBuffer in
                    stream.next_out = chunkBuffer.baseAddress
                    stream.avail_out = UInt32(chunkBuffer.count)
                    status = CZlib.inflate(&stream, Z_NO_FLUSH)
                    let produced = chunkBuffer.count - Int(stream.avail_out)
                    output.append(contentsOf: chunkBuffer[0..<produced])
                }
            } while status == Z_OK && output.count <= limit && (stream.avail_in > 0 || stream.avail_out == 0)
            stream.next_in = nil
        }
        guard output.count <= limit else {
            throw ServerError(.contentTooLarge, "the decompressed body exceeds the \(limit)-byte limit")
        }
        guard status == Z_STREAM_END else {
            throw .badRequest("the body is not valid \(encoding == .gzip ? "gzip" : "deflate") data")
        }
        return output
    }
}
