import BatonCore
import BatonExecutionGraph
import BatonJobGraph
import BatonScheduling
import Testing

/// Drives a scheduling strategy by hand: schedules what it returns and lets tests move tasks on.
struct StrategyDriver {
    var graph: ExecutionGraph
    var strategy: any SchedulingStrategy
    /// Each batch of vertices the strategy released, by job vertex id and subtask.
    var batches: [[String]] = []

    init(_ job: JobGraph, _ strategy: any SchedulingStrategy) {
        graph = ExecutionGraph(jobGraph: job)
        self.strategy = strategy
        record(self.strategy.startScheduling(graph))
    }

    func name(_ vertex: ExecutionVertexID) -> String { "\(graph.jobVertices[Int(vertex.jobVertex)].id)\(vertex.subtask)" }

    mutating func record(_ vertices: [ExecutionVertexID]) {
        let fresh = vertices.filter { graph.execution($0).state == .created }
        for vertex in fresh { try! graph.transition(graph.attemptID(vertex), to: .scheduled) }
        if !fresh.isEmpty { batches.append(fresh.map(name)) }
    }

    /// Moves `vertex` (e.g. "a0") to `state` through the states before it.
    mutating func move(_ label: String, to state: ExecutionState) {
        let vertex = graph.allVertices.first { name($0) == label }!
        let path: [ExecutionState] = [.deploying, .initializing, .running, .finished]
        for step in path where graph.execution(vertex).state.canTransition(to: step) && path.firstIndex(of: step)! <= path.firstIndex(of: state)! {
            try! graph.transition(graph.attemptID(vertex), to: step, location: step == .deploying ? TaskLocation(taskExecutor: "te", allocation: 1) : nil)
            record(strategy.onExecutionStateChange(vertex, step, graph))
        }
    }
}

/// The shapes of the seed's figure 7: a pipelined pair feeding a blocking consumer, and a
/// two-input consumer (one blocking and one pipelined input).
enum Figure7 {
    /// a(2) -forward/pipelined-> b(2) -hash/blocking-> c(2)
    static var pipelinedThenBlocking: JobGraph {
        var builder = JobGraphBuilder(id: "figure-7a")
        builder.addVertex("a", operators: [.sequence()], parallelism: 2)
        builder.addVertex("b", operators: [.map("identity")], parallelism: 2)
        builder.addVertex("c", operators: [.count()], parallelism: 2)
        builder.connect("a", to: "b", .forward)
        builder.connect("b", to: "c", .hash, key: "key", result: .blocking)
        return try! builder.build()
    }

    /// x(1) -broadcast/blocking-> j(2) <-forward/pipelined- y(2)
    static var twoInputs: JobGraph {
        var builder = JobGraphBuilder(id: "figure-7b")
        builder.addVertex("x", operators: [.sequence()], parallelism: 1)
        builder.addVertex("y", operators: [.sequence()], parallelism: 2)
        builder.addVertex("j", operators: [.count()], parallelism: 2)
        builder.connect("x", to: "j", .broadcast, result: .blocking)
        builder.connect("y", to: "j", .forward)
        return try! builder.build()
    }
}

@Suite("scheduling strategies (figure 7)")
struct SchedulingStrategyTests {
    @Test("eager deploys every task at once")
    func eager() {
        var driver = StrategyDriver(Figure7.pipelinedThenBlocking, EagerSchedulingStrategy())
        #expect(driver.batches == [["a0", "a1", "b0", "b1", "c0", "c1"]])
        driver.move("a0", to: .finished)
        #expect(driver.batches.count == 1)
        let restarted = EagerSchedulingStrategy().restartTasks([.init(jobVertex: 2, subtask: 1), .init(jobVertex: 0, subtask: 0)], driver.graph)
        #expect(restarted == [.init(jobVertex: 0, subtask: 0), .init(jobVertex: 2, subtask: 1)])
    }

    @Test("lazy from sources: sources first, a pipelined consumer once its producer runs, a blocking one once all of it finished")
    func lazyPipelinedThenBlocking() {
        var driver = StrategyDriver(Figure7.pipelinedThenBlocking, LazyFromSourcesSchedulingStrategy())
        #expect(driver.batches == [["a0", "a1"]])
        driver.move("a1", to: .running)
        #expect(driver.batches.last == ["b1"])
        driver.move("a0", to: .running)
        #expect(driver.batches.last == ["b0"])
        driver.move("b0", to: .finished)
        #expect(driver.batches.count == 3, "c waits for every partition of the blocking result")
        driver.move("b1", to: .finished)
        #expect(driver.batches.last == ["c0", "c1"])
    }

    @Test("lazy from sources: a consumer with a blocking and a pipelined input waits for both")
    func lazyTwoInputs() {
        var driver = StrategyDriver(Figure7.twoInputs, LazyFromSourcesSchedulingStrategy())
        #expect(driver.batches == [["x0", "y0", "y1"]])
        driver.move("y0", to: .running)
        driver.move("y1", to: .running)
        #expect(driver.batches.count == 1)
        driver.move("x0", to: .finished)
        #expect(driver.batches.last == ["j0", "j1"])
    }

    @Test("lazy from sources restarts only tasks whose inputs are ready")
    func lazyRestart() throws {
        var driver = StrategyDriver(Figure7.pipelinedThenBlocking, LazyFromSourcesSchedulingStrategy())
        for label in ["a0", "a1", "b0", "b1"] { driver.move(label, to: .finished) }
        // c0 fails and is reset: it can start again at once, its input is complete.
        let c0 = ExecutionVertexID(jobVertex: 2, subtask: 0)
        let b0 = ExecutionVertexID(jobVertex: 1, subtask: 0)
        try driver.graph.transition(driver.graph.attemptID(c0), to: .failed)
        try driver.graph.resetForNewAttempt(c0)
        #expect(driver.strategy.restartTasks([c0], driver.graph) == [c0])
        // b0 is reset too (its output was lost): b0 can start (a0's result is there), c0 must
        // wait for b0 again.
        try driver.graph.resetForNewAttempt(b0)
        #expect(driver.strategy.restartTasks([b0, c0], driver.graph) == [b0])
    }

    @Test("a user-written strategy plugs in through the same protocol")
    func customStrategy() {
        /// Deploys sources only, in reverse subtask order: a strategy no built-in has.
        struct SourcesReversed: SchedulingStrategy {
            func startScheduling(_ graph: ExecutionGraph) -> [ExecutionVertexID] {
                graph.allVertices.filter { graph.jobVertices[Int($0.jobVertex)].inputs.isEmpty }.reversed()
            }
            func restartTasks(_ vertices: [ExecutionVertexID], _ graph: ExecutionGraph) -> [ExecutionVertexID] { vertices }
            func onExecutionStateChange(_ vertex: ExecutionVertexID, _ state: ExecutionState, _ graph: ExecutionGraph) -> [ExecutionVertexID] { [] }
        }
        let driver = StrategyDriver(Figure7.twoInputs, SourcesReversed())
        #expect(driver.batches == [["y1", "y0", "x0"]])
    }
}
