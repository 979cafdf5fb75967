/// Why an image could not become a model input. The text of each case is written for the client:
/// a 400 response can show it as it is.
public enum ImageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The encoded image is larger than the byte limit.
    case tooManyBytes(size: Int, limit: Int)
    /// The header declares more pixels than the limit (checked before any pixel buffer exists).
    case tooManyPixels(width: Int, height: Int, limit: Int)
    /// The bytes are not a JPEG file (e.g. a PNG); the message names the first bytes.
    case notJPEG(String)
    /// The file ends before the image does; libjpeg's message.
    case truncated(String)
    /// libjpeg found damaged or unsupported data; libjpeg's message.
    case corrupt(String)
    /// A field of the `image` object of config.json is missing or wrong.
    case badConfig(field: String, reason: String)
    /// The caller's output buffer cannot hold one sample.
    case outputTooSmall(needed: Int, available: Int)

    public var description: String {
        switch self {
        case .tooManyBytes(let size, let limit): "image of \(size) bytes exceeds the limit of \(limit) bytes"
        case .tooManyPixels(let width, let height, let limit):
            "image of \(width)×\(height) = \(width * height) pixels exceeds the limit of \(limit) pixels"
        case .notJPEG(let why): "not a JPEG image: \(why)"
        case .truncated(let why): "truncated JPEG image: \(why)"
        case .corrupt(let why): "corrupt JPEG image: \(why)"
        case .badConfig(let field, let reason): "image config field '\(field)': \(reason)"
        case .outputTooSmall(let needed, let available):
            "output buffer of \(available) floats cannot hold a sample of \(needed) floats"
        }
    }
}

/// Checks made before decoding, from the byte count and the header alone.
public struct ImageLimits: Sendable, Equatable {
    /// Largest width × height as declared by the header (default 40 megapixels).
    public var maxPixels: Int
    /// Largest encoded size in bytes (the server passes its body limit).
    public var maxBytes: Int

    public static let defaultMaxPixels = 40_000_000
    public static let defaultMaxBytes = 64 << 20

    public init(maxPixels: Int = ImageLimits.defaultMaxPixels, maxBytes: Int = ImageLimits.defaultMaxBytes) {
        self.maxPixels = maxPixels
        self.maxBytes = maxBytes
    }

    /// The checks a server can make on the request thread: byte count, JPEG header, declared pixels.
    /// Cheap (the header only, no pixel buffers); returns the header.
    @discardableResult
    public func check(jpeg: UnsafeRawBufferPointer) throws(ImageError) -> JPEGHeader {
        try check(byteCount: jpeg.count)
        let header = try JPEGDecoder.header(of: jpeg)
        try check(header)
        return header
    }

    func check(byteCount: Int) throws(ImageError) {
        if byteCount > maxBytes { throw .tooManyBytes(size: byteCount, limit: maxBytes) }
    }

    func check(_ header: JPEGHeader) throws(ImageError) {
        // Dimensions are at most 65,535 each, so the product cannot overflow Int.
        if header.width * header.height > maxPixels {
            throw .tooManyPixels(width: header.width, height: header.height, limit: maxPixels)
        }
    }
}
