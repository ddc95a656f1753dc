public import BatonExecutionGraph
public import BatonJobGraph

/// Decides which subtasks to schedule and when. A user can plug in their own: the scheduler
/// calls these three events and schedules every vertex returned that is still CREATED.
public protocol SchedulingStrategy: Sendable {
    /// The vertices to schedule when the job starts.
    mutating func startScheduling(_ graph: ExecutionGraph) -> [ExecutionVertexID]
    /// The vertices to schedule among `vertices`, which were just reset for a restart.
    mutating func restartTasks(_ vertices: [ExecutionVertexID], _ graph: ExecutionGraph) -> [ExecutionVertexID]
    /// The vertices that became schedulable because `vertex`'s attempt reached `state`.
    mutating func onExecutionStateChange(_ vertex: ExecutionVertexID, _ state: ExecutionState, _ graph: ExecutionGraph)
        -> [ExecutionVertexID]
}

/// Every task at once (streaming jobs, whose tasks all run together).
public struct EagerSchedulingStrategy: SchedulingStrategy {
    public init() {}

    public func startScheduling(_ graph: ExecutionGraph) -> [ExecutionVertexID] { graph.allVertices }

    public func restartTasks(_ vertices: [ExecutionVertexID], _ graph: ExecutionGraph) -> [ExecutionVertexID] {
        vertices.sorted()
    }

    public func onExecutionStateChange(_ vertex: ExecutionVertexID, _ state: ExecutionState, _ graph: ExecutionGraph)
        -> [ExecutionVertexID]
    { [] }
}

/// Sources first; a consumer once its inputs are ready (batch jobs): every partition it reads
/// through a blocking result finished, and, through a pipelined result, at least one producer
/// running or finished (data is flowing).
///
/// Keeps per-result counters so that all-to-all connections cost O(producers + consumers).
public struct LazyFromSourcesSchedulingStrategy: SchedulingStrategy {
    /// Per result: how many producer subtasks are FINISHED, and whether any runs or finished.
    private var finishedProducers: [Int] = []
    private var anyProducing: [Bool] = []

    public init() {}

    public mutating func startScheduling(_ graph: ExecutionGraph) -> [ExecutionVertexID] {
        recount(graph, results: graph.results.map(\.index))
        return graph.allVertices.filter { isSchedulable($0, graph) }
    }

    public mutating func restartTasks(_ vertices: [ExecutionVertexID], _ graph: ExecutionGraph) -> [ExecutionVertexID] {
        let jobVertices = Set(vertices.map { Int($0.jobVertex) })
        recount(graph, results: jobVertices.flatMap { graph.jobVertices[$0].outputs })
        return vertices.sorted().filter { isSchedulable($0, graph) }
    }

    public mutating func onExecutionStateChange(_ vertex: ExecutionVertexID, _ state: ExecutionState, _ graph: ExecutionGraph)
        -> [ExecutionVertexID]
    {
        guard state == .running || state == .finished else { return [] }
        if finishedProducers.count != graph.results.count { recount(graph, results: graph.results.map(\.index)) }
        var candidates: [ExecutionVertexID] = []
        for resultIndex in graph.jobVertices[Int(vertex.jobVertex)].outputs {
            let result = graph.results[resultIndex]
            let wasProducing = anyProducing[resultIndex]
            anyProducing[resultIndex] = true
            if state == .finished { finishedProducers[resultIndex] += 1 }
            switch (result.type, result.isPointwise) {
            case (.pipelined, true), (.blocking, true):
                if result.type == .pipelined || state == .finished {
                    candidates += graph.consumers(of: vertex, through: result)
                }
            case (.pipelined, false):
                if !wasProducing { candidates += graph.consumers(of: vertex, through: result) }
            case (.blocking, false):
                if state == .finished && finishedProducers[resultIndex] == result.partitions {
                    candidates += graph.consumers(of: vertex, through: result)
                }
            }
        }
        return candidates.filter { isSchedulable($0, graph) }
    }

    private mutating func recount(_ graph: ExecutionGraph, results: [Int]) {
        if finishedProducers.count != graph.results.count {
            finishedProducers = Array(repeating: 0, count: graph.results.count)
            anyProducing = Array(repeating: false, count: graph.results.count)
        }
        for index in Set(results) {
            let result = graph.results[index]
            var finished = 0
            var producing = false
            for subtask in 0..<result.partitions {
                let state = graph.execution(ExecutionVertexID(jobVertex: result.producer, subtask: subtask)).state
                if state == .finished { finished += 1 }
                if state == .running || state == .finished { producing = true }
            }
            finishedProducers[index] = finished
            anyProducing[index] = producing
        }
    }

    private func isSchedulable(_ vertex: ExecutionVertexID, _ graph: ExecutionGraph) -> Bool {
        guard graph.execution(vertex).state == .created else { return false }
        for resultIndex in graph.jobVertices[Int(vertex.jobVertex)].inputs {
            let result = graph.results[resultIndex]
            let producers = graph.producers(of: vertex, through: result)
            switch result.type {
            case .blocking:
                let finished = result.isPointwise
                    ? graph.execution(producers[0]).state == .finished
                    : finishedProducers[resultIndex] == result.partitions
                if !finished { return false }
            case .pipelined:
                let producing = result.isPointwise
                    ? [.running, .finished].contains(graph.execution(producers[0]).state)
                    : anyProducing[resultIndex]
                if !producing { return false }
            }
        }
        return true
    }
}

extension SchedulingStrategyName {
    /// The built-in strategy of this name, or nil for a name only a plug-in knows.
    public func makeBuiltIn() -> (any SchedulingStrategy)? {
        switch self {
        case .eager: EagerSchedulingStrategy()
        case .lazyFromSources: LazyFromSourcesSchedulingStrategy()
        default: nil
        }
    }
}
