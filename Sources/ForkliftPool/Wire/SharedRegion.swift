import CForkliftSys
import Foundation
import Glibc

/// Memory that the server and one worker both map (a memfd): the server writes a batch's large
/// tensors into it, and the worker reads them in place. A 600 KB image tensor then costs the
/// server one memcpy, where writing it through the socket cost a copy into the kernel and the
/// worker another out of it. The worker maps it read-only, so a worker cannot change what the
/// server sends the next one; and one batch is outstanding per worker, so the server never writes
/// while the worker reads.
final class SharedRegion: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let size: Int

    private init(base: UnsafeMutableRawPointer, size: Int) {
        self.base = base
        self.size = size
    }

    deinit { munmap(base, size) }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    /// A new region of `size` bytes, writable here. Returns it and its fd, which the caller sends
    /// to the worker and then closes.
    static func create(size: Int) throws(SocketError) -> (SharedRegion, Int32) {
        let fd = fl_memfd_create("forklift-batch")
        guard fd >= 0 else { throw .failed("memfd_create", errno) }
        guard ftruncate(fd, off_t(size)) == 0 else {
            let code = errno
            SocketIO.close(fd)
            throw .failed("ftruncate", code)
        }
        do {
            return (try map(fd, size: size, protection: PROT_READ | PROT_WRITE), fd)
        } catch {
            SocketIO.close(fd)
            throw error
        }
    }

    /// Maps a region that the server sent, read-only, after checking that the memory behind the
    /// fd is as large as announced (a shorter file would fault on access). Closes `fd`.
    static func attach(_ fd: Int32, size: Int) throws(SocketError) -> SharedRegion {
        defer { SocketIO.close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw .failed("fstat", errno) }
        guard size > 0, size <= Frame.maxPayload, Int(status.st_size) >= size else {
            throw .badFrame(FrameError("shared region of \(size) bytes announced, \(status.st_size) behind its fd"))
        }
        return try map(fd, size: size, protection: PROT_READ)
    }

    private static func map(_ fd: Int32, size: Int, protection: Int32) throws(SocketError) -> SharedRegion {
        let base = mmap(nil, size, protection, MAP_SHARED, fd, 0)
        guard let base, base != MAP_FAILED else { throw .failed("mmap", errno) }
        return SharedRegion(base: base, size: size)
    }
}

/// Places a frame's large items in a shared region, one after another, while the frame is
/// encoded. Offsets are aligned, so the worker can read elements in place.
final class RegionWriter {
    let region: SharedRegion
    private(set) var used = 0
    static let alignment = 64

    init(region: SharedRegion) { self.region = region }

    /// Copies `bytes` into the region; nil when they do not fit (the item then goes inline).
    func place(_ bytes: TensorBytes) -> UInt64? {
        let offset = Self.aligned(used)
        guard bytes.count <= region.size - min(offset, region.size) else { return nil }
        bytes.copy(to: region.base + offset)
        used = offset + bytes.count
        return UInt64(offset)
    }

    /// Bytes a frame's items need in a region, with alignment: what `place` would use for them.
    static func bytesNeeded(for items: [WireTensor], directItemBytes: Int = Frame.directItemBytes) -> Int {
        items.reduce(0) { total, item in item.bytes.count >= directItemBytes ? aligned(total) + item.bytes.count : total }
    }

    /// The first aligned offset at or after `offset`.
    private static func aligned(_ offset: Int) -> Int {
        (offset + alignment - 1) / alignment * alignment
    }
}
