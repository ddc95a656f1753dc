public import BatonCore
public import BatonHAStore
public import BatonExecutionGraph
public import BatonJobGraph
public import BatonJobMaster

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

    public init(graph: JobGraph, state: JobState, submittedAt: WallTime, restarts: Int, failure: String?, savepoint: String? = nil) {
        self.graph = graph
        self.state = state
        self.submittedAt = submittedAt
        self.restarts = restarts
        self.failure = failure
        self.savepoint = savepoint
    }
}

/// Keys of the job and execution-graph namespaces.
public enum JobKeys {
    public static func job(_ id: JobID) -> [UInt8] { StoreKey.text(id.rawValue) }

    /// `job id, 0x00, sequence`: the change records of a job in order.
    public static func change(_ id: JobID, _ sequence: UInt64) -> [UInt8] {
        StoreKey.text(id.rawValue) + [0] + StoreKey.uint64(sequence)
    }

    public static func changes(_ id: JobID) -> [UInt8] { StoreKey.text(id.rawValue) + [0] }
}

/// One change record of a job's ExecutionGraph as the store keeps it: the epoch of the leader
/// that wrote it (8 bytes, big-endian), then the change; the audit checks that the epochs never
/// go back (no write of a stale leader was accepted).
public struct ChangeRecord: Hashable, Sendable {
    public var sequence: UInt64
    public var epoch: Epoch
    public var change: ExecutionGraphChange

    public static func value(epoch: Epoch, _ change: ExecutionGraphChange) -> [UInt8] {
        StoreKey.uint64(epoch.rawValue) + ExecutionGraphCodec.encode(change)
    }

    /// Every change record of `job`, in order.
    public static func all(of job: JobID, in reader: StoreReader) throws -> [ChangeRecord] {
        let prefix = JobKeys.changes(job)
        return try reader.entries(.executionGraphs, prefix: prefix).map { entry in
            let sequence = StoreKey.readUInt64(entry.key.dropFirst(prefix.count)) ?? 0
            // Records written before epochs were kept start with the change's format byte (1);
            // an epoch's first byte is 0 (epochs stay far below 2^56).
            let stamped = entry.value.first == 0 && entry.value.count > 8
            let epoch = stamped ? StoreKey.readUInt64(entry.value.prefix(8)) ?? 0 : 0
            do {
                return ChangeRecord(
                    sequence: sequence, epoch: Epoch(epoch), change: try ExecutionGraphCodec.decode(Array(entry.value.dropFirst(stamped ? 8 : 0))))
            } catch {
                throw HAStoreError(.invalidValue, path: reader.path, "change \(sequence) of job \(job) does not decode", underlying: error)
            }
        }
    }
}

extension JobKeys {
    /// How many task attempts of `job` were restarted (all causes): the new attempts among its
    /// change records.
    public static func restarts(of job: JobID, in reader: StoreReader) throws -> Int {
        try ChangeRecord.all(of: job, in: reader).filter { if case .reset = $0.change { true } else { false } }.count
    }
}

/// One failover in the reconciliation journal (namespace `reconciliations`, key: the new epoch
/// then a sequence, 8 bytes big-endian each): what the new leader found and did, and when.
public struct ReconciliationRecord: Codable, Sendable, Hashable {
    public var fromEpoch: Epoch?
    public var toEpoch: Epoch
    public var leader: String
    /// When the previous term ended, and why (as its successor journaled it).
    public var previousTermEndedAt: WallTime?
    public var previousTermEnd: String?
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

    public static func key(epoch: Epoch) -> [UInt8] { StoreKey.uint64(epoch.rawValue) + StoreKey.uint64(0) }

    public struct CheckpointMark: Codable, Sendable, Hashable {
        public var id: UInt64
        public var completedAt: WallTime
        public init(id: UInt64, completedAt: WallTime) {
            self.id = id
            self.completedAt = completedAt
        }
    }

    public init(
        fromEpoch: Epoch?, toEpoch: Epoch, leader: String, previousTermEndedAt: WallTime?, previousTermEnd: String?, electedAt: WallTime,
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
