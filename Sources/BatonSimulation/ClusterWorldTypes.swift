import BatonCheckpointing
public import BatonCore
public import BatonElection
import BatonExecutionGraph
public import BatonJobGraph
import BatonJobManager
public import BatonJobMaster
public import BatonResourceManager
import BatonTaskSlots

/// What a simulated cluster is made of and which faults it suffers.
public struct ClusterConfiguration: Sendable {
    public var seed: UInt64
    public var masters = 3
    public var duration: Duration = .seconds(60)
    public var election = LeaderElection.Configuration(leaseDuration: .seconds(2), renewInterval: .milliseconds(500), pollInterval: .milliseconds(500))
    public var tickInterval: Duration = .milliseconds(10)
    /// Store latency in milliseconds, drawn for applying an operation and again for its reply.
    public var storeLatencyMillis: ClosedRange<Int> = 0...5
    public var storeStallMillis: ClosedRange<Int> = 200...1_500
    /// Time between faults, in milliseconds.
    public var faultIntervalMillis: ClosedRange<Int> = 300...2_000
    public var restartDelayMillis: ClosedRange<Int> = 50...500
    public var pauseMillis: ClosedRange<Int> = 300...5_000
    /// The election-only fault mix: kills and pauses of any candidate, forever.
    public var electionFaults = false
    /// Chance (percent) that an election fault is a kill rather than a pause.
    public var killPercent = 60
    /// How many faults to draw from the seed (kinds from `faultKinds`).
    public var randomFaults = 0
    public var faultKinds: [FaultKind] = FaultKind.allCases
    /// Faults at given times (tests).
    public var scheduledFaults: [ScheduledFault] = []
    /// Faults of the store itself, for testing the checkers: never on in a real run.
    public var storeFaults: Set<StoreFault> = []

    public var taskExecutors: [TaskExecutorResources] = []
    public var jobs: [(JobGraph, at: Duration)] = []
    public var mode: Dispatcher.Mode = .session
    public var takeover: TakeoverPolicy = .reconcile
    public var jobMaster = JobMaster.Options()
    public var reconciliationWindow: Duration = .seconds(3)
    public var checkpointInterval: Duration = .milliseconds(200)
    public var checkpointTimeout: Duration = .seconds(5)
    public var retainedCheckpoints = 2
    /// Change records between snapshots of a job's ExecutionGraph (`jobs.snapshotEvery`).
    public var snapshotEvery = 1000
    /// Network latency between a leader and a task executor, in milliseconds (a slow link: ×20).
    public var networkLatencyMillis: ClosedRange<Int> = 0...3
    /// How long either end of a connection takes to notice it broke.
    public var heartbeatTimeout: Duration = .milliseconds(500)
    /// How long each step of a task takes (deploy to INITIALIZING to RUNNING, cancel to CANCELED).
    public var taskStepMillis: ClosedRange<Int> = 1...5
    /// How long a task runs before it finishes; nil: until it is canceled (streaming).
    public var taskDuration: @Sendable (JobVertexID, Int) -> Duration? = { _, _ in nil }
    /// Chance, in percent per second, that a running task fails on its own.
    public var randomTaskFailurePercentPerSecond: Double = 0
    /// Records a running source emits per millisecond.
    public var recordsPerMillisecond: Int64 = 10
    /// Whether each leader runs a JobManager (off: the election alone).
    public var leadersRunJobManager = true
    /// Whether to keep a line per notable event (a replay keeps them; a sweep of seeds does not).
    public var keepsHistory = true
    /// The run ends once leaders have written this many change records (a long life, made fast).
    public var stopAfterChangeRecords: Int?

    public init(seed: UInt64) { self.seed = seed }
}

/// The faults a simulation draws from its seed.
public enum FaultKind: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
    /// The leading master is killed (its process and its member lock go).
    case leaderCrash = "leader-crash"
    /// The leading master is paused for longer than its lease, then resumes.
    case leaderPause = "leader-pause"
    case standbyCrash = "standby-crash"
    /// A task executor is killed with its tasks; it starts again after a while.
    case taskExecutorCrash = "task-executor-crash"
    /// The store answers nothing for a while (a write lock held by a paused process).
    case storeStall = "store-stall"
    /// Messages between the leader and one task executor are slow for a while (and overtake
    /// messages on other connections).
    case networkDelay = "network-delay"
    /// The connection between the leader and a task executor breaks: what is in flight is lost.
    case connectionLoss = "connection-loss"

    public static func < (lhs: FaultKind, rhs: FaultKind) -> Bool { lhs.rawValue < rhs.rawValue }
}

