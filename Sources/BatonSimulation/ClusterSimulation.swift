public import BatonCore
import BatonExecutionGraph
import BatonJobManager
public import BatonJobGraph
public import BatonJobMaster
public import BatonResourceManager

/// A deterministic simulation of one master and its task executors running jobs: `ClusterWorld`
/// with a single master candidate (the real `LeaderElection`, `JobManager` and `TaskSlotTable`),
/// simulated tasks that move through their states, a virtual clock, and injected faults (task
/// failures, lost task executors). The same seed and inputs give the same history.
///
/// It also checks persistence: every change the leader wrote to the simulated store is replayed
/// into a fresh ExecutionGraph, which must equal the JobMaster's graph at the end
/// (`persistenceMismatches`).
public struct ClusterSimulation: Sendable {
    public struct Configuration: Sendable {
        public var seed: UInt64
        public var mode: Dispatcher.Mode = .session
        public var taskExecutors: [TaskExecutorResources]
        /// How long each step of a task executor takes (deploy to INITIALIZING to RUNNING, cancel
        /// to CANCELED), in milliseconds.
        public var stepMillis: ClosedRange<Int> = 1...5
        /// How long a task runs before it finishes; nil: until it is canceled (streaming).
        public var taskDuration: @Sendable (JobVertexID, Int) -> Duration? = { _, _ in nil }
        /// Chance, in percent per second, that a running task fails on its own.
        public var randomFailurePercentPerSecond: Double = 0
        public var jobMaster = JobMaster.Options()

        public init(seed: UInt64, taskExecutors: [TaskExecutorResources]) {
            self.seed = seed
            self.taskExecutors = taskExecutors
        }
    }

    public struct Report: Sendable {
        public var history: [String]
        /// Every deployment the leader sent, in order.
        public var deployments: [SimulatedDeployment]
        public var dispatcher: Dispatcher
        public var shutDown: JobState?
        /// Jobs whose persisted change records do not rebuild their ExecutionGraph.
        public var persistenceMismatches: [JobID]
        public var resourceManager: ResourceManager

        public func job(_ id: JobID) -> JobMaster? { dispatcher.job(id) }
    }

    private var cluster: ClusterConfiguration

    public init(_ configuration: Configuration) {
        cluster = ClusterConfiguration(seed: configuration.seed)
        cluster.masters = 1
        cluster.taskExecutors = configuration.taskExecutors
        cluster.mode = configuration.mode
        cluster.taskStepMillis = configuration.stepMillis
        cluster.taskDuration = configuration.taskDuration
        cluster.randomTaskFailurePercentPerSecond = configuration.randomFailurePercentPerSecond
        cluster.jobMaster = configuration.jobMaster
    }

    public mutating func submit(_ job: JobGraph, at time: Duration = .zero) { cluster.jobs.append((job, at: time)) }

    public mutating func cancel(_ job: JobID, at time: Duration) { cluster.scheduledFaults.append(ScheduledFault(.cancel(job), at: time)) }

    /// Makes the current attempt of `vertex[subtask]` fail at `time` (if it runs then).
    public mutating func failTask(_ job: JobID, _ vertex: JobVertexID, _ subtask: Int, at time: Duration, reason: String = "injected failure") {
        cluster.scheduledFaults.append(ScheduledFault(.failTask(job, vertex, subtask, reason: reason), at: time))
    }

    /// Takes a task executor away at `time` (its tasks vanish); it starts again after `returnAfter`.
    public mutating func loseTaskExecutor(_ id: ResourceID, at time: Duration, returnAfter: Duration? = nil) {
        cluster.scheduledFaults.append(ScheduledFault(.loseTaskExecutor(id, returnAfter: returnAfter), at: time))
    }

    public func run(until end: Duration) -> Report {
        var configuration = cluster
        configuration.duration = end
        var world = ClusterWorld(configuration)
        world.run()
        // The leader's JobManager runs ahead of the store while a write is in flight: compare them
        // where the store holds everything it decided.
        world.settleLeader()
        let leader = world.masters.compactMap { $0.leader?.manager }.last
        let dispatcher = leader?.dispatcher ?? Dispatcher(mode: configuration.mode)
        var mismatches: [JobID] = []
        for job in dispatcher.jobs {
            guard case .success(let rebuilt) = world.store.rebuild(job.jobGraph), rebuilt.0.executionsInOrder == job.graph.executionsInOrder else {
                mismatches.append(job.id)
                continue
            }
        }
        return Report(
            history: world.history, deployments: world.deployments, dispatcher: dispatcher, shutDown: world.shutDown,
            persistenceMismatches: mismatches, resourceManager: leader?.resources ?? ResourceManager())
    }
}
