import ForkliftEngine
import ForkliftImage
import Foundation
import Testing

/// The files `scripts/make-test-images` writes into `.cache/images/`.
enum ImageFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let folder = root.appendingPathComponent(".cache/images")
    static let missing = "run scripts/make-test-images (it writes the test JPEGs and references into .cache/images)"

    static func bytes(_ name: String) throws -> [UInt8] {
        let path = folder.appendingPathComponent(name).path
        let data = try #require(FileManager.default.contents(atPath: path), "missing \(path): \(missing)")
        return [UInt8](data)
    }

    static func npy(_ name: String) throws -> Tensor {
        try NPY.read(Data(try bytes(name)))
    }

    static func json<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(try bytes(name)))
    }

    /// Mean |a − b| over two equally long byte arrays.
    static func meanAbsoluteDifference(_ a: [UInt8], _ b: UnsafeMutablePointer<UInt8>, count: Int) -> Double {
        var total = 0
        for index in 0..<count { total += abs(Int(a[index]) - Int(b[index])) }
        return Double(total) / Double(max(count, 1))
    }
}

/// `decodable.json`: the files Pillow decodes, and the DCT scales with a Pillow reference.
struct DecodableList: Decodable {
    var full: [String]
    var scaled: [String: [Int]]
}

/// One entry of `cases.json`.
struct PreprocessingCase: Decodable {
    var image: String
    var config: ImagePreprocessing
    var dctScaling: Bool
    var denominator: Int
    var tensor: String
    var pillow: String

    enum CodingKeys: String, CodingKey {
        case image, config, denominator, tensor, pillow
        case dctScaling = "dct_scaling"
    }
}
