import BatonCore
import BatonExecutionGraph
import BatonJobGraph
import BatonJobManager
import BatonJobMaster
import BatonSimulation
import Testing

@Suite("JobManager: blocking results released once every consumer finished")
struct PartitionReleaseTests {
    /// a → b → c, each edge blocking and all-to-all, two subtasks each.
    static func stages() -> JobGraph {
        var builder = JobGraphBuilder(
            id: "stages",
            configuration: JobConfiguration(scheduling: .lazyFromSources, failover: .region, restart: .fixedDelay(attempts: 10, delay: .milliseconds(10))))
        builder.addVertex("a", operators: [.sequence()], parallelism: 2)
        builder.addVertex("b", operators: [.map("identity")], parallelism: 2)
        builder.addVertex("c", operators: [.discard()], parallelism: 2)
        builder.connect("a", to: "b", .hash, key: "key", result: .blocking)
        builder.connect("b", to: "c", .hash, key: "key", result: .blocking)
        return try! builder.build()
    }

    static func releases(_ batches: [JobManager.Ready]) -> [(JobManager.ProducedResults, ResourceID)] {
        Term.sends(batches).compactMap { if case .releasePartitions(_, let only?) = $0.command { (only, $0.to) } else { nil } }
    }

    /// Every deployment in `batches` runs, and the tasks of `finishing` job vertices finish; returns
    /// the batches of what followed.
    static func play(_ term: inout Term, _ batches: [JobManager.Ready], finishing: Set<Int32>) -> [JobManager.Ready] {
        var out: [JobManager.Ready] = []
        for (descriptor, executor) in Term.deployments(batches) {
            let attempt = TaskAttempt(job: descriptor.job, attempt: descriptor.attempt)
            let states: [ExecutionState] = finishing.contains(descriptor.attempt.vertex.jobVertex) ? [.initializing, .running, .finished] : [.initializing, .running]
            for state in states {
                out += term.handle(.reported(TaskReport(attempt: attempt, state: state, allocation: descriptor.allocation), from: executor))
            }
        }
        return out
    }

    @Test("a producer's blocking results are released when its last consumer finishes, durably, and only then")
    func releasedAfterConsumersFinish() throws {
        var term = Term()
        term.register("te1")
        term.register("te2")
        let submitted = term.handle(.submit(Self.stages(), savepoint: nil, JobManager.RequestID(rawValue: 1)))
        let afterA = Self.play(&term, submitted, finishing: [0])
        #expect(Self.releases(term.batches).isEmpty, "nothing is released while b has not read a's results")
        let afterB = Self.play(&term, afterA, finishing: [1])
        let released = Self.releases(afterB)
        #expect(Set(released.map(\.0.producer.vertex)) == [ExecutionVertexID(jobVertex: 0, subtask: 0), ExecutionVertexID(jobVertex: 0, subtask: 1)])
        #expect(released.allSatisfy { $0.0.results == [0] })
        let graph = try #require(term.manager.dispatcher.job("stages")).graph
        #expect(graph.execution(ExecutionVertexID(jobVertex: 0, subtask: 0)).partitionsReleased)
        #expect(!graph.execution(ExecutionVertexID(jobVertex: 1, subtask: 0)).partitionsReleased, "c has not finished reading b's")
        // Durable before sent: each release goes out after the batch that recorded it.
        for batch in afterB where batch.effects.contains(where: { if case .send(.releasePartitions(_, .some), _) = $0 { true } else { false } }) {
            #expect(batch.writes.isEmpty || batch.writes.contains { if case .change(_, _, .partitionsReleased) = $0 { true } else { false } })
        }
        guard case .success(let (rebuilt, _)) = term.store.rebuild(Self.stages()) else {
            Issue.record("the store does not rebuild the job")
            return
        }
        #expect(rebuilt.executionsInOrder == graph.executionsInOrder, "a new leader knows which results were released")
    }

    @Test("a consumer that must run again after its producer's results were released runs the producer again too")
    func releasedProducerRunsAgain() throws {
        var term = Term()
        term.register("te1")
        term.register("te2")
        let submitted = term.handle(.submit(Self.stages(), savepoint: nil, JobManager.RequestID(rawValue: 1)))
        let afterA = Self.play(&term, submitted, finishing: [0])
        _ = Self.play(&term, Self.play(&term, afterA, finishing: [1]), finishing: [])
        let before = try #require(term.manager.dispatcher.job("stages")).graph
        #expect(before.execution(ExecutionVertexID(jobVertex: 0, subtask: 0)).partitionsReleased)
        // The task executor that holds b[0]'s results (c has not read them all) goes.
        let lostExecutor = try #require(before.execution(ExecutionVertexID(jobVertex: 1, subtask: 0)).location?.taskExecutor)
        for case .startTimer(.job(let job, let timer), _) in term.handle(.taskExecutorLost(lostExecutor)).flatMap(\.effects) {
            term.handle(.timerFired(.job(job, timer)))
        }
        let after = try #require(term.manager.dispatcher.job("stages")).graph
        for subtask in 0..<2 {
            let a = after.execution(ExecutionVertexID(jobVertex: 0, subtask: subtask))
            #expect(a.attempt == 1 && !a.partitionsReleased, "a[\(subtask)] runs again: its results were released")
        }
    }
}
