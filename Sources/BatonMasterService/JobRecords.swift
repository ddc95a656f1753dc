public import BatonCore
import BatonHAStore
public import BatonJobGraph

/// A submitted job as the HA store keeps it (namespace `jobs`, key: the job id).
public struct JobRecord: Codable, Sendable, Hashable {
    public var graph: JobGraph
    public var state: String
    public var submittedAt: WallTime
    public var restarts: Int
    public var failure: String?

    public init(graph: JobGraph, state: String, submittedAt: WallTime, restarts: Int, failure: String?) {
        self.graph = graph
        self.state = state
        self.submittedAt = submittedAt
        self.restarts = restarts
        self.failure = failure
    }
}

/// Keys of the job and execution-graph namespaces.
public enum JobKeys {
    public static func job(_ id: JobID) -> [UInt8] { StoreKey.text(id.rawValue) }

    /// `job id, 0x00, sequence`: the change records of a job in order.
    public static func change(_ id: JobID, _ sequence: UInt64) -> [UInt8] {
        StoreKey.text(id.rawValue) + [0] + StoreKey.uint64(sequence)
    }

    public static func changes(_ id: JobID) -> [UInt8] { StoreKey.text(id.rawValue) + [0] }
}
