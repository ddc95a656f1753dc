public import BatonCore
public import BatonExecutionGraph
public import BatonJobGraph

/// A new leader's reconciliation, as a pure state machine: what the recovered ExecutionGraphs
/// expect the task executors to hold, against what the task executors report when they
/// register at the new epoch (the README's "Master failover").
///
/// Per reported attempt: expected and alive -> adopted (it keeps its attempt and its process);
/// reported finished -> recorded; reported failed -> the job's failover strategy; reported but
/// unknown or stale -> cancelled. An expected attempt that no task executor reported when the
/// window closes counts as failed (its task executor, if it never came back, as lost).
/// Reconciliation is done when every expected attempt is accounted for, or when the window closes.
public struct Reconciliation: Sendable {
    public struct Summary: Codable, Hashable, Sendable {
        public var adopted = 0
        public var finished = 0
        public var restarted = 0
        public var cancelled = 0
        public init() {}
    }

    public enum Decision: Hashable, Sendable {
        /// Hand the report to the job's JobMaster (`reconcile`).
        case reconcile
        /// Tell the task executor to cancel the attempt.
        case cancel
        /// Nothing to do (a stale attempt that already ended).
        case ignore
    }

    private var expected: [JobID: [ExecutionAttemptID: TaskLocation]]
    /// Every task executor the running jobs name (also those that only hold finished tasks'
    /// results): one that does not come back is lost.
    private let known: Set<ResourceID>
    private var registered: Set<ResourceID> = []
    public private(set) var summary = Summary()
    public private(set) var windowClosed = false

    public init(expected: [JobID: [(attempt: ExecutionAttemptID, location: TaskLocation)]], known: Set<ResourceID> = []) {
        self.expected = expected.mapValues { Dictionary($0.map { ($0.attempt, $0.location) }, uniquingKeysWith: { first, _ in first }) }
        self.expected = self.expected.filter { !$0.value.isEmpty }
        self.known = known
    }

    /// Every expected attempt is accounted for, or the window closed.
    public var isDone: Bool { windowClosed || expected.isEmpty }

    /// The task executors that hold expected attempts.
    public var expectedTaskExecutors: Set<ResourceID> {
        Set(expected.values.flatMap { $0.values.map(\.taskExecutor) })
    }

    /// Whether the reconciliation still waits for a report of `attempt`.
    public func awaits(job: JobID, attempt: ExecutionAttemptID) -> Bool { expected[job]?[attempt] != nil }

    /// A task executor registered (its reports follow).
    public mutating func registered(_ taskExecutor: ResourceID) {
        registered.insert(taskExecutor)
    }

    /// One attempt a task executor reported; `isCurrent` says whether the job knows it as the
    /// current attempt of its vertex.
    public mutating func reported(job: JobID, attempt: ExecutionAttemptID, state: ExecutionState, isCurrent: Bool) -> Decision {
        if expected[job]?.removeValue(forKey: attempt) != nil {
            if expected[job]?.isEmpty == true { expected[job] = nil }
            switch state {
            case .finished: summary.finished += 1
            case .failed: summary.restarted += 1
            case .canceled: break
            default: summary.adopted += 1
            }
            return .reconcile
        }
        if isCurrent { return .reconcile }
        if state.isTerminal { return .ignore }
        summary.cancelled += 1
        return .cancel
    }

    /// The window closed: the expected attempts nobody reported, split into those whose task
    /// executor never registered again (lost) and those a registered task executor no longer holds.
    public mutating func closeWindow() -> (lostTaskExecutors: [ResourceID], unreported: [JobID: [ExecutionAttemptID]]) {
        guard !windowClosed else { return ([], [:]) }
        windowClosed = true
        let lost = expectedTaskExecutors.union(known).subtracting(registered).sorted()
        var unreported: [JobID: [ExecutionAttemptID]] = [:]
        for (job, attempts) in expected {
            for (attempt, location) in attempts {
                summary.restarted += 1
                if registered.contains(location.taskExecutor) { unreported[job, default: []].append(attempt) }
            }
        }
        expected.removeAll()
        return (lost, unreported.mapValues { $0.sorted { $0.vertex < $1.vertex } })
    }
}
