import BatonCore
import BatonExecutionGraph
import BatonJobGraph
import BatonScheduling
import Testing

/// The seed's figures 8 to 11: for a given graph and failure, exactly which tasks restart.
@Suite("failover strategies (figures 8 to 11)")
struct FailoverStrategyTests {
    func names(_ graph: ExecutionGraph, _ vertices: Set<ExecutionVertexID>) -> Set<String> {
        Set(vertices.map { "\(graph.jobVertices[Int($0.jobVertex)].id)\($0.subtask)" })
    }

    /// a0, a1, b0 and b1 run to FINISHED, each on the task executor `executor` names.
    func finishAB(_ graph: inout ExecutionGraph, on executor: (String) -> ResourceID) throws {
        for label in ["a0", "a1", "b0", "b1"] {
            let v = vertex(graph, label)
            for state in [ExecutionState.scheduled, .deploying, .initializing, .running, .finished] {
                try graph.transition(graph.attemptID(v), to: state, location: state == .deploying ? TaskLocation(taskExecutor: executor(label), allocation: 1) : nil)
            }
        }
    }

    func vertex(_ graph: ExecutionGraph, _ label: String) -> ExecutionVertexID {
        graph.allVertices.first { "\(graph.jobVertices[Int($0.jobVertex)].id)\($0.subtask)" == label }!
    }

    /// Figure 8/10 shape: a(2) -forward/pipelined-> b(2) -forward/pipelined-> c(2).
    var lanes: JobGraph {
        var builder = JobGraphBuilder(id: "lanes")
        builder.addVertex("a", operators: [.sequence()], parallelism: 2)
        builder.addVertex("b", operators: [.map("identity")], parallelism: 2)
        builder.addVertex("c", operators: [.discard()], parallelism: 2)
        builder.connect("a", to: "b", .forward)
        builder.connect("b", to: "c", .forward)
        return try! builder.build()
    }

    /// Figure 11 shape: a(2) -forward/blocking-> b(2) -hash/blocking-> c(2).
    var batch: JobGraph {
        var builder = JobGraphBuilder(id: "batch")
        builder.addVertex("a", operators: [.sequence(to: 100)], parallelism: 2)
        builder.addVertex("b", operators: [.map("identity")], parallelism: 2)
        builder.addVertex("c", operators: [.count()], parallelism: 2)
        builder.connect("a", to: "b", .forward, result: .blocking)
        builder.connect("b", to: "c", .hash, key: "key", result: .blocking)
        return try! builder.build()
    }

    @Test("figure 8: restart-all restarts every task")
    func restartAll() {
        let graph = ExecutionGraph(jobGraph: lanes)
        let tasks = RestartAllFailoverStrategy().tasksToRestart(
            failed: vertex(graph, "b1"), cause: .taskFailed("boom"), context: FailoverContext(graph: graph))
        #expect(names(graph, tasks) == ["a0", "a1", "b0", "b1", "c0", "c1"])
    }

    @Test("figure 9: restart-individual restarts the failed task alone")
    func restartIndividual() {
        let graph = ExecutionGraph(jobGraph: lanes)
        let tasks = RestartIndividualFailoverStrategy().tasksToRestart(
            failed: vertex(graph, "b1"), cause: .taskFailed("boom"), context: FailoverContext(graph: graph))
        #expect(names(graph, tasks) == ["b1"])
    }

    @Test("figure 10: region failover restarts the failed task's pipelined region")
    func regionPipelined() throws {
        let graph = ExecutionGraph(jobGraph: lanes)
        let strategy = RegionFailoverStrategy(graph: graph)
        let tasks = strategy.tasksToRestart(failed: vertex(graph, "b1"), cause: .taskFailed("boom"), context: FailoverContext(graph: graph))
        #expect(names(graph, tasks) == ["a1", "b1", "c1"])
        // With an all-to-all pipelined edge the whole job is one region.
        var builder = JobGraphBuilder(id: "all")
        builder.addVertex("a", operators: [.sequence()], parallelism: 2)
        builder.addVertex("b", operators: [.count()], parallelism: 2)
        builder.connect("a", to: "b", .hash, key: "key")
        let allGraph = ExecutionGraph(jobGraph: try builder.build())
        let all = RegionFailoverStrategy(graph: allGraph).tasksToRestart(
            failed: vertex(allGraph, "a0"), cause: .taskFailed("boom"), context: FailoverContext(graph: allGraph))
        #expect(all.count == 4)
    }

    @Test("figure 11: with blocking results, a failure restarts its region and the regions downstream that consume it")
    func regionBlocking() throws {
        var graph = ExecutionGraph(jobGraph: batch)
        let strategy = RegionFailoverStrategy(graph: graph)
        // a0 fails while running: its result will be produced again, so b0 (forward) and every c
        // (hash) that consumes b's result restart too; a1 and b1 keep what they made.
        let a0 = strategy.tasksToRestart(failed: vertex(graph, "a0"), cause: .taskFailed("boom"), context: FailoverContext(graph: graph))
        #expect(names(graph, a0) == ["a0", "b0", "c0", "c1"])
        // c1 fails while a and b finished on te1: only c1 restarts (its inputs are available).
        try finishAB(&graph) { _ in "te1" }
        let c1 = strategy.tasksToRestart(failed: vertex(graph, "c1"), cause: .taskFailed("boom"), context: FailoverContext(graph: graph))
        #expect(names(graph, c1) == ["c1"])
        // te1 is lost: b's partitions are gone, so c1's restart needs b0 and b1 again, which need
        // a0 and a1 again (their results were on te1 too); and b's consumers, c0 included.
        let lost = strategy.tasksToRestart(
            failed: vertex(graph, "c1"), cause: .taskExecutorLost("te1"),
            context: FailoverContext(graph: graph, lostTaskExecutors: ["te1"]))
        #expect(names(graph, lost) == ["a0", "a1", "b0", "b1", "c0", "c1"])
    }

