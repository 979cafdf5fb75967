import CZlib
import Foundation
import Testing

@testable import ForkliftServer

/// gzip and deflate request bodies, and the body limit applied after inflating.
@Suite struct DecompressionTests {
    /// zlib's deflate with the given window bits: 15 zlib format, 31 gzip, -15 raw.
    static func compress(_ input: [UInt8], windowBits: Int32) throws -> [UInt8] {
        var stream = z_stream()
        try #require(
            deflateInit2_(
                &stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
                Int32(MemoryLayout<z_stream>.size)) == Z_OK)
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 32)
        var source = input
        let written = source.withUnsafeMutableBufferPointer { inBuffer in
            output.withUnsafeMutableBufferPointer { outBuffer in
                stream.next_in = inBuffer.baseAddress
                stream.avail_in = UInt32(inBuffer.count)
                stream.next_out = outBuffer.baseAddress
                stream.avail_out = UInt32(outBuffer.count)
                _ = deflate(&stream, Z_FINISH)
                return outBuffer.count - Int(stream.avail_out)
            }
        }
        return Array(output[0..<written])
    }

    @Test func inflatesGzipZlibAndRawDeflate() throws {
        let text = Array(String(repeating: "{\"inputs\": []}", count: 100).utf8)
        #expect(try Decompression.inflate(Self.compress(text, windowBits: 31), encoding: .gzip, limit: 1 << 20) == text)
        #expect(try Decompression.inflate(Self.compress(text, windowBits: 15), encoding: .deflate, limit: 1 << 20) == text)
        #expect(try Decompression.inflate(Self.compress(text, windowBits: -15), encoding: .deflate, limit: 1 << 20) == text)
    }

    @Test func stopsAtTheLimit() throws {
        let bomb = try Self.compress([UInt8](repeating: 0, count: 10 << 20), windowBits: 31)
        #expect(bomb.count < 100_000)
        do {
            _ = try Decompression.inflate(bomb, encoding: .gzip, limit: 1 << 20)
            Issue.record("a 10 MiB body passed a 1 MiB limit")
        } catch {
            #expect(error.status.code == 413)
        }
    }

    @Test func rejectsGarbageAndUnknownEncodings() throws {
        do {
            _ = try Decompression.inflate(Array("not gzip".utf8), encoding: .gzip, limit: 1 << 20)
            Issue.record("garbage inflated")
        } catch {
            #expect(error.status.code == 400)
        }
        #expect(try Decompression.encoding(nil) == nil)
        #expect(try Decompression.encoding("identity") == nil)
        #expect(try Decompression.encoding("GZIP") == .gzip)
        do {
            _ = try Decompression.encoding("br")
            Issue.record("br accepted")
        } catch {
            #expect(error.status.code == 415)
        }
    }
}
