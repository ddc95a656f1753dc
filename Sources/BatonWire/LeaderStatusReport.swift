/// What a leader reports about its live state in a `StatusReply` (`status_json`, as JSON): its
/// registered task executors and its jobs. One type for both ends of the wire.
public struct LeaderStatusReport: Codable, Sendable, Hashable {
    public struct TaskExecutor: Codable, Sendable, Hashable {
        public var id: String
        public var slots: Int
        public var freeSlots: Int
        public var registeredEpoch: UInt64
        public var dataAddress: String

        public init(id: String, slots: Int, freeSlots: Int, registeredEpoch: UInt64, dataAddress: String) {
            self.id = id
            self.slots = slots
            self.freeSlots = freeSlots
            self.registeredEpoch = registeredEpoch
            self.dataAddress = dataAddress
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

    public struct Job: Codable, Sendable, Hashable {
        public var id: String
        public var name: String
        public var state: String
        public var restarts: Int
        public var failure: String?
        public var lastCheckpoint: Checkpoint
        public var vertices: [Vertex]

        public init(
            id: String, name: String, state: String, restarts: Int, failure: String?, lastCheckpoint: Checkpoint = Checkpoint(),
            vertices: [Vertex]
        ) {
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
