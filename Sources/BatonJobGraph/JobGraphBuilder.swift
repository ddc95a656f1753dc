public import BatonCore

/// Builds a JobGraph in Swift code; the same graph a job spec in YAML describes.
///
/// ```swift
/// var job = JobGraphBuilder(id: "keyed-count", name: "streaming keyed count")
/// job.addVertex("source", operators: [.sequence(from: 0, to: nil, keys: 16)], parallelism: 2)
/// job.addVertex("count", operators: [.count()], parallelism: 2)
/// job.connect("source", to: "count", .hash, key: "key")
/// let graph = try job.build()
/// ```
public struct JobGraphBuilder: Sendable {
    public var id: JobID
    public var name: String
    public var configuration: JobConfiguration
    private var vertices: [JobVertex] = []
    private var edges: [JobEdge] = []

    public init(id: JobID, name: String? = nil, configuration: JobConfiguration = JobConfiguration()) {
        self.id = id
        self.name = name ?? id.rawValue
        self.configuration = configuration
    }

    @discardableResult
    public mutating func addVertex(
        _ id: JobVertexID, name: String? = nil, operators: [OperatorSpec], parallelism: Int, maxParallelism: Int? = nil,
        slotSharingGroup: SlotSharingGroupID = "default", resources: ResourceProfile? = nil
    ) -> JobVertexID {
        vertices.append(
            JobVertex(
                id: id, name: name, operators: operators, parallelism: parallelism, maxParallelism: maxParallelism,
                slotSharingGroup: slotSharingGroup, resources: resources))
        return id
    }

    public mutating func connect(
        _ source: JobVertexID, to target: JobVertexID, _ pattern: DistributionPattern, key: String? = nil,
        result: ResultPartitionType = .pipelined
    ) {
        edges.append(JobEdge(source: source, target: target, pattern: pattern, key: key, resultType: result))
    }

    /// The graph, validated (and checked against `taskExecutors` when given).
    public func build(taskExecutors: [ResourceProfile]? = nil) throws(JobGraphError) -> JobGraph {
        let graph = JobGraph(id: id, name: name, vertices: vertices, edges: edges, configuration: configuration)
        try graph.validate(taskExecutors: taskExecutors)
        return graph
    }
}

extension OperatorSpec {
    /// Numbers from `from` to `to` (unbounded when nil), as (key, value) records over `keys` keys.
    public static func sequence(from: Int64 = 0, to: Int64? = nil, keys: Int = 16) -> OperatorSpec {
        var parameters = ["from": "\(from)", "keys": "\(keys)"]
        if let to { parameters["to"] = "\(to)" }
        return OperatorSpec("sequence", parameters)
    }
    /// The lines of a text file.
    public static func textFile(_ path: String) -> OperatorSpec { OperatorSpec("text-file", ["path": path]) }
    public static func map(_ function: String) -> OperatorSpec { OperatorSpec("map", ["function": function]) }
    public static func filter(_ predicate: String) -> OperatorSpec { OperatorSpec("filter", ["predicate": predicate]) }
    /// Splits lines into (word, 1) records.
    public static func tokenize() -> OperatorSpec { OperatorSpec("tokenize") }
    public static func sum(_ field: String = "value") -> OperatorSpec { OperatorSpec("sum", ["field": field]) }
    public static func count() -> OperatorSpec { OperatorSpec("count") }
    public static func tumblingWindow(_ size: Duration, aggregate: String = "count") -> OperatorSpec {
        OperatorSpec("tumbling-window", ["size": DurationText.format(size), "aggregate": aggregate])
    }
    /// Files under `path`; exactly-once commits them on checkpoint completion.
    public static func fileSink(_ path: String, exactlyOnce: Bool = true) -> OperatorSpec {
        OperatorSpec("file-sink", ["path": path, "exactly-once": exactlyOnce ? "true" : "false"])
    }
    public static func print() -> OperatorSpec { OperatorSpec("print") }
    public static func discard() -> OperatorSpec { OperatorSpec("discard") }
}
