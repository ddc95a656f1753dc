/// One output of a task, as its deployment describes it: a result partition and how records
/// spread over its consumers.
public struct OutputSpec: Hashable, Sendable {
    public var result: Int
    public var blocking: Bool
    public var pattern: DistributionPattern
    public var key: String?
    public var consumerParallelism: Int
    public var consumerMaxParallelism: Int

    public init(result: Int, blocking: Bool, pattern: DistributionPattern, key: String?, consumerParallelism: Int, consumerMaxParallelism: Int) {
        self.result = result
        self.blocking = blocking
        self.pattern = pattern
        self.key = key
        self.consumerParallelism = consumerParallelism
        self.consumerMaxParallelism = consumerMaxParallelism
    }

    /// One subpartition per consumer subtask, or one for a forward (pointwise) edge.
    public var subpartitionCount: Int { pattern.isPointwise ? 1 : consumerParallelism }
}
