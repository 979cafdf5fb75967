import Foundation

/// The file part of a `multipart/form-data` body (RFC 7578), for `curl -F image=@photo.jpg`.
/// Only what an upload needs: the boundary from the Content-Type, and the first part that has a
/// filename or an image content type.
enum MultipartForm {
    static func firstFile(body: [UInt8], contentType: String) throws(ServerError) -> [UInt8] {
        guard let boundary = boundary(contentType) else {
            throw .badRequest("multipart/form-data without a boundary parameter in its Content-Type")
        }
        let delimiter = Array("--\(boundary)".utf8)
        var position = 0
        guard let first = find(delimiter, in: body, from: 0) else {
            throw .badRequest("multipart body: the boundary '\(boundary)' never appears")
        }
        position = first + delimiter.count
        while true {
            // After a delimiter: "--" ends the body, otherwise CRLF and the part's headers.
            if body.count >= position + 2, body[position] == UInt8(ascii: "-"), body[position + 1] == UInt8(ascii: "-") { break }
            guard let headersEnd = find(Array("\r\n\r\n".utf8), in: body, from: position) else {
                throw .badRequest("multipart body: a part's headers never end")
            }
            let headers = String(decoding: body[position..<headersEnd], as: UTF8.self).lowercased()
            let contentStart = headersEnd + 4
            guard let next = find(Array("\r\n".utf8) + delimiter, in: body, from: contentStart) else {
                throw .badRequest("multipart body: a part is not closed by the boundary")
            }
            if headers.contains("filename=") || headers.contains("content-type: image/") {
                return Array(body[contentStart..<next])
            }
            position = next + 2 + delimiter.count
        }
        throw .badRequest("multipart body has no file part: send the image with curl -F image=@photo.jpg")
    }

    private static func boundary(_ contentType: String) -> String? {
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, pair[0].lowercased() == "boundary" else { continue }
            let value = pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            return value.isEmpty || value.utf8.count > 70 ? nil : value
        }
        return nil
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard let firstByte = needle.first, haystack.count >= needle.count else { return nil }
        var index = start
        while index <= haystack.count - needle.count {
            if haystack[index] == firstByte && haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }
}
