public import BatonCheckpointing
public import BatonCore
public import BatonExecutionGraph
public import BatonJobGraph

/// Everything a task executor needs to run one task attempt (Flink's TaskDeploymentDescriptor):
/// the chain of operators, where each input channel's producer runs, what its outputs feed, and
/// the checkpoint state to restore.
public struct TaskDeploymentDescriptor: Hashable, Sendable {
    /// One input of the task: a result of an upstream vertex, read through one channel per producer.
    public struct InputGate: Hashable, Sendable {
        public var result: Int
        public var blocking: Bool
        /// Each consumer reads one producer's single subpartition (forward), rather than its own
        /// subpartition of every producer.
        public var pointwise: Bool
        public var channels: [InputChannelDescriptor]

        public init(result: Int, blocking: Bool, pointwise: Bool, channels: [InputChannelDescriptor]) {
            self.result = result
            self.blocking = blocking
            self.pointwise = pointwise
            self.channels = channels
        }
    }

    public var job: JobID
    public var attempt: ExecutionAttemptID
    public var allocation: AllocationID
    public var vertexID: JobVertexID
    public var parallelism: Int
    public var maxParallelism: Int
    public var operators: [OperatorSpec]
    public var inputs: [InputGate]
    public var outputs: [OutputSpec]
    /// The checkpoint whose state the task restores, and that state (nil: the task starts afresh).
    public var restore: (checkpoint: CheckpointID, state: StateHandle)? {
        get { restoreCheckpoint.map { ($0, restoreState!) } }
        set {
            restoreCheckpoint = newValue?.checkpoint
            restoreState = newValue?.state
        }
    }
    private var restoreCheckpoint: CheckpointID?
    private var restoreState: StateHandle?

    public init(
        job: JobID, attempt: ExecutionAttemptID, allocation: AllocationID, vertexID: JobVertexID, parallelism: Int, maxParallelism: Int,
        operators: [OperatorSpec], inputs: [InputGate], outputs: [OutputSpec], restore: (checkpoint: CheckpointID, state: StateHandle)?
    ) {
        self.job = job
        self.attempt = attempt
        self.allocation = allocation
        self.vertexID = vertexID
        self.parallelism = parallelism
        self.maxParallelism = maxParallelism
        self.operators = operators
        self.inputs = inputs
        self.outputs = outputs
        self.restore = restore
    }
}

/// Where one producer of an input runs: its subtask and attempt, and, once it is deployed, its
/// task executor and that task executor's data address.
public struct InputChannelDescriptor: Hashable, Sendable {
    public var producerSubtask: Int
    public var producerAttempt: Int32
    /// Nil while the producer is not deployed yet (an update follows when it is).
    public var location: Location?

    public struct Location: Hashable, Sendable {
        public var taskExecutor: ResourceID
        /// `host:port` of the producer's data plane.
        public var dataAddress: String
        public init(taskExecutor: ResourceID, dataAddress: String) {
            self.taskExecutor = taskExecutor
            self.dataAddress = dataAddress
        }
    }

    public init(producerSubtask: Int, producerAttempt: Int32, location: Location?) {
        self.producerSubtask = producerSubtask
        self.producerAttempt = producerAttempt
        self.location = location
    }
}
