/// Where the server is: `http://host:port[/prefix]`, or `host:port` as tritonclient takes it.
public struct BenchTarget: Sendable, Equatable {
    public let host: String
    public let port: Int
    /// A path prefix for servers mounted below `/` (no trailing slash; empty for none).
    public let prefix: String

    public init(parsing text: String) throws(BenchError) {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        if let scheme = rest.range(of: "://") {
            let name = rest[..<scheme.lowerBound].lowercased()
            guard name == "http" else {
                throw BenchError(.badURL, "\(text): only http:// URLs are supported (got \(name)://)")
            }
            rest = rest[scheme.upperBound...]
        }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        var path = String(rest[slash...])
        while path.hasSuffix("/") { path.removeLast() }
        guard !authority.isEmpty else { throw BenchError(.badURL, "\(text): the URL has no host") }
        let host: Substring
        let portText: Substring?
        if authority.hasPrefix("[") {
            // [::1]:8000
            guard let close = authority.firstIndex(of: "]") else { throw BenchError(.badURL, "\(text): unclosed '[' in the host") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            portText = after.hasPrefix(":") ? after.dropFirst() : nil
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
            portText = nil
        }
        var port = 80
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw BenchError(.badURL, "\(text): '\(portText)' is not a port (1-65535)")
            }
            port = value
        }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "@" || $0 == "?" || $0 == "#" }) else {
            throw BenchError(.badURL, "\(text): '\(host)' is not a host name")
        }
        self.host = String(host)
        self.port = port
        self.prefix = path
    }

    /// The value of the `Host` header.
    public var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == 80 ? name : "\(name):\(port)"
    }

    public var description: String { "http://\(hostHeader)\(prefix)" }

    /// `prefix + path`, where `path` starts with "/".
    public func path(_ path: String) -> String { prefix + path }
}
