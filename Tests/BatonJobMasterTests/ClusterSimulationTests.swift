import BatonBench
import BatonConfig
import BatonCore
import BatonExecutionGraph
import BatonJobGraph
import BatonJobMaster
import BatonProcessControl
import BatonResourceManager
import BatonSimulation
import Foundation
import Testing

enum Cluster {
    static let gib: Int64 = 1 << 30
    static let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/jobs").path

    static func executors(_ count: Int, slots: Int = 4) -> [TaskExecutorResources] {
        (1...count).map {
            TaskExecutorResources(
                id: ResourceID(rawValue: "te\($0)")!,
                total: ResourceProfile(cpuMillis: Int64(slots) * 1000, taskHeapBytes: Int64(slots) * gib), defaultSlots: slots)
        }
    }

    static func simulation(
        seed: UInt64 = 1, executors: [TaskExecutorResources] = executors(2), mode: Dispatcher.Mode = .session,
        _ adjust: (inout ClusterSimulation.Configuration) -> Void = { _ in }
    ) -> ClusterSimulation {
        var configuration = ClusterSimulation.Configuration(seed: seed, taskExecutors: executors)
        configuration.mode = mode
        adjust(&configuration)
        return ClusterSimulation(configuration)
    }

    /// a(p) -forward/pipelined-> b(p) -forward/pipelined-> c(p), streaming.
    static func lanes(_ id: JobID = "lanes", parallelism: Int = 2, failover: FailoverStrategyName = .region,
                      restart: RestartStrategySpec = .fixedDelay(attempts: 10, delay: .milliseconds(100))) -> JobGraph {
        var builder = JobGraphBuilder(id: id, configuration: JobConfiguration(scheduling: .eager, failover: failover, restart: restart))
        builder.addVertex("a", operators: [.sequence()], parallelism: parallelism)
        builder.addVertex("b", operators: [.map("identity")], parallelism: parallelism)
        builder.addVertex("c", operators: [.discard()], parallelism: parallelism)
        builder.connect("a", to: "b", .forward)
        builder.connect("b", to: "c", .forward)
        return try! builder.build()
    }

    /// A bounded batch job: tokenize(2) -hash/blocking-> sum(2), lazy.
    static func batch(_ id: JobID = "batch", restart: RestartStrategySpec = .fixedDelay(attempts: 10, delay: .milliseconds(50))) -> JobGraph {
        var builder = JobGraphBuilder(
            id: id, configuration: JobConfiguration(scheduling: .lazyFromSources, failover: .region, restart: restart))
        builder.addVertex("tokenize", operators: [.textFile("/dev/null"), .tokenize()], parallelism: 2)
        builder.addVertex("sum", operators: [.sum(), .discard()], parallelism: 2)
        builder.connect("tokenize", to: "sum", .hash, key: "word", result: .blocking)
        return try! builder.build()
    }

    static func durations(_ table: [String: Int]) -> @Sendable (JobVertexID, Int) -> Duration? {
        { vertex, _ in table[vertex.rawValue].map { .milliseconds($0) } }
    }

    static func states(_ master: JobMaster) -> [ExecutionState: Int] { master.graph.stateCounts }

    static func attempts(_ master: JobMaster) -> [String: Int32] {
        Dictionary(uniqueKeysWithValues: master.graph.allVertices.map {
            ("\(master.graph.jobVertices[Int($0.jobVertex)].id)\($0.subtask)", master.graph.execution($0).attempt)
        })
    }
}

@Suite("job master in a simulated cluster")
struct ClusterSimulationTests {
    @Test("a streaming job deploys every task at once and shares slots: as many as its highest parallelism")
    func streamingJob() throws {
        var simulation = Cluster.simulation()
        simulation.submit(try JobSpec.load(path: Cluster.examples + "/streaming-keyed-count.yaml"))
        let report = simulation.run(until: .seconds(2))
        let job = try #require(report.job("streaming-keyed-count"))
        #expect(job.state == .running)
        #expect(Cluster.states(job) == [.running: 4])
        #expect(report.resourceManager.activeAllocations.count == 2)
        #expect(Set(report.deployments.map(\.millis)).count == 1, "eager: one wave")
        #expect(report.persistenceMismatches.isEmpty, "\(report.history.suffix(6).joined(separator: "\n"))")
    }

