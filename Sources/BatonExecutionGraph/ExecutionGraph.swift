public import BatonCore
public import BatonJobGraph

/// One subtask of a job vertex: `(job vertex index in topological order, subtask index)`.
public struct ExecutionVertexID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var jobVertex: Int32
    public var subtask: Int32

    public init(jobVertex: Int, subtask: Int) {
        self.jobVertex = Int32(jobVertex)
        self.subtask = Int32(subtask)
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.jobVertex, lhs.subtask) < (rhs.jobVertex, rhs.subtask)
    }

    public var description: String { "\(jobVertex)#\(subtask)" }
}

/// One Execution: an attempt of an ExecutionVertex.
public struct ExecutionAttemptID: Hashable, Sendable, CustomStringConvertible {
    public var vertex: ExecutionVertexID
    public var attempt: Int32

    public init(vertex: ExecutionVertexID, attempt: Int32) {
        self.vertex = vertex
        self.attempt = attempt
    }

    public var description: String { "\(vertex)@\(attempt)" }
}

/// Where an attempt runs: the task executor and the slot allocated to it.
public struct TaskLocation: Hashable, Sendable, CustomStringConvertible {
    public var taskExecutor: ResourceID
    public var allocation: AllocationID

    public init(taskExecutor: ResourceID, allocation: AllocationID) {
        self.taskExecutor = taskExecutor
        self.allocation = allocation
    }

    public var description: String { "\(taskExecutor)/\(allocation)" }
}

/// The current Execution of a vertex.
public struct Execution: Hashable, Sendable {
    /// 0 for the first attempt; it grows only when the vertex is restarted.
    public var attempt: Int32
    public var state: ExecutionState
    public var location: TaskLocation?
    /// Whether the blocking results this finished attempt wrote were released (every consumer
    /// finished): a consumer that must run again needs this attempt to run again too.
    public var partitionsReleased: Bool

    public init(attempt: Int32 = 0, state: ExecutionState = .created, location: TaskLocation? = nil, partitionsReleased: Bool = false) {
        self.attempt = attempt
        self.state = state
        self.location = location
        self.partitionsReleased = partitionsReleased
    }
}

/// A JobGraph vertex expanded into its subtasks.
public struct ExecutionJobVertex: Sendable {
    public let index: Int
    public let id: JobVertexID
    public let parallelism: Int
    /// Indices into `ExecutionGraph.results`.
    public internal(set) var inputs: [Int] = []
    public internal(set) var outputs: [Int] = []
}

/// The result of one JobGraph edge: one partition per producer subtask.
public struct IntermediateResult: Sendable {
    public let index: Int
    public let producer: Int
    public let consumer: Int
    public let type: ResultPartitionType
    /// Pointwise: partition i feeds consumer subtask i; otherwise every partition feeds every consumer.
    public let isPointwise: Bool
    public let partitions: Int
}

/// One partition of an intermediate result.
public struct ResultPartitionID: Hashable, Sendable, CustomStringConvertible {
    public var result: Int32
    public var partition: Int32
    public init(result: Int, partition: Int) {
        self.result = Int32(result)
        self.partition = Int32(partition)
    }
    public var description: String { "r\(result).\(partition)" }
}

/// A transition the graph refused: the state machine does not allow it, or it names an attempt
/// that is not the current one.
public struct ExecutionGraphError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    public init(message: String) { self.message = message }
}

/// The ExecutionGraph: every subtask of a job with its current attempt, and the intermediate
/// results between them. Built deterministically from a JobGraph, so that a new leader rebuilds
/// exactly the same structure and only the attempts' states need to be persisted.
///
/// Structure is kept per job vertex and per result (all-to-all connections are never expanded
/// into per-pair lists), so memory grows with the number of subtasks, not with their products.
public struct ExecutionGraph: Sendable {
    public let jobGraph: JobGraph
    /// In topological order.
    public let jobVertices: [ExecutionJobVertex]
    public let results: [IntermediateResult]
    /// `executions[offsets[jobVertex] + subtask]`.
    private var executions: [Execution]
    private let offsets: [Int]

