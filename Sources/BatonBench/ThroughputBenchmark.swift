import BatonCheckpointing
import BatonCore
import BatonConfig
import BatonDataPlane
import BatonElection
import BatonExecutionGraph
import BatonFiles
import BatonHAStore
import BatonHAStoreSelection
import BatonJobGraph
import BatonStoreRecords
import BatonOperators
import BatonProcessControl
import BatonRPC
import BatonTaskRuntime
import Foundation
import Logging
import Synchronization

/// Records per second, end-to-end latency and checkpoint durations of a streaming job, run as
/// Flink's own benchmarks run theirs: on a mini cluster in one process. Its task executors are
/// real data planes serving on loopback (channels between them go over TCP with credit-based
/// flow control), its tasks are the real task runtime, its checkpoints are driven by the real
/// CheckpointCoordinator with the metadata committed fenced to a real SQLite store, the state
/// files and the exactly-once sink's files are really written and synced.
///
/// Jobs: `keyed-count` (a sequence source, hashed by key to a count and the sink) and
/// `word-count` (a text file, tokenized, hashed by word to a count and the sink).
public struct ThroughputBenchmark: Sendable {
    public enum Job: String, Codable, Sendable, CaseIterable {
        case keyedCount = "keyed-count"
        case wordCount = "word-count"
    }

    public enum Sink: String, Codable, Sendable, CaseIterable {
        case exactlyOnceFile = "exactly-once-file"
        case discard
    }

    public struct Run: Codable, Sendable, Hashable {
        public var job: String
        public var sink: String
        public var taskExecutors: Int
        public var parallelism: Int
        /// Records the sinks received (equal to the input: the run fails otherwise).
        public var records: Int
        /// `records` over `seconds`.
        public var recordsPerSecond: Double
        public var latencyMillis: LatencySummary
        /// From a checkpoint's trigger to its metadata committed durably (fenced) in the store.
        public var checkpointMillis: LatencySummary
        public var checkpoints: Int
        public var seconds: Double
    }

    public var job: Job
    public var sink: Sink
    public var taskExecutors: Int
    public var parallelism: Int
    public var records: Int
    public var checkpointInterval: Duration
    public var keys: Int

    public init(job: Job, sink: Sink, taskExecutors: Int, parallelism: Int, records: Int, checkpointInterval: Duration, keys: Int = 1024) {
        self.job = job
        self.sink = sink
        self.taskExecutors = taskExecutors
        self.parallelism = parallelism
        self.records = records
        self.checkpointInterval = checkpointInterval
        self.keys = keys
    }

    static let jobID: JobID = "bench"

