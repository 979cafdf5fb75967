extension ImageLimits {
    /// What the HTTP layer checks before a JPEG travels to a worker: its size, that it is a JPEG,
    /// and the dimensions its header declares. Nothing is decoded or allocated from the header.
    public func checkHeader(of jpeg: UnsafeRawBufferPointer) throws(ImageError) -> JPEGHeader {
        try check(byteCount: jpeg.count)
        let header = try JPEGDecoder.header(of: jpeg)
        try check(header)
        return header
    }
}