    @Test("a batch job runs lazily to FINISHED: consumers after every producer finished, slots released")
    func batchJob() throws {
        var simulation = Cluster.simulation { $0.taskDuration = Cluster.durations(["tokenize": 100, "sum": 50]) }
        simulation.submit(try JobSpec.load(path: Cluster.examples + "/batch-word-count.yaml"))
        let report = simulation.run(until: .seconds(5))
        let job = try #require(report.job("batch-word-count"))
        #expect(job.state == .finished)
        #expect(job.restarts == 0)
        let tokenizeDeployed = report.deployments.filter { $0.vertex == "tokenize" }.map(\.millis)
        let sumDeployed = report.deployments.filter { $0.vertex == "sum" }.map(\.millis)
        #expect(tokenizeDeployed.count == 2 && sumDeployed.count == 2)
        #expect(sumDeployed.min()! >= tokenizeDeployed.max()! + 100, "sum starts after both tokenizers finished")
        #expect(report.resourceManager.activeAllocations.isEmpty)
        #expect(report.persistenceMismatches.isEmpty)
    }

    @Test("region failover restarts only the failed task's region; attempts grow and restarts counts them")
    func regionFailover() {
        var simulation = Cluster.simulation()
        simulation.submit(Cluster.lanes())
        simulation.failTask("lanes", "b", 1, at: .seconds(1))
        let report = simulation.run(until: .seconds(3))
        let job = report.job("lanes")!
        #expect(job.state == .running)
        #expect(Cluster.attempts(job) == ["a0": 0, "b0": 0, "c0": 0, "a1": 1, "b1": 1, "c1": 1])
        #expect(job.restarts == 3)
        #expect(Cluster.states(job) == [.running: 6])
        #expect(!report.history.contains { $0.contains("RESTARTING") })
        #expect(report.persistenceMismatches.isEmpty)
    }

    @Test("restart-all puts the job in RESTARTING and restarts every task")
    func restartAll() {
        var simulation = Cluster.simulation()
        simulation.submit(Cluster.lanes(failover: .restartAll))
        simulation.failTask("lanes", "a", 0, at: .seconds(1))
        let report = simulation.run(until: .seconds(3))
        let job = report.job("lanes")!
        #expect(job.state == .running)
        #expect(Set(Cluster.attempts(job).values) == [1])
        #expect(job.restarts == 6)
        #expect(report.history.contains { $0.contains("job lanes is RESTARTING") })
    }

    @Test("the tasks of a lost task executor restart on free slots of another")
    func lostTaskExecutor() {
        var simulation = Cluster.simulation()
        simulation.submit(Cluster.lanes())
        simulation.loseTaskExecutor("te1", at: .seconds(1))
        let report = simulation.run(until: .seconds(3))
        let job = report.job("lanes")!
        #expect(job.state == .running)
        #expect(Cluster.states(job) == [.running: 6])
        #expect(job.graph.allVertices.allSatisfy { job.graph.execution($0).location?.taskExecutor == "te2" })
        #expect(Set(Cluster.attempts(job).values) == [1])
        #expect(report.persistenceMismatches.isEmpty)
    }

    @Test("a batch job whose finished results are lost with their task executor produces them again")
    func lostBlockingResults() {
        var simulation = Cluster.simulation(executors: Cluster.executors(2, slots: 2)) {
            $0.taskDuration = Cluster.durations(["tokenize": 100, "sum": 400])
        }
        simulation.submit(Cluster.batch())
        simulation.loseTaskExecutor("te1", at: .milliseconds(300), returnAfter: .milliseconds(200))
        let report = simulation.run(until: .seconds(5))
        let job = report.job("batch")!
        #expect(job.state == .finished, "\(report.history.suffix(10))")
        #expect(job.restarts > 0)
        #expect(report.persistenceMismatches.isEmpty)
    }

    @Test("when the restart strategy allows no more restarts the job fails and frees its slots")
    func restartsRunOut() {
        var simulation = Cluster.simulation()
        simulation.submit(Cluster.lanes(restart: .fixedDelay(attempts: 1, delay: .milliseconds(10))))
        simulation.failTask("lanes", "a", 0, at: .seconds(1))
        simulation.failTask("lanes", "c", 1, at: .seconds(2))
        let report = simulation.run(until: .seconds(3))
        let job = report.job("lanes")!
        #expect(job.state == .failed)
        #expect(job.failureReason?.contains("no restart left") == true)
        #expect(job.graph.allVertices.allSatisfy { job.graph.execution($0).state.isTerminal })
        #expect(report.resourceManager.activeAllocations.isEmpty)
        #expect(report.history.contains { $0.contains("job lanes is FAILING") })
    }

    @Test("cancel ends the job CANCELED and frees its slots")
    func cancel() {
        var simulation = Cluster.simulation()
        simulation.submit(Cluster.lanes())
        simulation.cancel("lanes", at: .seconds(1))
        let report = simulation.run(until: .seconds(2))
        let job = report.job("lanes")!
        #expect(job.state == .canceled)
        #expect(Cluster.states(job) == [.canceled: 6])
        #expect(report.resourceManager.activeAllocations.isEmpty)
    }

