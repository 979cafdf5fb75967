/// A buffer that grows to the largest size asked of it and is reused: an image pipeline decodes
/// and resamples every request in the same memory, with no allocation in the steady state.
final class ScratchBuffer<Element> {
    private(set) var pointer: UnsafeMutablePointer<Element>?
    private(set) var capacity = 0

    var byteCount: Int { capacity * MemoryLayout<Element>.stride }

    /// Room for at least `count` elements; the contents are not kept across growth.
    func reserve(_ count: Int) -> UnsafeMutablePointer<Element> {
        if let pointer, count <= capacity { return pointer }
        pointer?.deallocate()
        let grown = max(count, 1)
        let fresh = UnsafeMutablePointer<Element>.allocate(capacity: grown)
        pointer = fresh
        capacity = grown
        return fresh
    }

    /// Frees the buffer when it holds more than `limit` bytes: one huge photo should not pin its
    /// decode buffer in a long-lived worker.
    func release(ifLargerThan limit: Int) {
        guard byteCount > limit else { return }
        pointer?.deallocate()
        pointer = nil
        capacity = 0
    }

    deinit { pointer?.deallocate() }
}
