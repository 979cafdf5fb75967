import CJPEG

/// What a JPEG header declares, read without decoding any pixels.
public struct JPEGHeader: Sendable, Equatable {
    /// Size as stored in the file (before the EXIF orientation is applied).
    public var width: Int
    public var height: Int
    /// 1 (gray), 3 (YCbCr or RGB) or 4 (CMYK or YCCK).
    public var components: Int
    /// EXIF orientation 1...8; 1 when the file has none.
    public var orientation: Int
    public var isProgressive: Bool

    public init(width: Int, height: Int, components: Int, orientation: Int, isProgressive: Bool) {
        self.width = width
        self.height = height
        self.components = components
        self.orientation = orientation
        self.isProgressive = isProgressive
    }

    /// The size the image is shown at: width and height swap for orientations 5...8.
    public var displayWidth: Int { orientation >= 5 ? height : width }
    public var displayHeight: Int { orientation >= 5 ? width : height }
}

/// An RGB8 image decoded into memory the caller owns: `width × height × 3` bytes, rows packed.
public struct DecodedSize: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var byteCount: Int { width * height * 3 }
}

/// JPEG decoding through libjpeg-turbo (the CJPEG shim). Errors come back typed; nothing exits.
public enum JPEGDecoder {
    /// The DCT scales libjpeg can decode at: 1/1, 1/2, 1/4, 1/8.
    public static let scaleDenominators = [1, 2, 4, 8]

    /// Reads the header only. Cheap enough for the HTTP layer's checks.
    public static func header(of jpeg: UnsafeRawBufferPointer) throws(ImageError) -> JPEGHeader {
        let info = try call(jpeg) { data, info in forklift_jpeg_read_header(data, jpeg.count, 1, info) }
        return header(from: info)
    }

    /// The size of the RGB8 image `decode` writes at DCT scale 1/`scaleDenominator`, orientation applied.
    public static func decodedSize(of jpeg: UnsafeRawBufferPointer, scaleDenominator: Int) throws(ImageError) -> DecodedSize {
        let info = try call(jpeg) { data, info in forklift_jpeg_read_header(data, jpeg.count, Int32(scaleDenominator), info) }
        return DecodedSize(width: Int(info.output_width), height: Int(info.output_height))
    }

    /// Decodes to RGB8 in `output` (at least `decodedSize(...).byteCount` bytes), converting gray
    /// and CMYK, applying the EXIF orientation, at 1/`scaleDenominator` size (libjpeg's DCT scaling).
    @discardableResult
    public static func decode(
        _ jpeg: UnsafeRawBufferPointer, scaleDenominator: Int = 1, into output: UnsafeMutableRawBufferPointer
    ) throws(ImageError) -> DecodedSize {
        let target = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
        let info = try call(jpeg) { data, info in
            forklift_jpeg_decode(data, jpeg.count, Int32(scaleDenominator), target, output.count, info)
        }
        return DecodedSize(width: Int(info.output_width), height: Int(info.output_height))
    }

    /// Decodes a whole image at full size into a new array, after the `limits` checks (for tools
    /// and tests; the pipeline decodes into a buffer it reuses).
    public static func decode(_ jpeg: [UInt8], limits: ImageLimits = ImageLimits()) throws(ImageError) -> (size: DecodedSize, rgb: [UInt8])
    {
        var rgb: [UInt8] = []
        let outcome: Result<DecodedSize, ImageError> = jpeg.withUnsafeBytes { bytes in
            Result { () throws(ImageError) -> DecodedSize in
                try limits.check(jpeg: bytes)
                let size = try decodedSize(of: bytes, scaleDenominator: 1)
                rgb = [UInt8](repeating: 0, count: size.byteCount)
                return try rgb.withUnsafeMutableBytes { output in Result { () throws(ImageError) in try decode(bytes, into: output) } }
                    .get()
            }
        }
        return (try outcome.get(), rgb)
    }

    static func header(from info: forklift_jpeg_info) -> JPEGHeader {
        JPEGHeader(
            width: Int(info.width), height: Int(info.height), components: Int(info.components),
            orientation: Int(info.orientation), isProgressive: info.progressive != 0)
    }

    /// Runs one shim call and turns its status into an ImageError carrying libjpeg's message.
    private static func call(
        _ jpeg: UnsafeRawBufferPointer,
        _ body: (UnsafePointer<UInt8>?, UnsafeMutablePointer<forklift_jpeg_info>) -> forklift_jpeg_status
    ) throws(ImageError) -> forklift_jpeg_info {
        var info = forklift_jpeg_info()
        let status = body(jpeg.baseAddress?.assumingMemoryBound(to: UInt8.self), &info)
        if status == FORKLIFT_JPEG_OK { return info }
        let message = withUnsafeBytes(of: info.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        switch status {
        case FORKLIFT_JPEG_NOT_JPEG: throw .notJPEG(message)
        case FORKLIFT_JPEG_TRUNCATED: throw .truncated(message)
        case FORKLIFT_JPEG_BAD_ARGUMENT: throw .corrupt("bad decoder call: \(message)")
        default: throw .corrupt(message)
        }
    }
}