    public func run() async throws -> Run {
        let workspace = try TemporaryDirectory("baton-bench-throughput")
        defer { workspace.remove() }
        let input = job == .wordCount ? try writeWords(to: workspace.file("words.txt")) : nil
        let configuration = RPCConfiguration(secret: Array("throughput-bench".utf8), heartbeatInterval: .seconds(1), heartbeatTimeout: .seconds(10))
        var logger = Logger(label: "baton.bench")
        logger.logLevel = .warning
        var planes: [DataPlane] = []
        var servers: [RPCServer] = []
        for index in 0..<taskExecutors {
            let id = Identifier(rawValue: "te\(index + 1)")!
            servers.append(
                try await RPCServer.bind(
                    host: "127.0.0.1", port: 0, identity: RPCPeer(id: id.rawValue, role: .taskExecutor), configuration: configuration, logger: logger))
            planes.append(DataPlane(taskExecutor: id, registry: PartitionRegistry(), configuration: configuration, logger: logger))
        }
        let locations = zip(planes, servers).map { InputChannelSpec.Location(taskExecutor: $0.taskExecutor, host: "127.0.0.1", port: $1.localPort) }
        let specs = taskSpecs(locations: locations, output: workspace.file("out"), input: input)
        let driver = try await CheckpointDriver(
            specs: specs, storePath: workspace.file("ha.sqlite"), interval: checkpointInterval, directory: workspace.file("checkpoints"))
        let metrics = TaskMetrics()
        let options = TaskRunner.Options(latencyMarkerInterval: .milliseconds(100), metrics: metrics)
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (plane, server) in zip(planes, servers) { group.addTask { try await plane.serve(server) } }
            group.addTask { await driver.run() }
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for (index, spec) in specs.enumerated() {
                    let plane = planes[spec.attempt.subtask % planes.count]
                    tasks.addTask {
                        await TaskRunner.run(spec, dataPlane: plane, control: driver.controls[index], options: options) { event in
                            driver.report(index, event)
                        }
                    }
                }
                try await tasks.waitForAll()
            }
            driver.finish()
            for server in servers { server.close() }
            group.cancelAll()
        }
        let seconds = (ContinuousClock.now - started).milliseconds / 1000
        if let failure = driver.failure { throw BenchmarkFailure(message: "a task failed: \(failure)") }
        let durations = driver.checkpointDurations
        let received = metrics.recordsIntoSinks
        guard received == records else {
            throw BenchmarkFailure(message: "the sinks received \(received) records of the \(records) the sources emitted")
        }
        return Run(
            job: job.rawValue, sink: sink.rawValue, taskExecutors: taskExecutors, parallelism: parallelism, records: received,
            recordsPerSecond: Double(received) / seconds, latencyMillis: LatencySummary(metrics.recordedLatencies.map(\.milliseconds)),
            checkpointMillis: LatencySummary(durations), checkpoints: durations.count, seconds: seconds)
    }

    /// The job's tasks: sources are vertex 0, counts (with the sink) vertex 1; subtask i of each
    /// runs on task executor i mod n.
    private func taskSpecs(locations: [InputChannelSpec.Location], output: String, input: String?) -> [TaskSpec] {
        let sourceOperators: [OperatorSpec] =
            job == .keyedCount
            ? [.sequence(from: 0, to: Int64(records), keys: keys)]
            : [OperatorSpec("text-file", ["path": input ?? ""]), OperatorSpec("tokenize")]
        let sinkOperator = sink == .discard ? OperatorSpec("discard") : .fileSink(output)
        var specs: [TaskSpec] = []
        for subtask in 0..<parallelism {
            specs.append(
                TaskSpec(
                    attempt: .init(job: Self.jobID, jobVertex: 0, subtask: subtask, attempt: 0), allocation: 1, vertexID: "source",
                    parallelism: parallelism, maxParallelism: 128, operators: sourceOperators, inputs: [],
                    outputs: [OutputSpec(result: 0, blocking: false, pattern: .hash, key: "key", consumerParallelism: parallelism, consumerMaxParallelism: 128)]))
        }
        for subtask in 0..<parallelism {
            let channels = (0..<parallelism).map { producer in
                InputChannelSpec(
                    partition: PartitionID(job: Self.jobID, result: 0, producerSubtask: producer, producerAttempt: 0), subpartition: subtask,
                    location: locations[producer % locations.count])
            }
            specs.append(
                TaskSpec(
                    attempt: .init(job: Self.jobID, jobVertex: 1, subtask: subtask, attempt: 0), allocation: 2, vertexID: "count",
                    parallelism: parallelism, maxParallelism: 128, operators: [.count(), sinkOperator],
                    inputs: [.init(result: 0, blocking: false, channels: channels)], outputs: []))
        }
        return specs
    }

    /// A text of `records` words over `keys` distinct words, ten to a line.
    private func writeWords(to path: String) throws -> String {
        var text = ""
        text.reserveCapacity(records * 8)
        for index in 0..<records {
            text += "w\(index % keys)"
            text += index % 10 == 9 ? "\n" : " "
        }
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        return path
    }
}

public struct BenchmarkFailure: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// The leader's part in the mini cluster: the job's CheckpointCoordinator, its actions carried out
/// in process (triggers and notices into the tasks' control mailboxes, metadata fenced into the
/// store, folders removed).
final class CheckpointDriver: Sendable {
    enum Input: Sendable {
        case event(Int, TaskEvent)
        case timer(CheckpointCoordinator.Timer)
    }

    let specs: [TaskSpec]
    let controls: [Mailbox<TaskControl>]
    private let inputs = Mailbox<Input>(capacity: 1 << 20)
    private let store: HAStore
    private let epoch: Epoch
    private let state: Mutex<State>
    private let time = SystemTimeSource()

    struct State {
        var coordinator: CheckpointCoordinator
        var running: Set<Int> = []
        /// When each pending checkpoint was triggered, and each completed one's trigger-to-commit time.
        var triggered: [UInt64: MonotonicInstant] = [:]
        var durations: [Double] = []
        var failure: String?
    }

    init(specs: [TaskSpec], storePath: String, interval: Duration, directory: String) async throws {
        self.specs = specs
        controls = specs.map { _ in Mailbox(capacity: 64) }
        store = try HAStoreSelection.open(.init(backend: .sqlite, path: storePath), access: .readWrite, time: time)
        let identity = LeaderIdentity(member: "bench", incarnation: Incarnation(rawValue: 1), address: "-", pid: getpid())
        guard
            case .won(let victory) = try await store.campaign(
                as: identity, expecting: .vacant(epoch: .none), leaseMillis: 600_000, now: time.wallNow())
        else { throw BenchmarkFailure(message: "the benchmark could not win a term in its own store") }
        epoch = victory.record.epoch
        let vertices = [
            CompletedCheckpoint.Vertex(index: 0, id: "source", parallelism: specs[0].parallelism),
            CompletedCheckpoint.Vertex(index: 1, id: "count", parallelism: specs[0].parallelism),
        ]
        let settings = CheckpointCoordinator.Settings(
            interval: interval, timeout: .seconds(60), retain: 3, directory: directory, savepointDirectory: directory + "/savepoints")
        state = Mutex(State(coordinator: CheckpointCoordinator(job: ThroughputBenchmark.jobID, vertices: vertices, settings: settings, nextID: 1)))
    }

