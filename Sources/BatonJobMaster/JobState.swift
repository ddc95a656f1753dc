/// A job's state, as in Flink.
///
/// ```
/// CREATED -> RUNNING -> FINISHED
///              |  ^
///              v  |
///          RESTARTING            (a failover that restarts every task)
/// RUNNING/RESTARTING -> FAILING -> FAILED       (no restart left)
/// CREATED/RUNNING/RESTARTING/FAILING -> CANCELLING -> CANCELED
/// ```
public enum JobState: String, Hashable, Codable, Sendable, CaseIterable, CustomStringConvertible {
    case created = "CREATED"
    case running = "RUNNING"
    case failing = "FAILING"
    case failed = "FAILED"
    case cancelling = "CANCELLING"
    case canceled = "CANCELED"
    case finished = "FINISHED"
    case restarting = "RESTARTING"

    public var isTerminal: Bool { self == .failed || self == .canceled || self == .finished }

    public func canTransition(to next: JobState) -> Bool {
        switch (self, next) {
        case (.created, .running), (.created, .cancelling), (.created, .failing): true
        case (.running, .failing), (.running, .cancelling), (.running, .finished), (.running, .restarting): true
        case (.restarting, .running), (.restarting, .cancelling), (.restarting, .failing): true
        case (.failing, .failed), (.failing, .cancelling): true
        case (.cancelling, .canceled): true
        default: false
        }
    }

    public var description: String { rawValue }
}