public struct ScheduledFault: Sendable {
    public var fault: ScheduledFaultKind
    public var at: Duration
    public init(_ fault: ScheduledFaultKind, at: Duration) {
        self.fault = fault
        self.at = at
    }
}

/// A fault at a given time: one of the random kinds, or one aimed at a task.
public enum ScheduledFaultKind: Sendable {
    case kind(FaultKind)
    /// The current attempt of `vertex[subtask]` fails (if it runs then).
    case failTask(JobID, JobVertexID, Int, reason: String)
    /// A task executor goes away with its tasks; it starts again after `returnAfter` (never if nil).
    case loseTaskExecutor(ResourceID, returnAfter: Duration?)
    case cancel(JobID)
}

/// Faults of the simulated store that break an invariant on purpose, so that a test can see
/// each checker fire on a history the real instances produced.
public enum StoreFault: String, Sendable, Hashable, CaseIterable {
    /// Writes of a stale epoch are accepted (no fencing).
    case unfenced
    /// Completed checkpoints' metadata is lost right after it is written.
    case loseCompletedCheckpoints = "lose-completed-checkpoints"
}

/// One violation of an invariant or of liveness.
public struct SimulationViolation: Sendable, Hashable, Codable, CustomStringConvertible {
    /// `I1`...`I4`, or `liveness`.
    public var invariant: String
    /// What was violated: an audit check's kind (docs/checks.md) or one of the simulation's own.
    public var kind: String
    public var message: String
    public init(invariant: String, kind: String, message: String) {
        self.invariant = invariant
        self.kind = kind
        self.message = message
    }
    public var description: String { "\(invariant) \(kind): \(message)" }
}

/// One deployment a task executor received, in order.
public struct SimulatedDeployment: Hashable, Sendable {
    public var millis: Double
    public var job: JobID
    public var vertex: JobVertexID
    public var subtask: Int
    public var attempt: Int32
    public var taskExecutor: ResourceID
}

struct FaultCounts {
    var byKind: [FaultKind: Int] = [:]
    var total = 0
    var kills = 0
    var pauses = 0
}

enum LockOwner: Equatable {
    case process(Int, incarnation: UInt64)
    case watcher(Int)
}

struct LinkKey: Hashable {
    var master: Int
    var executor: Int
}

enum StoreOperation {
    case read
    case campaign(CampaignExpectation)
    case renew(Epoch)
    case relinquish(Epoch, TermEndReason)
    case loadTakeover(Epoch)
    case write(Epoch, [JobManager.StoreWrite])
}

enum StoreReply {
    case read(LeadershipRecord?)
    case campaign(LeadershipRules.CampaignOutcome)
    case renew(Epoch, Result<Void, FencedWrite>)
    case relinquished
    case takeover(Epoch, JobManager.Takeover)
    case written(Epoch, accepted: Bool)
}

/// What travels from a task executor to a leader.
enum ToLeader {
    case register(JobManager.Registration)
    case report(TaskReport)
    case acknowledge(JobID, ExecutionAttemptID, checkpoint: CheckpointID, state: StateHandle)
    case decline(JobID, ExecutionAttemptID, checkpoint: CheckpointID, reason: String)
}

/// What travels from a leader to a task executor.
enum ToTaskExecutor {
    case registered(Epoch)
    case notLeader
    case command(JobManager.Command, Epoch)
}

enum WorldEvent {
    case tick(Int, incarnation: UInt64)
    case storeApply(Int, incarnation: UInt64, StoreOperation)
    case storeReply(Int, incarnation: UInt64, StoreReply)
    case fault
    case scheduled(ScheduledFaultKind)
    case restartMaster(Int)
    case resume(Int)
    case recheckLocks
    case submit(JobGraph)
    case retrySubmissions
    /// A leader's timer (for the term of `epoch`).
    case leaderTimer(Int, epoch: Epoch, JobManager.Timer)
    /// A message arrives on a connection.
    case toLeader(Int, connection: UInt64, from: Int, ToLeader, buffered: Bool = false)
    case toTaskExecutor(Int, connection: UInt64, ToTaskExecutor)
    /// An end of a connection notices that it broke.
    case leaderNoticesLoss(Int, connection: UInt64, executor: Int)
    case executorNoticesLoss(Int, connection: UInt64)
    case lookForLeader(Int, incarnation: UInt64)
    case taskStep(Int, incarnation: UInt64, TaskAttempt, ExecutionState)
    case restartTaskExecutor(Int)
    /// A checkpoint barrier from producer subtask `producer` reaches a consumer task.
    case barrier(Int, incarnation: UInt64, TaskAttempt, checkpoint: CheckpointID, producer: Int)
    /// A running task fails on its own.
    case taskFails(Int, incarnation: UInt64, TaskAttempt)
    /// The heartbeat timeout of a connection to a master that may be paused.
    case heartbeatCheck(Int, connection: UInt64, master: Int)
}

