import Foundation
@preconcurrency import Glibc

/// An HTTP/1.1 response as the test client read it.
struct HTTPReply: Sendable {
    var status: Int
    /// Header names lowercased.
    var headers: [String: String]
    var body: [UInt8]
    /// Statuses of 1xx responses that came before the final one.
    var interimStatuses: [Int] = []

    var text: String { String(decoding: body, as: UTF8.self) }
}

struct HTTPClientError: Error, CustomStringConvertible {
    let description: String
}

/// A blocking HTTP/1.1 client on a plain socket, one connection per request (`Connection: close`),
/// so tests control every header byte: no Content-Type unless given, exact bodies.
enum RawHTTP {
    static func request(
        port: Int, _ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8] = [],
        afterSend: () -> Void = {}
    ) throws -> HTTPReply {
        let fd = try connection(port: port)
        defer { close(fd) }
        let head = requestHead(
            method, path, fields: [("Host", "127.0.0.1:\(port)"), ("Connection", "close")] + headers, bodyCount: body.count)
        var interim: [UInt8] = []
        if headers.contains(where: { $0.0.lowercased() == "expect" }) {
            // Send the head alone and wait for "100 Continue" before the body, as curl does.
            try sendAll(fd, head)
            interim = try readHead(fd)
            try sendAll(fd, body)
        } else {
            try sendAll(fd, head + body)
        }
        afterSend()
        var reply = try parse(interim + readToEnd(fd, strict: true))
        if !interim.isEmpty,
            let code = String(decoding: interim, as: UTF8.self).split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        {
            reply.interimStatuses = [code]
        }
        return reply
    }

    /// Reads one response head (through the blank line) byte by byte.
    static func readHead(_ fd: Int32) throws -> [UInt8] {
        var head: [UInt8] = []
        var byte: UInt8 = 0
        while !(head.count >= 4 && Array(head.suffix(4)) == [13, 10, 13, 10]) {
            guard recv(fd, &byte, 1, 0) == 1 else { throw HTTPClientError(description: "connection closed in a response head") }
            head.append(byte)
        }
        return head
    }

    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 {
                if errno == EINTR { continue }
                throw HTTPClientError(description: "send: errno \(errno)")
            }
            offset += sent
        }
    }

    static func parse(_ allBytes: [UInt8]) throws -> HTTPReply {
        var bytes = allBytes
        // Skip interim 1xx responses: the final one follows them.
        while bytes.starts(with: Array("HTTP/1.1 1".utf8)), let end = headEnd(bytes) {
            bytes = Array(bytes[(end + 4)...])
        }
        guard let end = headEnd(bytes) else {
            throw HTTPClientError(description: "no HTTP header in \(bytes.count) bytes")
        }
        let lines = String(decoding: bytes[0..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw HTTPClientError(description: "bad status line \(lines[0])")
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(bytes[(end + 4)...])
        if let length = headers["content-length"].flatMap({ Int($0) }), length <= body.count {
            body = Array(body[0..<length])
        } else if headers["transfer-encoding"]?.lowercased() == "chunked" {
            body = try dechunk(body)
        }
        return HTTPReply(status: status, headers: headers, body: body)
    }

    static func headEnd(_ bytes: [UInt8]) -> Int? {
        let separator: [UInt8] = [13, 10, 13, 10]
        return (0..<max(0, bytes.count - 3)).first { Array(bytes[$0..<$0 + 4]) == separator }
    }

    static func dechunk(_ bytes: [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            guard let lineEnd = (index..<bytes.count - 1).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 }),
                let size = Int(String(decoding: bytes[index..<lineEnd], as: UTF8.self).split(separator: ";")[0], radix: 16)
            else { throw HTTPClientError(description: "bad chunk") }
            if size == 0 { break }
            out += bytes[(lineEnd + 2)..<(lineEnd + 2 + size)]
            index = lineEnd + 2 + size + 2
        }
        return out
    }

    static func get(port: Int, _ path: String) throws -> HTTPReply { try request(port: port, "GET", path) }

    /// One keep-alive request's bytes, for `pipelined`.
    static func message(_ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8] = []) -> [UInt8] {
        requestHead(method, path, fields: [("Host", "127.0.0.1")] + headers, bodyCount: body.count) + body
    }

    /// The request line, `fields` in order, a Content-Length for a POST or a body, the blank line.
    static func requestHead(_ method: String, _ path: String, fields: [(String, String)], bodyCount: Int) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\n"
        for (name, value) in fields { head += "\(name): \(value)\r\n" }
        if method == "POST" || bodyCount > 0 { head += "Content-Length: \(bodyCount)\r\n" }
        return Array((head + "\r\n").utf8)
    }

    /// A TCP connection to 127.0.0.1:`port`; the caller closes it.
    static func connection(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HTTPClientError(description: "socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let code = errno
            close(fd)
            throw HTTPClientError(description: "connect: errno \(code)")
        }
        return fd
    }

    /// Sends `bytes` as they are (head and body, however malformed), shuts the sending side and
    /// reads until the server closes; returns the first response. A server that stops reading
    /// early (a bad head, a body past the limit) may refuse the rest of the bytes: its answer
    /// still counts.
    static func exchange(port: Int, _ bytes: [UInt8]) throws -> HTTPReply { try parse(exchangeRaw(port: port, bytes)) }

    /// `exchange`'s bytes as they came, interim responses included.
    static func exchangeRaw(port: Int, _ bytes: [UInt8]) throws -> [UInt8] {
        let fd = try connection(port: port)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        try? sendAll(fd, bytes)
        shutdown(fd, Int32(SHUT_WR))
        return try readToEnd(fd, strict: false)
    }

    /// Reads until the server closes. With `strict`, a failed recv throws; otherwise it ends the
    /// read like a close does, since a server that refused part of a damaged request may reset.
    static func readToEnd(_ fd: Int32, strict: Bool) throws -> [UInt8] {
        var received: [UInt8] = []
        while true {
            let count = receive(fd, appendingTo: &received)
            if count > 0 { continue }
            if count < 0 && strict { throw HTTPClientError(description: "recv: errno \(errno) after \(received.count) bytes") }
            return received
        }
    }

    /// One recv onto the end of `buffer`, retried on EINTR: the bytes read, 0 at the end of the
    /// stream, or -1 on an error (in `errno`).
    static func receive(_ fd: Int32, appendingTo buffer: inout [UInt8]) -> Int {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            if count > 0 { buffer += chunk[0..<count] }
            return count
        }
    }

    /// Sends every request on one connection in a single write, before reading anything, and
    /// returns the responses in the order they came (each must carry a Content-Length). With
    /// `halfClose`, the client shuts its sending side after the requests, as some HTTP/1.0-era
    /// clients do, and the connection must end after the last response.
    static func pipelined(port: Int, _ messages: [[UInt8]], halfClose: Bool = false) throws -> [HTTPReply] {
        let fd = try connection(port: port)
        defer { close(fd) }
        // A response that never comes fails the test rather than hanging it.
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        try sendAll(fd, messages.flatMap { $0 })
        if halfClose { shutdown(fd, Int32(SHUT_WR)) }
        var replies: [HTTPReply] = []
        var buffer: [UInt8] = []
        while replies.count < messages.count {
            if let end = headEnd(buffer) {
                let head = try parse(Array(buffer[0..<(end + 4)]))
                guard let length = head.headers["content-length"].flatMap({ Int($0) }) else {
                    throw HTTPClientError(description: "response \(replies.count) has no Content-Length")
                }
                if buffer.count >= end + 4 + length {
                    replies.append(
                        HTTPReply(status: head.status, headers: head.headers, body: Array(buffer[(end + 4)..<(end + 4 + length)])))
                    buffer.removeFirst(end + 4 + length)
                    continue
                }
            }
            let count = receive(fd, appendingTo: &buffer)
            guard count > 0 else {
                let why = count == 0 ? "the connection ended" : "recv failed (errno \(errno))"
                throw HTTPClientError(description: "\(why) after \(replies.count) of \(messages.count) responses")
            }
        }
        if halfClose {
            var rest: [UInt8] = []
            let count = receive(fd, appendingTo: &rest)
            guard count == 0, buffer.isEmpty else {
                throw HTTPClientError(description: "the connection went on after the last response (\(count) bytes)")
            }
        }
        return replies
    }

    static func postJSON(port: Int, _ path: String, _ json: String, headers: [(String, String)] = [("Content-Type", "application/json")])
        throws -> HTTPReply
    {
        try request(port: port, "POST", path, headers: headers, body: Array(json.utf8))
    }
}