    /// Expands `jobGraph` (which must be valid).
    public init(jobGraph: JobGraph) {
        self.jobGraph = jobGraph
        guard let order = jobGraph.topologicalOrder else { preconditionFailure("a JobGraph with a cycle cannot be expanded") }
        var vertices: [ExecutionJobVertex] = []
        var indexOf: [JobVertexID: Int] = [:]
        var offsets: [Int] = []
        var total = 0
        for (index, id) in order.enumerated() {
            let vertex = jobGraph.vertex(id)!
            indexOf[id] = index
            vertices.append(ExecutionJobVertex(index: index, id: id, parallelism: vertex.parallelism))
            offsets.append(total)
            total += vertex.parallelism
        }
        var results: [IntermediateResult] = []
        for edge in jobGraph.edges {
            let producer = indexOf[edge.source]!
            let consumer = indexOf[edge.target]!
            let result = IntermediateResult(
                index: results.count, producer: producer, consumer: consumer, type: edge.resultType,
                isPointwise: edge.pattern.isPointwise, partitions: vertices[producer].parallelism)
            vertices[producer].outputs.append(result.index)
            vertices[consumer].inputs.append(result.index)
            results.append(result)
        }
        self.jobVertices = vertices
        self.results = results
        self.offsets = offsets
        self.executions = Array(repeating: Execution(), count: total)
    }

    public var vertexCount: Int { executions.count }

    /// Every vertex, job vertex by job vertex in topological order.
    public var allVertices: [ExecutionVertexID] {
        jobVertices.flatMap { vertex in (0..<vertex.parallelism).map { ExecutionVertexID(jobVertex: vertex.index, subtask: $0) } }
    }

    public func jobVertex(_ id: JobVertexID) -> ExecutionJobVertex? { jobVertices.first { $0.id == id } }

    /// A flat index of `vertex`, 0..<vertexCount.
    public func flatIndex(_ vertex: ExecutionVertexID) -> Int { offsets[Int(vertex.jobVertex)] + Int(vertex.subtask) }

