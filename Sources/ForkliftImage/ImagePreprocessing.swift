/// The `image` object of a model's config.json: how a picture becomes the model's input tensor.
///
/// Tensor value = (pixel × scale − mean[c]) / std[c] with pixel in 0...255, where `mean` and `std`
/// are listed in the model's channel order (`channel_order`).
///
/// ```json
/// { "input": "images", "resize_short_side": 256, "crop": [224, 224], "scale": 1.0,
///   "mean": [127.0, 127.0, 127.0], "std": [128.0, 128.0, 128.0],
///   "channel_order": "RGB", "layout": "NCHW" }
/// ```
public struct ImagePreprocessing: Codable, Sendable, Equatable {
    public enum ChannelOrder: String, Codable, Sendable, CaseIterable {
        case rgb = "RGB"
        case bgr = "BGR"
    }
    public enum Layout: String, Codable, Sendable, CaseIterable {
        case nchw = "NCHW"
        case nhwc = "NHWC"
    }

    /// The model input the image feeds; nil means the model's only input.
    public var input: String?
    /// The short side is resized to this (keeping the aspect ratio) before the center crop;
    /// nil resizes straight to the crop size.
    public var resizeShortSide: Int?
    /// Crop size as [height, width].
    public var crop: [Int]
    public var scale: Float
    public var mean: [Float]
    public var std: [Float]
    public var channelOrder: ChannelOrder
    public var layout: Layout

    /// Largest crop side accepted: well past any vision model, small enough that a config cannot ask
    /// for gigabytes per sample.
    public static let maxSide = 8192

    public init(
        input: String? = nil, resizeShortSide: Int? = nil, crop: [Int], scale: Float = 1, mean: [Float] = [0, 0, 0],
        std: [Float] = [1, 1, 1], channelOrder: ChannelOrder = .rgb, layout: Layout = .nchw
    ) {
        self.input = input
        self.resizeShortSide = resizeShortSide
        self.crop = crop
        self.scale = scale
        self.mean = mean
        self.std = std
        self.channelOrder = channelOrder
        self.layout = layout
    }

    enum CodingKeys: String, CodingKey {
        case input
        case resizeShortSide = "resize_short_side"
        case crop, scale, mean, std
        case channelOrder = "channel_order"
        case layout
    }

    /// Decodes and validates: a bad field fails decoding with a message that names it.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        input = try container.decodeIfPresent(String.self, forKey: .input)
        resizeShortSide = try container.decodeIfPresent(Int.self, forKey: .resizeShortSide)
        crop = try container.decode([Int].self, forKey: .crop)
        scale = try container.decodeIfPresent(Float.self, forKey: .scale) ?? 1
        mean = try container.decodeIfPresent([Float].self, forKey: .mean) ?? [0, 0, 0]
        std = try container.decodeIfPresent([Float].self, forKey: .std) ?? [1, 1, 1]
        channelOrder = try Self.decodeEnum(container, .channelOrder, default: .rgb)
        layout = try Self.decodeEnum(container, .layout, default: .nchw)
        do { try validate() } catch {
            guard case .badConfig(let field, _) = error, let key = CodingKeys(rawValue: field) else { throw error }
            throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: error.description)
        }
    }

    private static func decodeEnum<Value: RawRepresentable & Decodable & CaseIterable>(
        _ container: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys, default value: Value
    ) throws -> Value where Value.RawValue == String {
        guard let text = try container.decodeIfPresent(String.self, forKey: key) else { return value }
        guard let parsed = Value(rawValue: text.uppercased()) else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: container,
                debugDescription:
                    "image config field '\(key.rawValue)': '\(text)' is not one of \(Value.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        return parsed
    }

    /// Checks every field; the error names the first bad one.
    public func validate() throws(ImageError) {
        guard crop.count == 2 else { throw .badConfig(field: "crop", reason: "needs [height, width], got \(crop.count) values") }
        guard crop.allSatisfy({ (1...Self.maxSide).contains($0) }) else {
            throw .badConfig(field: "crop", reason: "sides must be 1...\(Self.maxSide), got \(crop)")
        }
        if let side = resizeShortSide {
            guard side >= crop.max() ?? 0, side <= Self.maxSide else {
                throw .badConfig(
                    field: "resize_short_side",
                    reason: "must be at least the crop's larger side \(crop.max() ?? 0) and at most \(Self.maxSide), got \(side)")
            }
        }
        guard scale.isFinite, scale != 0 else { throw .badConfig(field: "scale", reason: "must be a finite non-zero number, got \(scale)") }
        guard mean.count == 3, mean.allSatisfy(\.isFinite) else {
            throw .badConfig(field: "mean", reason: "needs 3 finite values, got \(mean)")
        }
        guard std.count == 3, std.allSatisfy({ $0.isFinite && $0 != 0 }) else {
            throw .badConfig(field: "std", reason: "needs 3 finite non-zero values, got \(std)")
        }
    }

    public var cropHeight: Int { crop.first ?? 0 }
    public var cropWidth: Int { crop.count > 1 ? crop[1] : 0 }

    /// One sample's shape: [3, H, W] for NCHW, [H, W, 3] for NHWC.
    public var sampleShape: [Int] {
        layout == .nchw ? [3, cropHeight, cropWidth] : [cropHeight, cropWidth, 3]
    }
}