    @Test("session mode: jobs share the cluster's slots; a job waits for slots another holds")
    func sessionSharesSlots() {
        var simulation = Cluster.simulation(executors: Cluster.executors(1, slots: 2)) {
            $0.taskDuration = Cluster.durations(["tokenize": 300, "sum": 200])
        }
        simulation.submit(Cluster.batch("first"))
        simulation.submit(Cluster.batch("second"), at: .milliseconds(50))
        let report = simulation.run(until: .seconds(5))
        #expect(report.job("first")?.state == .finished)
        #expect(report.job("second")?.state == .finished)
        let firstEnd = report.deployments.filter { $0.job == "first" }.map(\.millis).max()!
        let secondStart = report.deployments.filter { $0.job == "second" }.map(\.millis).min()!
        #expect(secondStart >= firstEnd, "the second job runs once the first frees its slots")
        #expect(report.shutDown == nil)
    }

    @Test("per-job mode runs one job and shuts down with its outcome")
    func perJob() {
        var simulation = Cluster.simulation(mode: .perJob) { $0.taskDuration = Cluster.durations(["tokenize": 50, "sum": 50]) }
        simulation.submit(Cluster.batch("only"))
        simulation.submit(Cluster.batch("another"), at: .milliseconds(10))
        let report = simulation.run(until: .seconds(2))
        #expect(report.shutDown == .finished)
        #expect(report.history.contains { $0.contains("submission of another refused: this per-job cluster runs job 'only' only, not 'another'") })
        #expect(report.dispatcher.jobs.map(\.id) == ["only"])
    }

    @Test("a slot that never frees up fails the task after the slot request timeout, saying what is short")
    func slotRequestTimeout() {
        var simulation = Cluster.simulation(executors: Cluster.executors(1, slots: 2)) {
            $0.jobMaster = JobMaster.Options(slotRequestTimeout: .seconds(1))
        }
        simulation.submit(Cluster.lanes("holder"))
        simulation.submit(Cluster.lanes("starved", restart: RestartStrategySpec.none), at: .milliseconds(100))
        let report = simulation.run(until: .seconds(3))
        let starved = report.job("starved")!
        #expect(starved.state == .failed)
        #expect(starved.failureReason?.contains("no slot within 1s: no task executor has free a default slot") == true, "\(starved.failureReason ?? "")")
        #expect(report.job("holder")?.state == .running)
    }

    @Test("submissions of an invalid job or a duplicate id are refused")
    func refusedSubmissions() throws {
        var dispatcher = Dispatcher(mode: .session)
        _ = try dispatcher.submit(Cluster.lanes(), now: .zero)
        #expect(throws: Dispatcher.DispatcherError.self) { try dispatcher.submit(Cluster.lanes(), now: .zero) }
        var bad = Cluster.lanes("bad")
        bad.vertices[0].parallelism = 0
        let error = #expect(throws: Dispatcher.DispatcherError.self) { try dispatcher.submit(bad, now: .zero) }
        #expect(error?.invalidJob?.code == .badParallelism)
    }

    @Test("job states follow their state machine")
    func jobStates() {
        let legal: Set<[JobState]> = [
            [.created, .running], [.created, .cancelling], [.created, .failing], [.running, .failing], [.running, .cancelling],
            [.running, .finished], [.running, .restarting], [.restarting, .running], [.restarting, .cancelling],
            [.restarting, .failing], [.failing, .failed], [.failing, .cancelling], [.cancelling, .canceled],
        ]
        for from in JobState.allCases {
            for to in JobState.allCases { #expect(from.canTransition(to: to) == legal.contains([from, to]), "\(from) -> \(to)") }
        }
    }
}

@Suite("seeded cluster runs")
struct SeededClusterTests {
    func chaoticRun(_ seed: UInt64) -> ClusterSimulation.Report {
        var simulation = Cluster.simulation(seed: seed, executors: Cluster.executors(3, slots: 2)) {
            $0.taskDuration = { vertex, _ in vertex.rawValue == "tokenize" ? .milliseconds(200) : vertex.rawValue == "sum" ? .milliseconds(300) : nil }
            $0.randomFailurePercentPerSecond = 30
        }
        simulation.submit(Cluster.lanes(restart: .fixedDelay(attempts: 1000, delay: .milliseconds(20))))
        simulation.submit(Cluster.batch(restart: .fixedDelay(attempts: 1000, delay: .milliseconds(20))), at: .milliseconds(100))
        simulation.loseTaskExecutor("te2", at: .seconds(2), returnAfter: .seconds(1))
        return simulation.run(until: .seconds(10))
    }

    @Test("the same seed gives the same history")
    func deterministic() {
        let first = chaoticRun(9)
        #expect(first.history == chaoticRun(9).history)
        #expect(first.history != chaoticRun(10).history)
    }

