public import BatonCore
public import BatonJobGraph

/// Whether a job may restart after a failure, and after how long. Pure: the caller passes `now`.
public protocol RestartBackoffTimeStrategy: Sendable {
    /// Records a failure.
    mutating func notifyFailure(at now: MonotonicInstant)
    /// Whether the job may restart after the failures recorded so far.
    var canRestart: Bool { get }
    /// How long to wait before restarting.
    var backoffTime: Duration { get }
}

/// Never restarts.
public struct NoRestartStrategy: RestartBackoffTimeStrategy {
    public init() {}
    public mutating func notifyFailure(at now: MonotonicInstant) {}
    public var canRestart: Bool { false }
    public var backoffTime: Duration { .zero }
}

/// Up to `maxAttempts` restarts, each after `delay`.
public struct FixedDelayRestartStrategy: RestartBackoffTimeStrategy {
    public let maxAttempts: Int
    public let delay: Duration
    public private(set) var failures = 0

    public init(maxAttempts: Int, delay: Duration) {
        self.maxAttempts = maxAttempts
        self.delay = delay
    }

    public mutating func notifyFailure(at now: MonotonicInstant) { failures += 1 }
    public var canRestart: Bool { failures <= maxAttempts }
    public var backoffTime: Duration { delay }
}

/// Delays growing from `initial` by `multiplier` per failure up to `maximum`; after `resetAfter`
/// without a failure the next delay is `initial` again. Always restarts.
public struct ExponentialDelayRestartStrategy: RestartBackoffTimeStrategy {
    public let initial: Duration
    public let maximum: Duration
    public let multiplier: Double
    public let resetAfter: Duration
    public private(set) var backoffTime: Duration = .zero
    private var lastFailure: MonotonicInstant?

    public init(initial: Duration, maximum: Duration, multiplier: Double, resetAfter: Duration) {
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.resetAfter = resetAfter
    }

    public mutating func notifyFailure(at now: MonotonicInstant) {
        if let lastFailure, now.since(lastFailure) < resetAfter {
            backoffTime = min(maximum, backoffTime * multiplier)
        } else {
            backoffTime = initial
        }
        lastFailure = now
    }

    public var canRestart: Bool { true }
}

/// Restarts after `delay` as long as no more than `maxFailures` failures fall within any
/// `interval`.
public struct FailureRateRestartStrategy: RestartBackoffTimeStrategy {
    public let maxFailures: Int
    public let interval: Duration
    public let delay: Duration
    private var recent: [MonotonicInstant] = []

    public init(maxFailures: Int, interval: Duration, delay: Duration) {
        self.maxFailures = maxFailures
        self.interval = interval
        self.delay = delay
    }

    public mutating func notifyFailure(at now: MonotonicInstant) {
        recent.append(now)
        recent.removeAll { now.since($0) > interval }
    }

    public var canRestart: Bool { recent.count <= maxFailures }
    public var backoffTime: Duration { delay }
}

extension RestartStrategySpec {
    public func makeStrategy() -> any RestartBackoffTimeStrategy {
        switch self {
        case .none: NoRestartStrategy()
        case .fixedDelay(let attempts, let delay): FixedDelayRestartStrategy(maxAttempts: attempts, delay: delay)
        case .exponentialBackoff(let initial, let max, let multiplier, let resetAfter):
            ExponentialDelayRestartStrategy(initial: initial, maximum: max, multiplier: multiplier, resetAfter: resetAfter)
        case .failureRate(let failures, let interval, let delay):
            FailureRateRestartStrategy(maxFailures: failures, interval: interval, delay: delay)
        }
    }
}
