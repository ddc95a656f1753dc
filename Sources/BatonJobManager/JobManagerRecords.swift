public import BatonCore
public import BatonElection
public import BatonJobGraph
public import BatonJobMaster
public import BatonScheduling

/// A submitted job as the HA store keeps it (namespace `jobs`, key: the job id).
public struct JobRecord: Codable, Sendable, Hashable {
    public var graph: JobGraph
    /// The job's state when last written (a value that is no JobState does not decode).
    public var state: JobState
    public var submittedAt: WallTime
    public var restarts: Int
    public var failure: String?
    /// The savepoint folder the job started from, if any.
    public var savepoint: String?
    /// What the job's restart strategy has counted (absent in records written before it was kept).
    public var restartBudget: RestartBudget?
    /// Which run of the job id this is (1, 2, ...; absent in records written before runs: 1).
    public var run: Int?
    public var runNumber: Int { run ?? 1 }
    /// Whether it was submitted to a per-job cluster, which ends with it.
    public var perJob: Bool?

    public init(graph: JobGraph, state: JobState, submittedAt: WallTime, restarts: Int, failure: String?, savepoint: String? = nil, restartBudget: RestartBudget? = nil,
        run: Int? = nil, perJob: Bool? = nil
    ) {
        self.run = run
        self.perJob = perJob
        self.graph = graph
        self.state = state
        self.submittedAt = submittedAt
        self.restarts = restarts
        self.failure = failure
        self.savepoint = savepoint
        self.restartBudget = restartBudget
    }
}

/// One failover in the reconciliation journal (namespace `reconciliations`, key: the new epoch
/// then a sequence, 8 bytes big-endian each): what the new leader found and did, and when.
public struct ReconciliationRecord: Codable, Sendable, Hashable {
    public var fromEpoch: Epoch?
    public var toEpoch: Epoch
    public var leader: MemberID
    /// When the previous term ended, and why (as its successor journaled it).
    public var previousTermEndedAt: WallTime?
    public var previousTermEnd: TermEndReason?
    /// When this term began.
    public var electedAt: WallTime
    /// When the runtime had loaded the jobs (the start of reconciliation).
    public var loadedAt: WallTime
    public var reconciledAt: WallTime?
    public var nextCheckpointAt: WallTime?
    /// From the start of the term to reconciliation done, and to the next completed checkpoint.
    public var reconcileMillis: Double?
    public var nextCheckpointMillis: Double?
    public var jobs: Int
    public var adopted: Int
    public var finished: Int
    public var restarted: Int
    public var cancelled: Int
    /// Whether the window closed before every expected attempt was reported.
    public var windowClosed: Bool
    /// Per job, the latest completed checkpoint the new leader found (id and completion time).
    public var checkpointsAtTakeover: [String: CheckpointMark]?

    public struct CheckpointMark: Codable, Sendable, Hashable {
        public var id: CheckpointID
        public var completedAt: WallTime
        public init(id: CheckpointID, completedAt: WallTime) {
            self.id = id
            self.completedAt = completedAt
        }
    }

    public init(
        fromEpoch: Epoch?, toEpoch: Epoch, leader: MemberID, previousTermEndedAt: WallTime?, previousTermEnd: TermEndReason?, electedAt: WallTime,
        loadedAt: WallTime, reconciledAt: WallTime? = nil, nextCheckpointAt: WallTime? = nil, reconcileMillis: Double? = nil,
        nextCheckpointMillis: Double? = nil, jobs: Int, adopted: Int, finished: Int, restarted: Int, cancelled: Int, windowClosed: Bool,
        checkpointsAtTakeover: [String: CheckpointMark]? = nil
    ) {
        self.fromEpoch = fromEpoch
        self.toEpoch = toEpoch
        self.leader = leader
        self.previousTermEndedAt = previousTermEndedAt
        self.previousTermEnd = previousTermEnd
        self.electedAt = electedAt
        self.loadedAt = loadedAt
        self.reconciledAt = reconciledAt
        self.nextCheckpointAt = nextCheckpointAt
        self.reconcileMillis = reconcileMillis
        self.nextCheckpointMillis = nextCheckpointMillis
        self.jobs = jobs
        self.adopted = adopted
        self.finished = finished
        self.restarted = restarted
        self.cancelled = cancelled
        self.windowClosed = windowClosed
        self.checkpointsAtTakeover = checkpointsAtTakeover
    }
}

/// An ended run of a job as the history keeps it (namespace `jobHistory`, key: job id, 0x00, run):
/// what status, audit and clients need once the run left the set a new leader loads.
public struct JobSummary: Codable, Sendable, Hashable {
    public var id: JobID
    public var run: Int
    public var name: String
    public var state: JobState
    public var submittedAt: WallTime
    public var endedAt: WallTime
    public var restarts: Int
    public var failure: String?
    public var lastCheckpoint: ReconciliationRecord.CheckpointMark?

    public init(
        id: JobID, run: Int, name: String, state: JobState, submittedAt: WallTime, endedAt: WallTime, restarts: Int, failure: String?,
        lastCheckpoint: ReconciliationRecord.CheckpointMark?
    ) {
        self.id = id
        self.run = run
        self.name = name
        self.state = state
        self.submittedAt = submittedAt
        self.endedAt = endedAt
        self.restarts = restarts
        self.failure = failure
        self.lastCheckpoint = lastCheckpoint
    }
}
