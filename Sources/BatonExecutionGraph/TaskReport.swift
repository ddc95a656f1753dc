public import BatonCore
public import BatonJobGraph

/// One task attempt as a task executor knows it: its job and its execution attempt.
public struct TaskAttempt: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var job: JobID
    public var attempt: ExecutionAttemptID

    public init(job: JobID, attempt: ExecutionAttemptID) {
        self.job = job
        self.attempt = attempt
    }

    public static func < (lhs: TaskAttempt, rhs: TaskAttempt) -> Bool {
        (lhs.job.rawValue, lhs.attempt.vertex, lhs.attempt.attempt) < (rhs.job.rawValue, rhs.attempt.vertex, rhs.attempt.attempt)
    }

    public var description: String { "\(job)/\(attempt)" }
}

/// What a task executor tells the leader about one of its attempts.
public struct TaskReport: Hashable, Sendable {
    public var attempt: TaskAttempt
    public var state: ExecutionState
    public var failure: String?
    public var allocation: AllocationID

    public init(attempt: TaskAttempt, state: ExecutionState, failure: String? = nil, allocation: AllocationID) {
        self.attempt = attempt
        self.state = state
        self.failure = failure
        self.allocation = allocation
    }
}
