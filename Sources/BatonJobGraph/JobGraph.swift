public import BatonCore

public enum JobKind: IdentifierKind {}
/// A job's id: 1 to 64 file-safe characters, given by the submitter or generated.
public typealias JobID = TypedIdentifier<JobKind>
public enum JobVertexKind: IdentifierKind {}
/// A vertex's id within its job (`source`, `count`).
public typealias JobVertexID = TypedIdentifier<JobVertexKind>
public enum SlotSharingGroupKind: IdentifierKind {}
/// The name of a slot sharing group.
public typealias SlotSharingGroupID = TypedIdentifier<SlotSharingGroupKind>

/// One operator of a vertex's chain, named as in the operator catalog (`sequence`, `map`,
/// `file-sink`), with its parameters as text (each operator reads and checks its own).
public struct OperatorSpec: Hashable, Codable, Sendable, CustomStringConvertible {
    public var name: String
    public var parameters: [String: String]

    public init(_ name: String, _ parameters: [String: String] = [:]) {
        self.name = name
        self.parameters = parameters
    }

    public var description: String {
        parameters.isEmpty ? name : "\(name)(\(parameters.keys.sorted().map { "\($0)=\(parameters[$0]!)" }.joined(separator: ", ")))"
    }
}

/// A JobGraph vertex: a chain of operators run as one task per subtask.
public struct JobVertex: Hashable, Codable, Sendable {
    public var id: JobVertexID
    public var name: String
    public var operators: [OperatorSpec]
    public var parallelism: Int
    public var maxParallelism: Int
    public var slotSharingGroup: SlotSharingGroupID
    /// What one subtask asks for; nil: unspecified (an equal share of a default slot).
    public var resources: ResourceProfile?

    public init(
        id: JobVertexID, name: String? = nil, operators: [OperatorSpec], parallelism: Int, maxParallelism: Int? = nil,
        slotSharingGroup: SlotSharingGroupID = "default", resources: ResourceProfile? = nil
    ) {
        self.id = id
        self.name = name ?? id.rawValue
        self.operators = operators
        self.parallelism = parallelism
        self.maxParallelism = maxParallelism ?? JobVertex.defaultMaxParallelism(for: parallelism)
        self.slotSharingGroup = slotSharingGroup
        self.resources = resources
    }

    /// The largest max parallelism (the number of key groups).
    public static let maxParallelismLimit = 32_768

    /// Flink's default: 1.5 × parallelism rounded up to a power of two, at least 128, at most 32768.
    public static func defaultMaxParallelism(for parallelism: Int) -> Int {
        var power = 1
        while power < parallelism + parallelism / 2 { power <<= 1 }
        return min(max(128, power), maxParallelismLimit)
    }
}

/// How records travel along an edge.
public enum DistributionPattern: String, Hashable, Codable, Sendable, CaseIterable {
    /// Subtask i sends to subtask i (equal parallelism required): a pointwise connection.
    case forward
    /// Round robin to every consumer subtask.
    case rebalance
    /// By the hash of a key field to every consumer subtask.
    case hash
    /// Every record to every consumer subtask.
    case broadcast

    /// Whether each producer subtask feeds one consumer subtask (else all of them).
    public var isPointwise: Bool { self == .forward }
}

/// What an edge's producer writes: a pipelined result is consumed while it is produced; a
/// blocking result is complete when its producer finishes, and kept until consumed.
public enum ResultPartitionType: String, Hashable, Codable, Sendable, CaseIterable {
    case pipelined, blocking
}

/// A JobGraph edge: the producer's result and how it is distributed to the consumer.
public struct JobEdge: Hashable, Codable, Sendable, CustomStringConvertible {
    public var source: JobVertexID
    public var target: JobVertexID
    public var pattern: DistributionPattern
    /// For `hash`: the key field.
    public var key: String?
    public var resultType: ResultPartitionType

    public init(
        source: JobVertexID, target: JobVertexID, pattern: DistributionPattern, key: String? = nil,
        resultType: ResultPartitionType = .pipelined
    ) {
        self.source = source
        self.target = target
        self.pattern = pattern
        self.key = key
        self.resultType = resultType
    }