    nonisolated func report(_ index: Int, _ event: TaskEvent) { inputs.force(.event(index, event)) }
    func finish() { inputs.finish() }
    var failure: String? { state.withLock { $0.failure } }
    var checkpointDurations: [Double] { state.withLock { $0.durations } }

    private var tasks: CheckpointCoordinator.Tasks {
        state.withLock { state in
            var attempts: [ExecutionVertexID: (attempt: Int32, running: Bool)] = [:]
            var sources: Set<ExecutionVertexID> = []
            for (index, spec) in specs.enumerated() {
                let vertex = ExecutionVertexID(jobVertex: spec.attempt.jobVertex, subtask: spec.attempt.subtask)
                attempts[vertex] = (0, state.running.contains(index))
                if spec.inputs.isEmpty { sources.insert(vertex) }
            }
            return .init(attempts: attempts, sources: sources)
        }
    }

    private func coordinator(_ body: (inout CheckpointCoordinator) -> [CheckpointCoordinator.Action]) -> [CheckpointCoordinator.Action] {
        state.withLock { body(&$0.coordinator) }
    }

    func run() async {
        // Timers are child tasks of this group: they end with the run.
        await withDiscardingTaskGroup { timers in
            await carryOut(coordinator { $0.start() }, timers: &timers)
            while let input = try? await inputs.take() {
                switch input {
                case .event(let index, let event):
                    let spec = specs[index]
                    let attempt = ExecutionAttemptID(vertex: ExecutionVertexID(jobVertex: spec.attempt.jobVertex, subtask: spec.attempt.subtask), attempt: 0)
                    switch event {
                    case .running: state.withLock { _ = $0.running.insert(index) }
                    case .finished, .canceled: state.withLock { _ = $0.running.remove(index) }
                    case .failed(let message): state.withLock { $0.failure = $0.failure ?? message; $0.running.remove(index) }
                    case .checkpointAcknowledged(let id, let handle):
                        let (wall, now) = (time.wallNow(), time.monotonicNow())
                        await carryOut(coordinator { $0.acknowledge(attempt, checkpoint: id, state: handle, wall: wall, now: now) }, timers: &timers)
                        continue
                    case .checkpointDeclined(let id, let reason):
                        await carryOut(coordinator { $0.decline(attempt, checkpoint: id, reason: reason) }, timers: &timers)
                        continue
                    case .initializing: continue
                    }
                    let tasks = self.tasks
                    await carryOut(coordinator { $0.tasksChanged(tasks) }, timers: &timers)
                case .timer(let timer):
                    let (tasks, wall, now) = (self.tasks, time.wallNow(), time.monotonicNow())
                    await carryOut(coordinator { $0.timerFired(timer, tasks: tasks, wall: wall, now: now) }, timers: &timers)
                }
            }
            _ = coordinator { $0.stop(reason: "the benchmark ended") }
            timers.cancelAll()
        }
    }

    private func carryOut(_ actions: [CheckpointCoordinator.Action], timers: inout DiscardingTaskGroup) async {
        var queue = actions[...]
        while let action = queue.popFirst() {
            switch action {
            case .persistCounter(let next):
                try? await store.write(fencedBy: epoch) { try CheckpointRecords.writeCounter($0, job: ThroughputBenchmark.jobID, next: next) }
            case .trigger(let trigger):
                let now = time.monotonicNow()
                state.withLock { $0.triggered[trigger.id] = now }
                for source in trigger.sources {
                    guard let index = specs.firstIndex(where: { $0.inputs.isEmpty && $0.attempt.subtask == Int(source.vertex.subtask) }) else { continue }
                    controls[index].force(
                        .triggerCheckpoint(CheckpointTrigger(id: trigger.id, timestamp: trigger.timestamp, directory: trigger.directory, isSavepoint: false)))
                }
            case .startTimer(let timer, let after):
                let inputs = self.inputs
                timers.addTask {
                    try? await Task.sleep(for: after)
                    inputs.force(.timer(timer))
                }
            case .persistCompleted(let checkpoint, let subsumed):
                let (tasks, wall, now) = (self.tasks, time.wallNow(), time.monotonicNow())
                do {
                    try await store.write(fencedBy: epoch) { try CheckpointRecords.writeCompleted($0, checkpoint, subsumed: subsumed, epoch: self.epoch, committedAt: wall) }
                    let committed = time.monotonicNow()
                    state.withLock { state in
                        if let triggered = state.triggered.removeValue(forKey: checkpoint.id) { state.durations.append(committed.since(triggered).milliseconds) }
                    }
                    queue += coordinator { $0.completionPersisted(checkpoint.id, wall: wall, now: now, tasks: tasks) }
                } catch {
                    queue += coordinator { $0.completionFailed(checkpoint.id, reason: "\(error)") }
                }
            case .notifyComplete(let id):
                for control in controls { control.force(.checkpointCompleted(id)) }
            case .discard(let directory):
                DurableFiles.removeTree(directory)
            case .aborted(let id, _):
                state.withLock { _ = $0.triggered.removeValue(forKey: id) }
            case .completed, .writeSavepoint, .savepointFinished, .savepointFailed:
                break
            }
        }
    }
}
