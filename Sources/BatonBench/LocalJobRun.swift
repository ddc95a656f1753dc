public import BatonCore
public import BatonJobGraph
import BatonDataPlane
import BatonJobMaster
import BatonProcessControl
import BatonRPC
import BatonTaskRuntime
import Logging

/// `baton run`: one job in this process on the mini cluster the throughput benchmark uses (the
/// real JobManager, task runtime and data plane over loopback; a private store in a temporary
/// folder; no election, no HA). Task failures fail over as the job's strategies say.
public struct LocalJobRun: Sendable {
    /// Where the job stands.
    public struct Progress: Sendable, Hashable {
        public var state: String
        public var tasks: Int
        public var running: Int
        public var finished: Int
        public var restarts: Int
        public var checkpoint: UInt64?
        public var checkpointMillis: Double?
        public var failure: String?
    }

    public struct Outcome: Sendable {
        public var state: String
        public var progress: Progress?
        public var recordsIntoSinks: Int
        public var seconds: Double
    }

    public var graph: JobGraph
    public var taskExecutors: Int
    public var checkpointInterval: Duration

    public init(graph: JobGraph, taskExecutors: Int = 1, checkpointInterval: Duration = .seconds(1)) {
        self.graph = graph
        self.taskExecutors = taskExecutors
        self.checkpointInterval = checkpointInterval
    }

    /// Runs the job to its end. `every` is called about once per `period` with the job's
    /// progress and the records its sinks took so far; `stop` is polled as often, and once it
    /// says so the job's input ends (it finishes once drained).
    public func run(
        period: Duration = .seconds(1), stop: @escaping @Sendable () -> Bool = { false },
        every: @escaping @Sendable (Progress, Int) -> Void
    ) async throws -> Outcome {
        let workspace = try TemporaryDirectory("baton-run")
        defer { workspace.remove() }
        var logger = Logger(label: "baton.run")
        logger.logLevel = .warning
        let subtasks = graph.vertices.map(\.parallelism).reduce(0, +)
        let metrics = TaskMetrics()
        let cluster = try await MiniCluster(
            executors: try await MiniCluster.localTaskExecutors(taskExecutors, slots: (subtasks + taskExecutors - 1) / taskExecutors, logger: logger),
            storePath: workspace.file("ha.sqlite"), checkpoints: workspace.file("checkpoints"),
            interval: graph.configuration.checkpointInterval ?? checkpointInterval, options: TaskRunner.Options(metrics: metrics), failOnCancel: false)
        let (job, started) = (graph.id, ContinuousClock.now)
        let reporter = Task {
            var stopped = false
            while !Task.isCancelled {
                try? await Task.sleep(for: period)
                // The last line is the caller's, once the job ended.
                if let progress = cluster.progress(of: job), JobState(rawValue: progress.state)?.isTerminal != true {
                    every(progress, metrics.recordsIntoSinks)
                }
                if !stopped, stop() {
                    stopped = true
                    cluster.endInput(job)
                }
            }
        }
        defer { reporter.cancel() }
        let ended = try await cluster.runToEnd(graph)
        return Outcome(
            state: ended.rawValue, progress: cluster.progress(of: job), recordsIntoSinks: metrics.recordsIntoSinks,
            seconds: (ContinuousClock.now - started).milliseconds / 1000)
    }
}

extension MiniCluster {
    /// `count` task executors of `slots` slots each, data planes serving on free loopback ports.
    /// `count` task executors serving on loopback; with `spill`, blocking results keep at most
    /// `blockingMemory` bytes in memory on each and spill the rest below that folder.
    static func localTaskExecutors(
        _ count: Int, slots: Int, blockingMemory: Int = 256 << 20, spill: String? = nil, logger: Logger
    ) async throws -> [TaskExecutor] {
        let configuration = RPCConfiguration(secret: Array("baton-mini-cluster".utf8), heartbeatInterval: .seconds(1), heartbeatTimeout: .seconds(10))
        var executors: [TaskExecutor] = []
        for index in 0..<count {
            let id = ResourceID(rawValue: "te\(index + 1)")!
            let server = try await RPCServer.bind(
                host: "127.0.0.1", port: 0, identity: RPCPeer(id: id.rawValue, role: .taskExecutor), configuration: configuration, logger: logger)
            executors.append(
                .init(
                    id: id,
                    plane: DataPlane(
                        taskExecutor: id,
                        registry: PartitionRegistry(blockingMemory: try spill.map { try BlockingResultMemory(budgetBytes: blockingMemory, directory: "\($0)/\(id)") }),
                        configuration: configuration, logger: logger),
                    server: server, slots: slots))
        }
        return executors
    }
}