    public var description: String { "\(source) -\(pattern.rawValue)/\(resultType.rawValue)-> \(target)" }
}

/// A job's runtime settings.
public struct JobConfiguration: Hashable, Codable, Sendable {
    public var scheduling: SchedulingStrategyName
    public var failover: FailoverStrategyName
    public var restart: RestartStrategySpec
    /// nil: no checkpoints.
    public var checkpointInterval: Duration?

    public init(
        scheduling: SchedulingStrategyName = .eager, failover: FailoverStrategyName = .region,
        restart: RestartStrategySpec = .fixedDelay(attempts: 3, delay: .seconds(1)), checkpointInterval: Duration? = nil
    ) {
        self.scheduling = scheduling
        self.failover = failover
        self.restart = restart
        self.checkpointInterval = checkpointInterval
    }
}

/// Which scheduling strategy deploys the job's tasks.
public struct SchedulingStrategyName: RawRepresentable, Hashable, Codable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    /// Every task at once (streaming).
    public static let eager = SchedulingStrategyName(rawValue: "eager")
    /// Sources first, consumers when their inputs are ready (batch).
    public static let lazyFromSources = SchedulingStrategyName(rawValue: "lazy-from-sources")
    public var description: String { rawValue }
}

/// Which tasks a failure restarts.
public enum FailoverStrategyName: String, Hashable, Codable, Sendable, CaseIterable {
    case restartAll = "restart-all"
    case restartIndividual = "restart-individual"
    case region
}

/// Whether and when a failed job restarts.
public enum RestartStrategySpec: Hashable, Codable, Sendable {
    /// Never restart: a failure fails the job.
    case none
    /// Up to `attempts` restarts, each after `delay`.
    case fixedDelay(attempts: Int, delay: Duration)
    /// Delays from `initial`, times `multiplier` after each failure, at most `max`; back to
    /// `initial` after `resetAfter` without failures.
    case exponentialBackoff(initial: Duration, max: Duration, multiplier: Double, resetAfter: Duration)
    /// Restart after `delay` unless more than `failures` failures happened within `interval`.
    case failureRate(failures: Int, interval: Duration, delay: Duration)
}

/// A job as submitted: vertices (operator chains) and edges (results), plus its configuration.
public struct JobGraph: Hashable, Codable, Sendable {
    public var id: JobID
    public var name: String
    public var vertices: [JobVertex]
    public var edges: [JobEdge]
    public var configuration: JobConfiguration

    public init(id: JobID, name: String, vertices: [JobVertex], edges: [JobEdge], configuration: JobConfiguration = JobConfiguration()) {
        self.id = id
        self.name = name
        self.vertices = vertices
        self.edges = edges
        self.configuration = configuration
    }

    public func vertex(_ id: JobVertexID) -> JobVertex? { vertices.first { $0.id == id } }

    public func inputs(of id: JobVertexID) -> [JobEdge] { edges.filter { $0.target == id } }
    public func outputs(of id: JobVertexID) -> [JobEdge] { edges.filter { $0.source == id } }

    /// How many subtasks the job has.
    public var subtaskCount: Int { vertices.reduce(0) { $0 + $1.parallelism } }

    /// The vertices in an order where every producer comes before its consumers (ties in
    /// declaration order); nil when the graph has a cycle.
    public var topologicalOrder: [JobVertexID]? {
        var indegree = Dictionary(uniqueKeysWithValues: vertices.map { ($0.id, 0) })
        for edge in edges where indegree[edge.target] != nil { indegree[edge.target]! += 1 }
        var ready = vertices.map(\.id).filter { indegree[$0] == 0 }
        var order: [JobVertexID] = []
        while !ready.isEmpty {
            let next = ready.removeFirst()
            order.append(next)
            for edge in edges where edge.source == next {
                indegree[edge.target]! -= 1
                if indegree[edge.target] == 0 { ready.append(edge.target) }
            }
        }
        return order.count == vertices.count ? order : nil
    }
}