    @Test("a lost blocking partition restarts the region that produced it")
    func partitionLost() throws {
        var graph = ExecutionGraph(jobGraph: batch)
        let strategy = RegionFailoverStrategy(graph: graph)
        try finishAB(&graph) { $0 == "b1" ? "te2" : "te1" }
        // c0 cannot read b1's partition (te2 is gone): b1 is produced again, then c0 and c1 read it.
        let tasks = strategy.tasksToRestart(
            failed: vertex(graph, "c0"), cause: .partitionLost(ResultPartitionID(result: 1, partition: 1)),
            context: FailoverContext(graph: graph, lostTaskExecutors: ["te2"]))
        #expect(names(graph, tasks) == ["b1", "c0", "c1"])
    }

    @Test("a producer whose results were released (every consumer had finished) runs again when a consumer must")
    func releasedPartition() throws {
        var graph = ExecutionGraph(jobGraph: batch)
        let strategy = RegionFailoverStrategy(graph: graph)
        try finishAB(&graph) { _ in "te1" }
        try graph.releasePartitions(graph.attemptID(vertex(graph, "a0")))
        // b0's result is lost: b0 runs again, and so must a0 (its result is gone), not a1.
        let tasks = strategy.tasksToRestart(
            failed: vertex(graph, "c0"), cause: .partitionLost(ResultPartitionID(result: 1, partition: 0)), context: FailoverContext(graph: graph))
        #expect(names(graph, tasks).contains("a0") && !names(graph, tasks).contains("a1"), "\(names(graph, tasks))")
        #expect(throws: ExecutionGraphError.self) { try graph.releasePartitions(graph.attemptID(vertex(graph, "a0"))) }
        #expect(throws: ExecutionGraphError.self) { try graph.releasePartitions(graph.attemptID(vertex(graph, "c0"))) }
    }
}

@Suite("restart strategies")
struct RestartStrategyTests {
    let start = MonotonicInstant(nanoseconds: 1_000_000_000)

    @Test("fixed delay allows the configured number of restarts, each after the delay")
    func fixedDelay() {
        var strategy = FixedDelayRestartStrategy(maxAttempts: 2, delay: .seconds(3))
        for _ in 0..<2 {
            strategy.notifyFailure(at: start)
            #expect(strategy.canRestart && strategy.backoffTime == .seconds(3))
        }
        strategy.notifyFailure(at: start)
        #expect(!strategy.canRestart)
    }

    @Test("exponential backoff grows to its cap and starts over after a quiet period")
    func exponential() {
        var strategy = ExponentialDelayRestartStrategy(initial: .milliseconds(100), maximum: .seconds(1), multiplier: 2, resetAfter: .seconds(60))
        var delays: [Duration] = []
        for index in 0..<6 {
            strategy.notifyFailure(at: start + .seconds(index))
            delays.append(strategy.backoffTime)
        }
        #expect(delays == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1), .seconds(1)])
        strategy.notifyFailure(at: start + .seconds(200))
        #expect(strategy.backoffTime == .milliseconds(100))
        #expect(strategy.canRestart)
    }

    @Test("failure rate stops restarting when too many failures fall within the interval")
    func failureRate() {
        var strategy = FailureRateRestartStrategy(maxFailures: 2, interval: .seconds(10), delay: .seconds(1))
        strategy.notifyFailure(at: start)
        strategy.notifyFailure(at: start + .seconds(5))
        #expect(strategy.canRestart)
        strategy.notifyFailure(at: start + .seconds(20))  // the first two are older than 10 s
        #expect(strategy.canRestart)
        strategy.notifyFailure(at: start + .seconds(21))
        strategy.notifyFailure(at: start + .seconds(22))
        #expect(!strategy.canRestart)
    }

    @Test("none never restarts; specs make the matching strategy")
    func specs() {
        var none = RestartStrategySpec.none.makeStrategy()
        none.notifyFailure(at: start)
        #expect(!none.canRestart)
        var fixed = RestartStrategySpec.fixedDelay(attempts: 1, delay: .seconds(2)).makeStrategy()
        fixed.notifyFailure(at: start)
        #expect(fixed.canRestart && fixed.backoffTime == .seconds(2))
    }
}

@Suite("restart budgets")
struct RestartBudgetTests {
    static let specs: [RestartStrategySpec] = [
        .none, .fixedDelay(attempts: 3, delay: .milliseconds(10)),
        .exponentialBackoff(initial: .milliseconds(10), max: .seconds(1), multiplier: 2, resetAfter: .seconds(5)),
        .failureRate(failures: 2, interval: .seconds(10), delay: .milliseconds(5)),
    ]

    @Test("a strategy resumed from another's budget decides as that one would, failure after failure", arguments: specs)
    func resumedStrategyDecidesTheSame(_ spec: RestartStrategySpec) {
        var original = spec.makeStrategy()
        var at = MonotonicInstant(nanoseconds: 1_000_000_000)
        for step in 0..<6 {
            var resumed = spec.makeStrategy()
            resumed.resume(from: original.budget)
            #expect(resumed.budget == original.budget, "step \(step)")
            at = at + .milliseconds(700)
            original.notifyFailure(at: at)
            resumed.notifyFailure(at: at)
            #expect(resumed.canRestart == original.canRestart, "step \(step)")
            #expect(resumed.backoffTime == original.backoffTime, "step \(step)")
        }
    }
}
