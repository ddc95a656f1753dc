/// What a leader reports about its live state in a `StatusReply` (`status_json`, as JSON): its
/// registered task executors and its jobs. One type for both ends of the wire.
public struct LeaderStatusReport: Codable, Sendable, Hashable {
    /// A task executor's resources in Flink's terms (memory in MiB).
    public struct Resources: Codable, Sendable, Hashable {
        public var cpuCores: Double
        public var taskHeapMemory: Int64
        public var managedMemory: Int64
        public var networkMemory: Int64
        public var extendedResources: [String: Int64]

        public init(cpuCores: Double, taskHeapMemory: Int64, managedMemory: Int64, networkMemory: Int64, extendedResources: [String: Int64]) {
            self.cpuCores = cpuCores
            self.taskHeapMemory = taskHeapMemory
            self.managedMemory = managedMemory
            self.networkMemory = networkMemory
            self.extendedResources = extendedResources
        }
    }

    public struct TaskExecutor: Codable, Sendable, Hashable {
        public var id: String
        public var slots: Int
        public var freeSlots: Int
        public var registeredEpoch: UInt64
        public var dataAddress: String
        /// Absent from leaders before this field.
        public var totalResource: Resources?
        public var freeResource: Resources?

        public init(
            id: String, slots: Int, freeSlots: Int, registeredEpoch: UInt64, dataAddress: String, totalResource: Resources? = nil,
            freeResource: Resources? = nil
        ) {
            self.id = id
            self.slots = slots
            self.freeSlots = freeSlots
            self.registeredEpoch = registeredEpoch
            self.dataAddress = dataAddress
            self.totalResource = totalResource
            self.freeResource = freeResource
        }
    }

    public struct Subtask: Codable, Sendable, Hashable {
        public var index: Int
        public var attempt: Int
        public var state: String
        public var taskExecutor: String?

        public init(index: Int, attempt: Int, state: String, taskExecutor: String?) {
            self.index = index
            self.attempt = attempt
            self.state = state
            self.taskExecutor = taskExecutor
        }
    }

    public struct Vertex: Codable, Sendable, Hashable {
        public var id: String
        public var parallelism: Int
        public var subtasks: [Subtask]

        public init(id: String, parallelism: Int, subtasks: [Subtask]) {
            self.id = id
            self.parallelism = parallelism
            self.subtasks = subtasks
        }
    }

    /// A job's latest completed checkpoint.
    public struct Checkpoint: Codable, Sendable, Hashable {
        public var id: UInt64?
        /// When it completed (ISO 8601, UTC).
        public var time: String?
        /// The bytes of every task's state.
        public var sizeBytes: UInt64?
        /// From the trigger to the last acknowledgement.
        public var durationMillis: Double?

        public init(id: UInt64? = nil, time: String? = nil, sizeBytes: UInt64? = nil, durationMillis: Double? = nil) {
            self.id = id
            self.time = time
            self.sizeBytes = sizeBytes
            self.durationMillis = durationMillis
        }

        enum CodingKeys: String, CodingKey { case id, time, sizeBytes, durationMillis }

