public import BatonCore
public import BatonDataPlane
public import BatonJobGraph

/// A deployed task as its task executor runs it (from a DeployTask message).
public struct TaskSpec: Sendable {
    public struct AttemptKey: Hashable, Sendable, CustomStringConvertible {
        public var job: JobID
        public var jobVertex: Int
        public var subtask: Int
        public var attempt: Int
        public init(job: JobID, jobVertex: Int, subtask: Int, attempt: Int) {
            self.job = job
            self.jobVertex = jobVertex
            self.subtask = subtask
            self.attempt = attempt
        }
        public var description: String { "\(job)/\(jobVertex)#\(subtask)@\(attempt)" }
    }

    public struct Input: Sendable {
        public var result: Int
        public var blocking: Bool
        public var channels: [InputChannelSpec]
        public init(result: Int, blocking: Bool, channels: [InputChannelSpec]) {
            self.result = result
            self.blocking = blocking
            self.channels = channels
        }
    }

    public var attempt: AttemptKey
    public var allocation: AllocationID
    public var vertexID: JobVertexID
    public var parallelism: Int
    public var maxParallelism: Int
    public var operators: [OperatorSpec]
    public var inputs: [Input]
    public var outputs: [OutputSpec]
    /// The checkpoint to restore the chain's state from (nil: start afresh).
    public var restore: TaskRestore?

    public init(
        attempt: AttemptKey, allocation: AllocationID, vertexID: JobVertexID, parallelism: Int, maxParallelism: Int, operators: [OperatorSpec],
        inputs: [Input], outputs: [OutputSpec], restore: TaskRestore? = nil
    ) {
        self.restore = restore
        self.attempt = attempt
        self.allocation = allocation
        self.vertexID = vertexID
        self.parallelism = parallelism
        self.maxParallelism = maxParallelism
        self.operators = operators
        self.inputs = inputs
        self.outputs = outputs
    }
}