/// One master process: its election, and while it leads, its leader shell.
struct SimulatedMaster {
    var id: MemberID
    var incarnation: UInt64 = 0
    var alive = false
    var paused = false
    var election: LeaderElection?
    /// Election actions waiting to be carried out, in order.
    var pending: [LeaderElection.Action] = []
    /// Waiting for the reply of a store operation.
    var busy = false
    var tickWaiting = false
    var deathReports: [MemberID] = []
    /// Member whose lock this candidate's watcher holds until the report is handled.
    var holdingLockOf: MemberID?
    var handlingDeathOf: MemberID?
    var bufferedReplies: [StoreReply] = []
    /// Since when it has been alive and running (nil when dead or paused).
    var runningSince: UInt64?
    var lastReport: [MemberID: UInt64] = [:]
    var pausedUntil: UInt64 = 0
    /// Resumed with its runtime first: its election has not ticked since (it does not know yet
    /// that its lease ran out, as a real process right after SIGCONT).
    var awaitingTick = false
    var leader: LeaderShell?
}

/// What a leading master's shell holds for its term.
struct LeaderShell {
    enum Input {
        case event(JobManager.Event)
        case register(Int, connection: UInt64, JobManager.Registration)
        case lost(Int, connection: UInt64)
    }

    var epoch: Epoch
    /// Nil until the takeover is loaded from the store.
    var manager: JobManager?
    var loading = true
    /// Waiting for a write to commit; its batch's effects follow.
    var writing = false
    var effectsAfterWrite: [JobManager.Effect] = []
    /// The term ended (a write was refused): nothing more is carried out.
    var ended = false
    var inputs: [Input] = []
    var batches: ArraySlice<JobManager.Ready> = []
    /// The effects of the batch whose writes committed, still to carry out.
    var effects: ArraySlice<JobManager.Effect> = []
    /// The connection each registered task executor registered on.
    var connections: [Int: UInt64] = [:]
    var nextRequest: UInt64 = 1
    var requests: [JobManager.RequestID: JobID] = [:]
}

/// One task executor process: the real TaskSlotTable, its connection, and simulated tasks.
struct SimulatedTaskExecutor {
    var resources: TaskExecutorResources
    var table: TaskSlotTable
    var alive = true
    var incarnation: UInt64 = 0
    /// The connection to a leader (master index, its epoch), once registered or while registering.
    var connection: (master: Int, id: UInt64, epoch: Epoch, registered: Bool)?
    var tasks: [TaskAttempt: SimulatedTask] = [:]
    var lookingSince: UInt64?
}

/// A task as the simulation runs it: its state, and for sources and sinks what the checks need.
struct SimulatedTask {
    var descriptor: TaskDeploymentDescriptor
    var state: ExecutionState
    /// Sources: where the task started (the restored position), and since when it ran.
    var startPosition: Int64 = 0
    var runningSince: UInt64?
    var stoppedAt: Int64?
    /// Sinks: per producer subtask, where the data not committed yet starts; the positions at
    /// each barrier not committed yet.
    var pendingStart: [Int: Int64] = [:]
    var pending: [(checkpoint: CheckpointID, positions: [Int: Int64])] = []
    var barriersSeen: Set<CheckpointID> = []
}

/// The exactly-once sinks' committed output: per job, sink subtask and producer subtask, how far
/// the committed records reach, and the last checkpoint committed.
struct SinkOutputs {
    struct Key: Hashable {
        var job: JobID
        var sink: Int
    }
    var committedThrough: [Key: CheckpointID] = [:]
    var ends: [Key: [Int: Int64]] = [:]
    var commits = 0
}
