import ForkliftImage
import Foundation
import Testing

/// The `image` object of config.json: the contract's exact shape, defaults, and errors that name the field.
@Suite struct ConfigTests {
    private func decode(_ json: String) throws -> ImagePreprocessing {
        try JSONDecoder().decode(ImagePreprocessing.self, from: Data(json.utf8))
    }

    @Test func theContractsExampleDecodes() throws {
        let config = try decode(
            """
            { "input": "images", "resize_short_side": 256, "crop": [224, 224],
              "scale": 1.0, "mean": [127.0, 127.0, 127.0], "std": [128.0, 128.0, 128.0],
              "channel_order": "RGB", "layout": "NCHW" }
            """)
        #expect(
            config
                == ImagePreprocessing(
                    input: "images", resizeShortSide: 256, crop: [224, 224], scale: 1, mean: [127, 127, 127], std: [128, 128, 128],
                    channelOrder: .rgb, layout: .nchw))
        #expect(config.sampleShape == [3, 224, 224])
        // It encodes back to the same keys.
        let again = try JSONDecoder().decode(ImagePreprocessing.self, from: try JSONEncoder().encode(config))
        #expect(again == config)
    }

    @Test func optionalFieldsTakeTheirDefaults() throws {
        let config = try decode(#"{ "crop": [32, 48], "layout": "NHWC" }"#)
        #expect(config.input == nil && config.resizeShortSide == nil && config.scale == 1)
        #expect(config.mean == [0, 0, 0] && config.std == [1, 1, 1] && config.channelOrder == .rgb)
        #expect(config.sampleShape == [32, 48, 3])
    }

    @Test func badFieldsAreNamed() {
        let bad: [(String, String)] = [
            (#"{ "crop": [224] }"#, "crop"),
            (#"{ "crop": [224, 0] }"#, "crop"),
            (#"{ "crop": [224, 224], "resize_short_side": 100 }"#, "resize_short_side"),
            (#"{ "crop": [224, 224], "std": [1, 0, 1] }"#, "std"),
            (#"{ "crop": [224, 224], "mean": [1, 2] }"#, "mean"),
            (#"{ "crop": [224, 224], "scale": 0 }"#, "scale"),
            (#"{ "crop": [224, 224], "channel_order": "RGBA" }"#, "channel_order"),
            (#"{ "crop": [224, 224], "layout": "CHW" }"#, "layout"),
            (#"{ "resize_short_side": 256 }"#, "crop"),
        ]
        for (json, field) in bad {
            do {
                _ = try decode(json)
                Issue.record("\(json) decoded")
            } catch {
                #expect("\(error)".contains(field), "\(json): \(error)")
            }
        }
        #expect(throws: ImageError.badConfig(field: "crop", reason: "needs [height, width], got 3 values")) {
            try ImagePreprocessing(crop: [1, 2, 3]).validate()
        }
        #expect(throws: ImageError.self) { _ = try ImagePipeline(preprocessing: ImagePreprocessing(crop: [224, 224], std: [0, 1, 1])) }
    }
}
