import ArgumentParser

/// Checks of numeric flags that later become integer nanoseconds or counts. `Double` parses
/// "inf" and "1e30", and converting either to an integer traps, so such a value must fail here
/// with a message instead.
enum OptionChecks {
    /// About 31 years: in nanoseconds it still fits an Int64.
    static let longestSeconds = 1e9

    enum TimeUnit {
        case seconds, milliseconds

        var most: Double { self == .seconds ? longestSeconds : longestSeconds * 1000 }
        var mostText: String { self == .seconds ? "1e9 seconds" : "1e12 milliseconds" }
    }

    /// A time in `unit`: positive (or zero, when allowed) and at most `longestSeconds`.
    static func time(_ value: Double, _ flag: String, in unit: TimeUnit = .seconds, zeroAllowed: Bool = false) throws(ValidationError) {
        guard value >= 0, value <= unit.most, zeroAllowed || value > 0 else {
            throw ValidationError("\(flag) must be \(zeroAllowed ? "at least 0" : "positive") and at most \(unit.mostText)")
        }
    }
}
