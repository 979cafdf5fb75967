import Foundation
import Testing

@testable import ForkliftServer

/// The parser's own decimal conversion must give strtod's correctly rounded answer bit for bit.
@Suite struct DecimalConversionTests {
    private func parsedDouble(_ text: String) throws -> Double? {
        guard case .array(let elements) = try JSONParser.parse(Array("[\(text)]".utf8)), case .double(let value)? = elements.first else {
            return nil
        }
        return value
    }

    private func strtodValue(_ text: String) -> Double { text.withCString { strtod($0, nil) } }

    @Test func agreesWithStrtodOnRandomLiterals() throws {
        var generator = SystemRandomNumberGenerator()
        var mismatches: [String] = []
        for round in 0..<20_000 {
            let magnitude = Double.random(in: -30...30, using: &generator)
            let value = Double.random(in: -1...1, using: &generator) * pow(10, magnitude)
            let formats = [
                "\(value)", String(format: "%.17g", value), String(format: "%.9g", Double(Float(value))),
                "\(Double(Float(value)))", String(format: "%.20e", value), String(format: "%.3f", value),
            ]
            for text in formats where text.contains(".") || text.contains("e") {
                let literal = text.replacingOccurrences(of: "inf", with: "1e999")
                guard let parsed = try parsedDouble(literal) else {
                    mismatches.append("\(literal): not a double")
                    continue
                }
                if parsed.bitPattern != strtodValue(literal).bitPattern {
                    mismatches.append("\(literal) (round \(round)): \(parsed) vs strtod \(strtodValue(literal))")
                }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5))")
    }

    @Test func edgeLiterals() throws {
        let literals = [
            "0.0", "-0.0", "1e-400", "1e400", "-1e400", "9007199254740993.0", "9007199254740992.5", "0.1", "1.7976931348623157e308",
            "4.9406564584124654e-324", "2.2250738585072014e-308", "123456789012345678901234567890.5", "0.000000000000000000000000001234",
            "1E+2", "1e-7", "0.30000000000000004", "5e-324", "1.00000000000000011102230246251565404236316680908203125",
        ]
        for literal in literals {
            let parsed = try #require(try parsedDouble(literal), "\(literal)")
            #expect(parsed.bitPattern == strtodValue(literal).bitPattern, "\(literal): \(parsed) vs \(strtodValue(literal))")
        }
    }
}

@Suite struct IntegerLiteralTests {
    private func parsed(_ text: String) throws -> JSON? {
        guard case .array(let elements) = try JSONParser.parse(Array("[\(text)]".utf8)) else { return nil }
        return elements.first
    }

    @Test func int64BoundsStayExactAndLargerIntegersBecomeDoubles() throws {
        #expect(try parsed("9223372036854775807") == .int(Int64.max))
        #expect(try parsed("-9223372036854775808") == .int(Int64.min))
        #expect(try parsed("-0") == .int(0))
        #expect(try parsed("-42") == .int(-42))
        #expect(try parsed("9223372036854775808") == .double(9_223_372_036_854_775_808))
        #expect(try parsed("-9223372036854775809") == .double(-9_223_372_036_854_775_808))  // the nearest Double
        #expect(try parsed("123456789012345678901") == .double(123_456_789_012_345_683_968))  // the nearest Double
    }
}