    public func vertex(atFlatIndex index: Int) -> ExecutionVertexID {
        var low = 0
        var high = offsets.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if offsets[middle] <= index { low = middle } else { high = middle - 1 }
        }
        return ExecutionVertexID(jobVertex: low, subtask: index - offsets[low])
    }

    public func contains(_ vertex: ExecutionVertexID) -> Bool {
        vertex.jobVertex >= 0 && Int(vertex.jobVertex) < jobVertices.count && vertex.subtask >= 0
            && Int(vertex.subtask) < jobVertices[Int(vertex.jobVertex)].parallelism
    }

    public func execution(_ vertex: ExecutionVertexID) -> Execution { executions[flatIndex(vertex)] }

    public func attemptID(_ vertex: ExecutionVertexID) -> ExecutionAttemptID {
        ExecutionAttemptID(vertex: vertex, attempt: execution(vertex).attempt)
    }

    /// The producer subtasks whose partitions `vertex` reads through `result`.
    public func producers(of vertex: ExecutionVertexID, through result: IntermediateResult) -> [ExecutionVertexID] {
        if result.isPointwise { return [ExecutionVertexID(jobVertex: result.producer, subtask: Int(vertex.subtask))] }
        return (0..<result.partitions).map { ExecutionVertexID(jobVertex: result.producer, subtask: $0) }
    }

    /// The consumer subtasks that read the partition `vertex` writes into `result`.
    public func consumers(of vertex: ExecutionVertexID, through result: IntermediateResult) -> [ExecutionVertexID] {
        if result.isPointwise { return [ExecutionVertexID(jobVertex: result.consumer, subtask: Int(vertex.subtask))] }
        return (0..<jobVertices[result.consumer].parallelism).map { ExecutionVertexID(jobVertex: result.consumer, subtask: $0) }
    }

    /// Whether every subtask's current attempt is in `state`.
    public func all(_ state: ExecutionState) -> Bool { executions.allSatisfy { $0.state == state } }

    /// How many current attempts are in each state.
    public var stateCounts: [ExecutionState: Int] {
        executions.reduce(into: [:]) { $0[$1.state, default: 0] += 1 }
    }

    // MARK: changes

    /// Moves the current attempt of `attempt.vertex` to `state`, setting its location when given.
    /// Refused when `attempt` is not the current attempt or the state machine forbids it.
    @discardableResult
    public mutating func transition(_ attempt: ExecutionAttemptID, to state: ExecutionState, location: TaskLocation? = nil)
        throws(ExecutionGraphError) -> ExecutionGraphChange
    {
        guard contains(attempt.vertex) else { throw ExecutionGraphError(message: "no vertex \(attempt.vertex) in this graph") }
        let index = flatIndex(attempt.vertex)
        let current = executions[index]
        guard current.attempt == attempt.attempt else {
            throw ExecutionGraphError(
                message: "attempt \(attempt) is stale: vertex \(attempt.vertex) is at attempt \(current.attempt)")
        }
        guard current.state.canTransition(to: state) else {
            throw ExecutionGraphError(message: "attempt \(attempt) cannot go from \(current.state) to \(state)")
        }
        executions[index].state = state
        if let location { executions[index].location = location }
        return .state(attempt, state, location)
    }

    /// Starts a new attempt of `vertex` (attempt + 1, CREATED, no location). The current attempt
    /// must be terminal: a running task is canceled first.
    @discardableResult
    public mutating func resetForNewAttempt(_ vertex: ExecutionVertexID) throws(ExecutionGraphError) -> ExecutionGraphChange {
        guard contains(vertex) else { throw ExecutionGraphError(message: "no vertex \(vertex) in this graph") }
        let index = flatIndex(vertex)
        guard executions[index].state.isTerminal else {
            throw ExecutionGraphError(message: "vertex \(vertex) is \(executions[index].state); only a terminal attempt can be replaced")
        }
        guard executions[index].attempt < .max else {
            throw ExecutionGraphError(message: "vertex \(vertex) is at attempt \(Int32.max), the last there is")
        }
        executions[index] = Execution(attempt: executions[index].attempt + 1)
        return .reset(vertex, executions[index].attempt)
    }

    /// Marks the blocking results of the finished `attempt` as released.
    @discardableResult
    public mutating func releasePartitions(_ attempt: ExecutionAttemptID) throws(ExecutionGraphError) -> ExecutionGraphChange {
        guard contains(attempt.vertex) else { throw ExecutionGraphError(message: "no vertex \(attempt.vertex) in this graph") }
        let index = flatIndex(attempt.vertex)
        let current = executions[index]
        guard current.attempt == attempt.attempt, current.state == .finished, !current.partitionsReleased else {
            throw ExecutionGraphError(message: "the results of \(attempt) cannot be released: the vertex is at attempt \(current.attempt), \(current.state)")
        }
        executions[index].partitionsReleased = true
        return .partitionsReleased(attempt)
    }

    /// Applies a change record (as when a new leader replays the store).
    public mutating func apply(_ change: ExecutionGraphChange) throws(ExecutionGraphError) {
        switch change {
        case .state(let attempt, let state, let location):
            try transition(attempt, to: state, location: location)
        case .reset(let vertex, let attempt):
            // In Int: a stored attempt may be the largest there is (a snapshot's), with no next one.
            guard contains(vertex), Int(executions[flatIndex(vertex)].attempt) + 1 == Int(attempt) else {
                throw ExecutionGraphError(message: "reset of \(vertex) to attempt \(attempt) does not follow the current attempt")
            }
            try resetForNewAttempt(vertex)
        case .partitionsReleased(let attempt):
            try releasePartitions(attempt)
        }
    }

    /// The attempts of every vertex, in flat order (what a snapshot holds).
    public var executionsInOrder: [Execution] { executions }

    /// Replaces every vertex's attempt (restoring a snapshot).
    mutating func restore(_ restored: [Execution]) {
        precondition(restored.count == executions.count)
        executions = restored
    }
}

/// One change to an ExecutionGraph, as persisted in the store after each state change.
public enum ExecutionGraphChange: Hashable, Sendable {
    /// The attempt moved to a state (and, when given, to a location).
    case state(ExecutionAttemptID, ExecutionState, TaskLocation?)
    /// The vertex started a new attempt.
    case reset(ExecutionVertexID, Int32)
    /// The blocking results the finished attempt wrote were released (every consumer finished).
    case partitionsReleased(ExecutionAttemptID)
}