        /// Every key is written, null before the first checkpoint (`lastCheckpoint.id` is a contract).
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(time, forKey: .time)
            try container.encode(sizeBytes, forKey: .sizeBytes)
            try container.encode(durationMillis, forKey: .durationMillis)
        }
    }

    /// One checkpoint as the job's checkpoint statistics show it.
    public struct CheckpointEntry: Codable, Sendable, Hashable {
        public var id: UInt64
        /// IN_PROGRESS, COMPLETED or FAILED.
        public var status: String
        public var isSavepoint: Bool
        /// Milliseconds since 1970.
        public var triggerTimestamp: Int64
        public var latestAckTimestamp: Int64?
        public var durationMillis: Double?
        public var sizeBytes: UInt64?
        public var failure: String?

        public init(
            id: UInt64, status: String, isSavepoint: Bool, triggerTimestamp: Int64, latestAckTimestamp: Int64?, durationMillis: Double?,
            sizeBytes: UInt64?, failure: String?
        ) {
            self.id = id
            self.status = status
            self.isSavepoint = isSavepoint
            self.triggerTimestamp = triggerTimestamp
            self.latestAckTimestamp = latestAckTimestamp
            self.durationMillis = durationMillis
            self.sizeBytes = sizeBytes
            self.failure = failure
        }
    }

    /// Minimum, maximum and average over the completed checkpoints counted.
    public struct Summary: Codable, Sendable, Hashable {
        public var min: Double
        public var max: Double
        public var avg: Double
        public init(min: Double, max: Double, avg: Double) {
            self.min = min
            self.max = max
            self.avg = avg
        }
    }

    /// A job's checkpoint statistics, under the leader that reports them (seeded from the retained checkpoints).
    public struct CheckpointStatistics: Codable, Sendable, Hashable {
        public var completed: Int
        public var failed: Int
        public var inProgress: Int
        public var latestCompleted: CheckpointEntry?
        public var latestSavepoint: CheckpointEntry?
        public var latestFailed: CheckpointEntry?
        /// The newest first.
        public var history: [CheckpointEntry]
        public var durationMillis: Summary
        public var sizeBytes: Summary

        public init(
            completed: Int, failed: Int, inProgress: Int, latestCompleted: CheckpointEntry?, latestSavepoint: CheckpointEntry?,
            latestFailed: CheckpointEntry?, history: [CheckpointEntry], durationMillis: Summary, sizeBytes: Summary
        ) {
            self.completed = completed
            self.failed = failed
            self.inProgress = inProgress
            self.latestCompleted = latestCompleted
            self.latestSavepoint = latestSavepoint
            self.latestFailed = latestFailed
            self.history = history
            self.durationMillis = durationMillis
            self.sizeBytes = sizeBytes
        }
    }

    /// A task failure the job's JobMaster handled under this leader.
    public struct TaskException: Codable, Sendable, Hashable {
        public var vertex: String
        public var subtask: Int
        public var attempt: Int
        public var cause: String
        public var taskExecutor: String?
        /// Milliseconds since 1970.
        public var timestamp: Int64

        public init(vertex: String, subtask: Int, attempt: Int, cause: String, taskExecutor: String?, timestamp: Int64) {
            self.vertex = vertex
            self.subtask = subtask
            self.attempt = attempt
            self.cause = cause
            self.taskExecutor = taskExecutor
            self.timestamp = timestamp
        }
    }

    public struct Job: Codable, Sendable, Hashable {
        public var id: String
        public var name: String
        public var state: String
        public var restarts: Int
        public var failure: String?
        public var lastCheckpoint: Checkpoint
        public var vertices: [Vertex]
        /// When the run was submitted and when it ended, in milliseconds since 1970 (absent: not known, or not ended).
        public var startTime: Int64?
        public var endTime: Int64?
        /// Absent for runs that ended under an earlier leader, and for jobs that take no checkpoints.
        public var checkpoints: CheckpointStatistics?
        /// The newest first; absent for runs that ended under an earlier leader.
        public var exceptions: [TaskException]?

        public init(
            id: String, name: String, state: String, restarts: Int, failure: String?, lastCheckpoint: Checkpoint = Checkpoint(),
            vertices: [Vertex], startTime: Int64? = nil, endTime: Int64? = nil, checkpoints: CheckpointStatistics? = nil,
            exceptions: [TaskException]? = nil
        ) {
            self.checkpoints = checkpoints
            self.exceptions = exceptions
            self.startTime = startTime
            self.endTime = endTime
            self.id = id
            self.name = name
            self.state = state
            self.restarts = restarts
            self.failure = failure
            self.lastCheckpoint = lastCheckpoint
            self.vertices = vertices
        }
    }

    public var taskExecutors: [TaskExecutor]
    public var jobs: [Job]

    public init(taskExecutors: [TaskExecutor], jobs: [Job]) {
        self.taskExecutors = taskExecutors
        self.jobs = jobs
    }
}