    @Test("under random task failures and a lost task executor, persisted changes rebuild every graph and jobs recover", arguments: [1, 2, 3, 4, 5] as [UInt64])
    func recoversUnderFailures(_ seed: UInt64) {
        let report = chaoticRun(seed)
        #expect(report.persistenceMismatches.isEmpty, "seed \(seed)")
        let lanes = report.job("lanes")!
        let batch = report.job("batch")!
        #expect(batch.state == .finished, "seed \(seed): \(report.history.suffix(15).joined(separator: "\n"))")
        #expect([.running, .restarting].contains(lanes.state), "seed \(seed)")
        #expect(lanes.restarts > 0, "seed \(seed): the failures must have hit")
        // Every allocation the resource manager holds belongs to a job that still uses it.
        #expect(report.resourceManager.activeAllocations.allSatisfy { $0.job == "lanes" }, "seed \(seed)")
    }
}

@Suite("schedule benchmark")
struct ScheduleBenchmarkTests {
    @Test("the benchmark's job deploys every subtask with ten subtasks per shared slot")
    func benchmarkRun() {
        let run = ScheduleBenchmark.run(subtasks: 1_000)
        #expect(run.subtasks == 1_000)
        #expect(run.slots == 100)
        #expect(run.deployments == 1_000)
        #expect(run.peakMemoryBytes > 0 && run.millis > 0)
    }
}

@Suite("throughput benchmark")
struct ThroughputBenchmarkTests {
    @Test("the keyed count runs with checkpoints into the exactly-once sink and reports its figures")
    func keyedCountFigures() async throws {
        let run = try await ThroughputBenchmark(
            job: .keyedCount, sink: .exactlyOnceFile, taskExecutors: 2, parallelism: 2, records: 400_000, checkpointInterval: .milliseconds(50)
        ).run()
        #expect(run.records == 400_000)
        #expect(run.recordsPerSecond > 0 && run.seconds > 0)
        #expect(run.checkpoints >= 1)
        #expect(run.checkpointMillis.median > 0)
        #expect(run.job == "keyed-count" && run.sink == "exactly-once-file" && run.taskExecutors == 2)
    }

    @Test("an endless keyed count is measured over its steady-state window, then drained with every record at the sinks")
    func steadyStateWindow() async throws {
        let run = try await ThroughputBenchmark(
            job: .keyedCount, sink: .discard, taskExecutors: 2, parallelism: 2, records: 1, checkpointInterval: .milliseconds(100), keys: 10_000,
            steadyState: .init(warmup: .milliseconds(300), window: .milliseconds(700))
        ).run()
        let window = try #require(run.windowSeconds)
        #expect(window >= 0.69 && window < run.seconds)
        #expect(run.records > 0 && run.recordsPerSecond > 0)
        #expect(run.keys == 10_000)
    }

    @Test("the batch word count reads a folder of files and its counts add up to the words read")
    func batchWordCount() async throws {
        let folder = try TemporaryDirectory("baton-bench-words")
        defer { folder.remove() }
        var words = 0
        for file in 0..<3 {
            var text = ""
            for line in 0..<2_000 {
                text += (0..<10).map { "w\(($0 * 7 + line + file) % 97)" }.joined(separator: " ") + "\n"
                words += 10
            }
            try text.write(toFile: folder.file("part-\(file).txt"), atomically: false, encoding: .utf8)
        }
        let run = try await ThroughputBenchmark(
            job: .batchWordCount, sink: .exactlyOnceFile, taskExecutors: 2, parallelism: 2, records: 1, checkpointInterval: .seconds(1),
            input: folder.path
        ).run()
        #expect(run.records == words)
        #expect(run.job == "batch-word-count" && run.sink == "file" && run.checkpoints == 0)
    }
}

@Suite("exchange benchmark")
struct ExchangeBenchmarkTests {
    @Test("batches cross from one data plane to another over TCP and every record is counted at the consumer")
    func everyRecordArrives() async throws {
        let run = try await ExchangeBenchmark(batches: 300, recordBytes: 512).run()
        #expect(run.records == 300 * (64 << 10) / 512)
        #expect(run.batchBytes > 64 << 10 && run.credits == 16)
        #expect(run.mebibytesPerSecond > 0 && run.cpuSecondsPerGibibyte > 0 && run.contextSwitchesPerThousandBatches >= 0)
    }

    @Test("a producer that fails part way makes the run fail, naming how far the consumer got")
    func aBrokenChannelFailsTheRun() async throws {
        var benchmark = ExchangeBenchmark(batches: 300, recordBytes: 512)
        benchmark.failAfter = 100
        let error = await #expect(throws: BenchmarkFailure.self) { try await benchmark.run() }
        #expect(error?.message.contains("records") == true, "\(String(describing: error))")
    }
}
