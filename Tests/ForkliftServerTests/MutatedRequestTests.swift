import ForkliftTestSupport
import Foundation
import Testing

@testable import ForkliftServer

/// Valid infer requests with random damage (bytes changed, dropped, inserted or repeated, in the
/// JSON body, the binary body, the header length or the request head) through a real server:
/// each gets an answer, a 4xx carries a JSON error, nothing gets a 5xx or kills a worker, and
/// afterwards a good request still gets the same answer as before.
@Suite(.serialized) struct MutatedRequestTests {
    static let cases = 600

    @Test func damagedRequestsGetClientErrorsAndHurtNothing() throws {
        let server = try ServerProcess(workers: 1)
        defer { server.stop() }
        let row = try Digits.rows()[0]
        let json = Array(Digits.jsonRequest(row).utf8)
        let binary = Digits.binaryRequest(row)
        let headerLength = try #require(binary.headers.first.flatMap { Int($0.1) })
        let before = try Digits.parseJSON(try RawHTTP.postJSON(port: server.port, "/v2/models/digits/infer", Digits.jsonRequest(row)))

        var random = SeededGenerator(seed: 2026)
        var statuses: [Int: Int] = [:]
        for index in 0..<Self.cases {
            let request: [UInt8]
            switch random.below(3) {
            case 0:
                let body = Self.damaged(json, &random)
                request = Self.head([("Content-Type", "application/json")], bodyCount: body.count) + body
            case 1:
                let body = Self.damaged(binary.body, &random)
                let declared = headerLength + [0, 0, 0, -1, 1, -50, 1000][random.below(7)]
                request = Self.head([(InferCall.headerLengthField, "\(declared)")], bodyCount: body.count) + body
            default:
                let head = Self.head([(InferCall.headerLengthField, "\(headerLength)")], bodyCount: binary.body.count)
                request = Self.damaged(head, &random) + binary.body
            }
            let reply = try RawHTTP.exchange(port: server.port, request)
            statuses[reply.status, default: 0] += 1
            #expect(reply.status == 200 || (400..<500).contains(reply.status), "case \(index): \(reply.status) \(reply.text)")
            if reply.status >= 400 && !reply.body.isEmpty {
                let error = try? JSONParser.parse(reply.body)["error"]
                guard case .string(let message)? = error, !message.isEmpty else {
                    Issue.record("case \(index): a \(reply.status) without a JSON error: \(reply.text)")
                    continue
                }
            }
        }
        #expect((statuses[400] ?? 0) > Self.cases / 2, "most damage is a bad request: \(statuses)")

        let after = try Digits.parseJSON(try RawHTTP.postJSON(port: server.port, "/v2/models/digits/infer", Digits.jsonRequest(row)))
        #expect(after.probabilities == before.probabilities && after.label == before.label)
        #expect(try RawHTTP.get(port: server.port, "/v2/health/ready").status == 200)
        let metrics = try RawHTTP.get(port: server.port, "/metrics").text
        #expect(!metrics.contains("forklift_worker_restarts_total{"), "no worker was lost")
    }

    static func head(_ fields: [(String, String)], bodyCount: Int) -> [UInt8] {
        RawHTTP.requestHead("POST", "/v2/models/digits/infer", fields: [("Host", "127.0.0.1")] + fields, bodyCount: bodyCount)
    }

    /// One to six edits: a byte changed, dropped, inserted (often JSON punctuation or a digit),
    /// or a short run repeated.
    static func damaged(_ bytes: [UInt8], _ random: inout SeededGenerator) -> [UInt8] {
        var out = bytes
        let inserts = Array(#"{}[]",:0123456789-eE.nulltruefalse\"#.utf8)
        for _ in 0..<(1 + random.below(6)) {
            let at = random.below(out.count + 1)
            switch random.below(4) {
            case 0 where at < out.count: out[at] = UInt8(truncatingIfNeeded: random.next())
            case 1 where at < out.count: out.remove(at: at)
            case 2: out.insert(inserts[random.below(inserts.count)], at: at)
            default: out.insert(contentsOf: out[at..<min(out.count, at + random.below(21))], at: at)
            }
        }
        return out
    }
}
