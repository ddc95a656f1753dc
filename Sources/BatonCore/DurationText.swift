/// Durations as people write them in configs and as Baton prints them: `2s`, `500ms`, `1.5s`,
/// `1m`, `250us`, `1h`.
public enum DurationText {
    private static let units: [(suffix: String, nanoseconds: Double)] = [
        ("ns", 1), ("us", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ]

    /// Parses `text`, or returns nil when it is not a number followed by one of
    /// `ns`, `us`, `ms`, `s`, `m`, `h`.
    public static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingWhitespace()
        // Longest suffix first so that "ms" is not read as "m" + "s".
        for unit in units.sorted(by: { $0.suffix.count > $1.suffix.count }) where trimmed.hasSuffix(unit.suffix) {
            let number = trimmed.dropLast(unit.suffix.count)
            guard !number.isEmpty, number.allSatisfy({ $0.isNumber || $0 == "." }),
                let value = Double(number), value.isFinite, value >= 0
            else { return nil }
            let nanos = value * unit.nanoseconds
            guard nanos < Double(Int64.max) else { return nil }
            return .nanoseconds(Int64(nanos.rounded()))
        }
        return nil
    }

    /// Formats `duration` with the largest unit that keeps it readable: `2s`, `500ms`, `1.5s`.
    public static func format(_ duration: Duration) -> String {
        let nanos = duration.nanosecondsClamped
        let magnitude = nanos.magnitude
        let sign = nanos < 0 ? "-" : ""
        func trim(_ value: Double) -> String {
            let rounded = (value * 1000).rounded() / 1000
            return rounded == rounded.rounded() ? String(Int64(rounded)) : String(rounded)
        }
        switch magnitude {
        case 3_600_000_000_000...: return sign + trim(Double(magnitude) / 3_600_000_000_000) + "h"
        case 60_000_000_000...: return sign + trim(Double(magnitude) / 60_000_000_000) + "m"
        case 1_000_000_000...: return sign + trim(Double(magnitude) / 1_000_000_000) + "s"
        case 1_000_000...: return sign + trim(Double(magnitude) / 1_000_000) + "ms"
        case 1_000...: return sign + trim(Double(magnitude) / 1_000) + "us"
        default: return sign + String(magnitude) + "ns"
        }
    }
}

/// Sizes as people write them in configs: `512MiB`, `1GiB`, `64KiB`, `1048576`.
public enum ByteSizeText {
    private static let units: [(suffix: String, factor: UInt64)] = [
        ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
        ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000), ("B", 1),
    ]

    public static func parse(_ text: String) -> UInt64? {
        let trimmed = text.trimmingWhitespace()
        if let plain = UInt64(trimmed) { return plain }
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            guard let value = UInt64(trimmed.dropLast(unit.suffix.count).trimmingWhitespace()) else { return nil }
            let (product, overflow) = value.multipliedReportingOverflow(by: unit.factor)
            return overflow ? nil : product
        }
        return nil
    }

    public static func format(_ bytes: UInt64) -> String {
        for unit in units.prefix(4).reversed() where bytes >= unit.factor && bytes % unit.factor == 0 {
            return "\(bytes / unit.factor)\(unit.suffix)"
        }
        return "\(bytes)"
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}
