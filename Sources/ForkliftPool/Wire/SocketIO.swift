import CForkliftSys
import Foundation
import Glibc

/// What went wrong on a socket. `closed` and `failed` mean the peer is gone (a crash).
enum SocketError: Error, CustomStringConvertible {
    case closed
    case timedOut
    case failed(String, Int32)
    case badFrame(FrameError)

    var description: String {
        switch self {
        case .closed: "connection closed"
        case .timedOut: "timed out"
        case .failed(let call, let code): "\(call): \(String(cString: strerror(code)))"
        case .badFrame(let error): "malformed frame: \(error)"
        }
    }
}

/// Monotonic time in nanoseconds, for deadlines that wall-clock changes cannot move.
func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// Blocking-style reads and writes over a socket fd that loop over partial transfers and EINTR.
/// With a deadline, the fd should be non-blocking: the wait happens in poll() so it can end.
enum SocketIO {
    /// Sends every byte. `attached`, if given, travels with the first byte as SCM_RIGHTS; the
    /// receiver must read that byte with `receivedFD`.
    static func writeAll(
        _ fd: Int32, _ bytes: UnsafeRawBufferPointer, deadline: UInt64? = nil, attaching attached: Int32? = nil
    ) throws(SocketError) {
        var offset = 0
        var attached = attached
        while offset < bytes.count {
            guard let base = bytes.baseAddress else { return }
            let sent =
                if let descriptor = attached {
                    fl_send_with_fd(fd, base + offset, bytes.count - offset, descriptor)
                } else {
                    send(fd, base + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                }
            if sent > 0 {
                offset += sent
                attached = nil
                continue
            }
            let code = errno
            if sent < 0 && code == EINTR { continue }
            if sent < 0 && (code == EAGAIN || code == EWOULDBLOCK) {
                try wait(fd, events: Int16(POLLOUT), deadline: deadline)
                continue
            }
            if sent < 0 && (code == EPIPE || code == ECONNRESET) { throw .closed }
            throw .failed(attached == nil ? "send" : "sendmsg", sent < 0 ? code : EIO)
        }
    }

    /// Fills `buffer`. With `receivedFD`, an fd that arrives with the bytes is stored there
    /// (close-on-exec, owned by the caller; a later one replaces it, so one message carries one).
    static func readExactly(
        _ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, deadline: UInt64? = nil,
        receivedFD: UnsafeMutablePointer<Int32>? = nil
    ) throws(SocketError) {
        var offset = 0
        while offset < buffer.count {
            guard let base = buffer.baseAddress else { return }
            let got =
                if let receivedFD {
                    fl_recv_with_fd(fd, base + offset, buffer.count - offset, receivedFD)
                } else {
                    recv(fd, base + offset, buffer.count - offset, 0)
                }
            if got > 0 {
                offset += got
                continue
            }
            if got == 0 { throw .closed }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK {
                try wait(fd, events: Int16(POLLIN), deadline: deadline)
                continue
            }
            if code == ECONNRESET { throw .closed }
            throw .failed(receivedFD == nil ? "recv" : "recvmsg", code)
        }
    }

    /// Waits until `fd` is ready for `events` or the deadline passes. Hang-up counts as ready:
    /// the next read or write then reports it.
    static func wait(_ fd: Int32, events: Int16, deadline: UInt64?) throws(SocketError) {
        while true {
            var timeout: Int32 = -1
            if let deadline {
                let now = monotonicNanoseconds()
                guard now < deadline else { throw .timedOut }
                timeout = Int32(clamping: (deadline - now + 999_999) / 1_000_000)
            }
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&entry, 1, timeout)
            if ready > 0 { return }
            if ready == 0 { continue }  // re-check the deadline
            if errno == EINTR { continue }
            throw .failed("poll", errno)
        }
    }

    /// True when a socket that should be quiet (an idle worker's) is readable or hung up: the peer
    /// died or sent something unasked.
    static func hasEvent(_ fd: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while true {
            let ready = poll(&entry, 1, 0)
            if ready >= 0 { return ready > 0 }
            if errno != EINTR { return true }
        }
    }

