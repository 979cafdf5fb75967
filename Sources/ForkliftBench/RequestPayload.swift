import Foundation
import NIOCore
import NIOHTTP1

/// One request the load generator sends again and again, encoded once: every send writes the same
/// shared `ByteBuffer` (no per-request encoding or copying).
public struct RequestPayload: Sendable {
    public let method: HTTPMethod
    public let path: String
    /// The whole request as it goes on the wire (head and body).
    public let wire: ByteBuffer
    /// Samples the request carries (its batch size), for samples/s.
    public let samples: Int

    public init(
        method: HTTPMethod, path: String, host: String, contentType: String?, extraHeaders: [(String, String)] = [],
        body: [UInt8]?, samples: Int
    ) {
        self.method = method
        self.path = path
        var text = "\(method.rawValue) \(path) HTTP/1.1\r\nHost: \(host)\r\n"
        if let contentType { text += "Content-Type: \(contentType)\r\n" }
        for (name, value) in extraHeaders { text += "\(name): \(value)\r\n" }
        text += "Content-Length: \(body?.count ?? 0)\r\n\r\n"
        var wire = ByteBuffer(string: text)
        if let body { wire.writeBytes(body) }
        self.wire = wire
        self.samples = samples
    }

    /// A V2 infer request for `tensors`: JSON tensors, or the binary extension (JSON header then raw bytes,
    /// with outputs asked for in binary too so that the server does not spend time printing numbers).
    public static func infer(target: BenchTarget, model: String, tensors: [V2Tensor], samples: Int, binary: Bool) throws(BenchError)
        -> RequestPayload
    {
        var json = "{\"inputs\":["
        for (index, tensor) in tensors.enumerated() {
            if index > 0 { json += "," }
            json += "{\"name\":\(quoted(tensor.name)),\"shape\":[\(tensor.shape.map(String.init).joined(separator: ","))],"
            json += "\"datatype\":\(quoted(tensor.datatype)),"
            if binary {
                json += "\"parameters\":{\"binary_data_size\":\(tensor.bytes.count)}}"
            } else {
                json += "\"data\":\(try tensor.jsonData())}"
            }
        }
        json += "]"
        if binary { json += ",\"parameters\":{\"binary_data_output\":true}" }
        json += "}"
        var body = Array(json.utf8)
        let path = target.path("/v2/models/\(model)/infer")
        if binary {
            let headerLength = body.count
            for tensor in tensors { body += tensor.bytes }
            return RequestPayload(
                method: .POST, path: path, host: target.hostHeader, contentType: "application/octet-stream",
                extraHeaders: [("Inference-Header-Content-Length", String(headerLength))], body: body, samples: samples)
        }
        return RequestPayload(
            method: .POST, path: path, host: target.hostHeader, contentType: "application/json", body: body, samples: samples)
    }

    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case _ where scalar.value < 0x20: result += String(format: "\\u%04x", scalar.value)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
