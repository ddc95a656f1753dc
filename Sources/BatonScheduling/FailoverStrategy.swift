public import BatonCore
public import BatonExecutionGraph
public import BatonJobGraph

/// Why a task must be restarted.
public enum FailureCause: Hashable, Sendable, CustomStringConvertible {
    /// The task threw or exited with an error.
    case taskFailed(String)
    /// The task's task executor was lost (heartbeat timeout, closed connection).
    case taskExecutorLost(ResourceID)
    /// A consumer could not read a blocking partition (its producer's task executor is gone).
    case partitionLost(ResultPartitionID)

    public var description: String {
        switch self {
        case .taskFailed(let reason): "task failed: \(reason)"
        case .taskExecutorLost(let id): "task executor \(id) lost"
        case .partitionLost(let partition): "partition \(partition) lost"
        }
    }
}

/// What a failover strategy looks at.
public struct FailoverContext: Sendable {
    public var graph: ExecutionGraph
    /// Task executors known to be gone: blocking partitions they hold are lost.
    public var lostTaskExecutors: Set<ResourceID>

    public init(graph: ExecutionGraph, lostTaskExecutors: Set<ResourceID> = []) {
        self.graph = graph
        self.lostTaskExecutors = lostTaskExecutors
    }

    /// Whether the blocking partition written by `producer` is, or will be, there to read without
    /// restarting the producer: it is still to be produced (CREATED, SCHEDULED), being produced
    /// or finished on a task executor that is not lost. A producer that was canceled or failed,
    /// whose task executor is lost, or whose results were released, must run again.
    public func isPartitionAvailable(_ producer: ExecutionVertexID) -> Bool {
        let execution = graph.execution(producer)
        switch execution.state {
        case .created, .scheduled:
            return true
        case .deploying, .initializing, .running, .finished:
            guard !execution.partitionsReleased else { return false }
            return execution.location.map { !lostTaskExecutors.contains($0.taskExecutor) } ?? false
        case .canceling, .canceled, .failed:
            return false
        }
    }
}

/// Decides which tasks a failure restarts. A user can plug in their own.
public protocol FailoverStrategy: Sendable {
    func tasksToRestart(failed: ExecutionVertexID, cause: FailureCause, context: FailoverContext) -> Set<ExecutionVertexID>
}

/// Every task of the job.
public struct RestartAllFailoverStrategy: FailoverStrategy {
    public init() {}
    public func tasksToRestart(failed: ExecutionVertexID, cause: FailureCause, context: FailoverContext) -> Set<ExecutionVertexID> {
        Set(context.graph.allVertices)
    }
}

/// Only the failed task (and, when a partition was lost, the task that produced it). For jobs
/// whose tasks do not exchange data.
public struct RestartIndividualFailoverStrategy: FailoverStrategy {
    public init() {}
    public func tasksToRestart(failed: ExecutionVertexID, cause: FailureCause, context: FailoverContext) -> Set<ExecutionVertexID> {
        var tasks: Set<ExecutionVertexID> = [failed]
        if case .partitionLost(let partition) = cause {
            tasks.insert(ExecutionVertexID(jobVertex: context.graph.results[Int(partition.result)].producer, subtask: Int(partition.partition)))
        }
        return tasks
    }
}

/// The failed task's pipelined region, every region downstream that consumes its results
/// (their input will be produced again), and every region upstream whose blocking result it
/// needs but that is no longer available (lost with its task executor, or its producer stopped).
public struct RegionFailoverStrategy: FailoverStrategy {
    public let regions: PipelinedRegions

    public init(regions: PipelinedRegions) { self.regions = regions }

    public init(graph: ExecutionGraph) { self.regions = PipelinedRegions(graph) }

    public func tasksToRestart(failed: ExecutionVertexID, cause: FailureCause, context: FailoverContext) -> Set<ExecutionVertexID> {
        let graph = context.graph
        var queue = [regions.region(of: failed, in: graph)]
        if case .partitionLost(let partition) = cause {
            let producer = ExecutionVertexID(jobVertex: graph.results[Int(partition.result)].producer, subtask: Int(partition.partition))
            queue.append(regions.region(of: producer, in: graph))
        }
        var visited = Set(queue)
        var allToAllDone = Set<Int>()  // all-to-all results whose other side was already enqueued whole
        func enqueue(_ vertex: ExecutionVertexID) {
            let region = regions.region(of: vertex, in: graph)
            if visited.insert(region).inserted { queue.append(region) }
        }
        var cursor = 0
        while cursor < queue.count {
            let region = queue[cursor]
            cursor += 1
            for vertex in regions.regions[region] {
                let jobVertex = graph.jobVertices[Int(vertex.jobVertex)]
                for resultIndex in jobVertex.outputs {
                    let result = graph.results[resultIndex]
                    if !result.isPointwise {
                        guard allToAllDone.insert(resultIndex * 2).inserted else { continue }
                    }
                    graph.consumers(of: vertex, through: result).forEach(enqueue)
                }
                for resultIndex in jobVertex.inputs where graph.results[resultIndex].type == .blocking {
                    let result = graph.results[resultIndex]
                    if !result.isPointwise {
                        guard allToAllDone.insert(resultIndex * 2 + 1).inserted else { continue }
                    }
                    for producer in graph.producers(of: vertex, through: result) where !context.isPartitionAvailable(producer) {
                        enqueue(producer)
                    }
                }
            }
        }
        return Set(queue.flatMap { regions.regions[$0] })
    }
}

extension FailoverStrategyName {
    public func make(for graph: ExecutionGraph) -> any FailoverStrategy {
        switch self {
        case .restartAll: RestartAllFailoverStrategy()
        case .restartIndividual: RestartIndividualFailoverStrategy()
        case .region: RegionFailoverStrategy(graph: graph)
        }
    }
}