    static func setNonBlocking(_ fd: Int32) throws(SocketError) {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { throw .failed("fcntl(F_GETFL)", errno) }
        guard fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else { throw .failed("fcntl(F_SETFL)", errno) }
    }

    /// A connected `SOCK_STREAM` pair, close-on-exec so a spawned zygote inherits neither end.
    static func socketPair() throws(SocketError) -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw .failed("socketpair", errno)
        }
        return (fds[0], fds[1])
    }

    /// Asks for a send buffer of `bytes` on each end, so that a frame up to that size is written in
    /// one call while the peer reads it, instead of in 208 KB turns (Linux's default) that wait for
    /// the reader between them. Best effort: the kernel caps it at net.core.wmem_max.
    static func enlargeSendBuffers(_ fds: Int32..., bytes: Int) {
        var size = Int32(clamping: bytes)
        for fd in fds {
            _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// close() that ignores EINTR (Linux always releases the fd) and reports nothing else useful.
    static func close(_ fd: Int32) {
        guard fd >= 0 else { return }
        _ = Glibc.close(fd)
    }
}

/// Frames over a socket.
enum FrameIO {
    /// Writes the frame, with its `attachedFD` on the first byte and, given `region`, its large
    /// items copied there instead of sent.
    static func write(_ frame: Frame, to fd: Int32, deadline: UInt64? = nil, placingIn region: RegionWriter? = nil)
        throws(SocketError)
    {
        var attached = frame.attachedFD
        for segment in frame.segments(placingIn: region) {
            try segment.withBytes { (raw) throws(SocketError) in try SocketIO.writeAll(fd, raw, deadline: deadline, attaching: attached) }
            attached = nil
        }
    }

    /// Reads one frame; the header is checked before the payload is allocated. With
    /// `sharingPayload`, items are slices of the payload rather than copies: for a reader that
    /// copies them on with raw byte moves (a worker stacking its batch), not one that binds their
    /// memory to an element type. Items in the shared region point into `region`. With
    /// `receivingFDs`, an fd sent with the frame becomes its `attachedFD` (owned by the caller).
    static func read(
        from fd: Int32, deadline: UInt64? = nil, sharingPayload: Bool = false, region: SharedRegion? = nil,
        receivingFDs: Bool = false
    ) throws(SocketError) -> Frame {
        var headerBytes = [UInt8](repeating: 0, count: Frame.headerSize)
        var received: Int32 = -1
        try headerBytes.withMutableBytes { (raw) throws(SocketError) in
            if receivingFDs {
                try SocketIO.readExactly(fd, raw, deadline: deadline, receivedFD: &received)
            } else {
                try SocketIO.readExactly(fd, raw, deadline: deadline)
            }
        }
        do throws(SocketError) {
            let header: Frame.Header
            do throws(FrameError) {
                header = try headerBytes.withBytes { (raw) throws(FrameError) in try Frame.Header(parsing: raw) }
            } catch {
                throw .badFrame(error)
            }
            let payload = try readPayload(header.payloadLength, from: fd, deadline: deadline)
            var frame: Frame
            do throws(FrameError) {
                frame = try payload.withBytes { (raw) throws(FrameError) in
                    try Frame(header: header, payload: raw, storage: sharingPayload ? payload : nil, region: region?.bytes)
                }
            } catch {
                throw .badFrame(error)
            }
            if received >= 0 { frame.attachedFD = received }
            return frame
        } catch {
            SocketIO.close(received)
            throw error
        }
    }

    /// `count` bytes from the socket, in storage that is not zeroed first.
    private static func readPayload(_ count: Int, from fd: Int32, deadline: UInt64?) throws(SocketError) -> Data {
        guard count > 0 else { return Data() }
        guard let memory = malloc(count) else { throw .failed("malloc", ENOMEM) }
        do {
            try SocketIO.readExactly(fd, UnsafeMutableRawBufferPointer(start: memory, count: count), deadline: deadline)
        } catch {
            free(memory)
            throw error
        }
        // Wrapped only once filled: `Data` may copy a small buffer and free it at once.
        return Data(bytesNoCopy: memory, count: count, deallocator: .free)
    }
}
