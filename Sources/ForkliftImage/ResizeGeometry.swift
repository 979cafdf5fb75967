/// Where the crop window sits: the image is resized (short side to `resize_short_side`, or straight
/// to the crop size) and the crop is taken from the centre of the resized image.
struct ResizeGeometry: Equatable {
    /// Size of the whole resized image (most of it is never computed: only the crop is).
    let resizedWidth: Int
    let resizedHeight: Int
    /// Offset of the crop in the resized image: floor((resized − crop) / 2).
    let left: Int
    let top: Int
    let cropWidth: Int
    let cropHeight: Int

    /// `width`×`height` is the image as displayed (EXIF orientation applied).
    init(width: Int, height: Int, preprocessing: ImagePreprocessing) {
        cropWidth = preprocessing.cropWidth
        cropHeight = preprocessing.cropHeight
        if let side = preprocessing.resizeShortSide {
            // The long side is truncated, as torchvision's Resize(int) computes it.
            if width <= height {
                resizedWidth = side
                resizedHeight = max(Int(Double(side) * Double(height) / Double(width)), side)
            } else {
                resizedHeight = side
                resizedWidth = max(Int(Double(side) * Double(width) / Double(height)), side)
            }
        } else {
            resizedWidth = cropWidth
            resizedHeight = cropHeight
        }
        left = (resizedWidth - cropWidth) / 2
        top = (resizedHeight - cropHeight) / 2
    }

    /// The largest DCT scale 1/d (d in 8, 4, 2) whose decode is still at least the resized size in
    /// both directions, so the resize only ever shrinks what libjpeg already shrank cheaply. The
    /// rule is Pillow's `draft()`: floor(stored side / d) ≥ target side. `header` gives the stored
    /// size; the targets are turned to stored orientation first.
    func scaleDenominator(for header: JPEGHeader) -> Int {
        let swapped = header.orientation >= 5
        let targetWidth = swapped ? resizedHeight : resizedWidth
        let targetHeight = swapped ? resizedWidth : resizedHeight
        for denominator in [8, 4, 2] where header.width / denominator >= targetWidth && header.height / denominator >= targetHeight {
            return denominator
        }
        return 1
    }

    /// The size libjpeg decodes a stored `width`×`height` image to at scale 1/d, displayed.
    static func decodedSize(of header: JPEGHeader, denominator: Int) -> DecodedSize {
        let width = (header.width + denominator - 1) / denominator
        let height = (header.height + denominator - 1) / denominator
        return header.orientation >= 5 ? DecodedSize(width: height, height: width) : DecodedSize(width: width, height: height)
    }
}
