/// The state of one Execution (attempt) of an ExecutionVertex, as in Flink.
///
/// ```
/// CREATED -> SCHEDULED -> DEPLOYING -> INITIALIZING -> RUNNING -> FINISHED
///    |           |            |             |             |
///    +-----------+--> CANCELED  +-----------+-------------+--> CANCELING -> CANCELED
/// any non-terminal state -> FAILED
/// ```
public enum ExecutionState: UInt8, Hashable, Codable, Sendable, CaseIterable, CustomStringConvertible {
    case created = 0, scheduled, deploying, initializing, running, finished, canceling, canceled, failed

    public var isTerminal: Bool { self == .finished || self == .canceled || self == .failed }

    /// Whether an attempt may go from `self` to `next`.
    public func canTransition(to next: ExecutionState) -> Bool {
        switch (self, next) {
        case (.created, .scheduled), (.created, .canceled), (.created, .failed): true
        case (.scheduled, .deploying), (.scheduled, .canceled), (.scheduled, .failed): true
        case (.deploying, .initializing), (.deploying, .canceling), (.deploying, .failed): true
        case (.initializing, .running), (.initializing, .finished), (.initializing, .canceling), (.initializing, .failed): true
        case (.running, .finished), (.running, .canceling), (.running, .failed): true
        case (.canceling, .canceled), (.canceling, .failed): true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .created: "CREATED"
        case .scheduled: "SCHEDULED"
        case .deploying: "DEPLOYING"
        case .initializing: "INITIALIZING"
        case .running: "RUNNING"
        case .finished: "FINISHED"
        case .canceling: "CANCELING"
        case .canceled: "CANCELED"
        case .failed: "FAILED"
        }
    }
}
