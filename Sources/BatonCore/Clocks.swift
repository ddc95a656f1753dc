#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The time sources a shell passes into pure code. Pure code never reads a clock itself: it gets
/// `now` as an argument. Tests and the simulator pass their own instants.
public protocol TimeSource: Sendable {
    /// Now, on the machine-wide monotonic clock.
    func monotonicNow() -> MonotonicInstant
    /// Now, on the wall clock.
    func wallNow() -> WallTime
}

/// The operating system's clocks: `CLOCK_MONOTONIC` and `CLOCK_REALTIME`.
public struct SystemTimeSource: TimeSource {
    public init() {}

    public func monotonicNow() -> MonotonicInstant {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return MonotonicInstant(nanoseconds: UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec))
    }

    public func wallNow() -> WallTime {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return WallTime(millisecondsSince1970: Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000)
    }
}
