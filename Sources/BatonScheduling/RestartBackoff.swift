public import BatonCore
public import BatonJobGraph

/// Whether a job may restart after a failure, and after how long. Pure: the caller passes `now`.
/// What a strategy has counted is its `budget`, kept in the store so that a new leader goes on
/// with it rather than starting afresh.
public protocol RestartBackoffTimeStrategy: Sendable {
    /// Records a failure.
    mutating func notifyFailure(at now: MonotonicInstant)
    /// Whether the job may restart after the failures recorded so far.
    var canRestart: Bool { get }
    /// How long to wait before restarting.
    var backoffTime: Duration { get }
    /// What the strategy has counted so far.
    var budget: RestartBudget { get }
    /// Goes on from what a previous leader counted.
    mutating func resume(from budget: RestartBudget)
}

/// What a restart strategy has counted, as the store keeps it: failures so far, the times of the
/// recent ones (on the machine's monotonic clock, shared by the processes of one host), and the
/// current backoff.
public struct RestartBudget: Codable, Hashable, Sendable {
    public var failures: Int
    public var recentFailureNanos: [UInt64]
    public var backoffNanos: Int64

    public init(failures: Int = 0, recentFailureNanos: [UInt64] = [], backoffNanos: Int64 = 0) {
        self.failures = failures
        self.recentFailureNanos = recentFailureNanos
        self.backoffNanos = backoffNanos
    }
}

/// Never restarts.
public struct NoRestartStrategy: RestartBackoffTimeStrategy {
    public init() {}
    public mutating func notifyFailure(at now: MonotonicInstant) {}
    public var canRestart: Bool { false }
    public var backoffTime: Duration { .zero }
    public var budget: RestartBudget { RestartBudget() }
    public mutating func resume(from budget: RestartBudget) {}
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
    public var budget: RestartBudget { RestartBudget(failures: failures) }
    public mutating func resume(from budget: RestartBudget) { failures = budget.failures }
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
    public var budget: RestartBudget {
        RestartBudget(recentFailureNanos: lastFailure.map { [$0.nanoseconds] } ?? [], backoffNanos: backoffTime.nanosecondsClamped)
    }
    public mutating func resume(from budget: RestartBudget) {
        lastFailure = budget.recentFailureNanos.last.map { MonotonicInstant(nanoseconds: $0) }
        backoffTime = .nanoseconds(budget.backoffNanos)
    }
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
    public var budget: RestartBudget { RestartBudget(failures: recent.count, recentFailureNanos: recent.map(\.nanoseconds)) }
    public mutating func resume(from budget: RestartBudget) { recent = budget.recentFailureNanos.map { MonotonicInstant(nanoseconds: $0) } }
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
