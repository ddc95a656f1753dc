/// A point on a monotonic clock, in nanoseconds since an arbitrary origin.
///
/// Leases and timeouts use monotonic instants only: wall time can jump. On Linux the system
/// monotonic clock (`CLOCK_MONOTONIC`) is shared by every process of a machine, so instants taken
/// by different processes of one machine can be compared; instants never travel between machines.
public struct MonotonicInstant: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var nanoseconds: UInt64

    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    public static let zero = MonotonicInstant(nanoseconds: 0)

    public static func < (lhs: MonotonicInstant, rhs: MonotonicInstant) -> Bool {
        lhs.nanoseconds < rhs.nanoseconds
    }

    public static func + (lhs: MonotonicInstant, rhs: Duration) -> MonotonicInstant {
        let delta = rhs.nanosecondsClamped
        if delta >= 0 {
            let (sum, overflow) = lhs.nanoseconds.addingReportingOverflow(UInt64(delta))
            return MonotonicInstant(nanoseconds: overflow ? .max : sum)
        }
        let magnitude = UInt64(-delta)
        return MonotonicInstant(nanoseconds: lhs.nanoseconds >= magnitude ? lhs.nanoseconds - magnitude : 0)
    }

    /// The time from `other` to `self`; negative when `other` is later.
    public func since(_ other: MonotonicInstant) -> Duration {
        if nanoseconds >= other.nanoseconds {
            return .nanoseconds(Int64(clamping: nanoseconds - other.nanoseconds))
        }
        return .nanoseconds(-Int64(clamping: other.nanoseconds - nanoseconds))
    }

    public var description: String { "mono+\(DurationText.format(.nanoseconds(Int64(clamping: nanoseconds))))" }
}

/// A point in wall-clock time, in milliseconds since 1970-01-01T00:00:00Z.
///
/// Used only for journal timestamps that people read and that outlive a process; never for leases.
public struct WallTime: Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    public var millisecondsSince1970: Int64

    public init(millisecondsSince1970: Int64) { self.millisecondsSince1970 = millisecondsSince1970 }

    public static func < (lhs: WallTime, rhs: WallTime) -> Bool {
        lhs.millisecondsSince1970 < rhs.millisecondsSince1970
    }

    public static func + (lhs: WallTime, rhs: Duration) -> WallTime {
        WallTime(millisecondsSince1970: lhs.millisecondsSince1970 + rhs.nanosecondsClamped / 1_000_000)
    }

    /// Milliseconds from `other` to `self`.
    public func millis(since other: WallTime) -> Int64 { millisecondsSince1970 - other.millisecondsSince1970 }

    /// ISO 8601 in UTC with milliseconds, e.g. `2026-11-25T16:05:31.042Z`.
    public var iso8601: String {
        let millis = ((millisecondsSince1970 % 1000) + 1000) % 1000
        var seconds = (millisecondsSince1970 - millis) / 1000
        let secondOfDay = ((seconds % 86_400) + 86_400) % 86_400
        seconds -= secondOfDay
        let days = seconds / 86_400
        let (year, month, day) = WallTime.civil(fromDays: days)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):"
            + "\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(millis, 3))Z"
    }

    public var description: String { iso8601 }

    /// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
    private static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

extension Duration {
    /// The duration in whole nanoseconds, clamped to `Int64`.
    public var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, overflow2) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow2 { return seconds < 0 ? .min : .max }
        return sum
    }

    /// The duration in milliseconds, as a floating-point number.
    public var milliseconds: Double { Double(nanosecondsClamped) / 1_000_000 }

    /// The duration in microseconds, as a floating-point number.
    public var microseconds: Double { Double(nanosecondsClamped) / 1_000 }
}
