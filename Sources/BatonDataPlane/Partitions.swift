public import BatonCore
public import BatonJobGraph

/// One partition of an intermediate result: written by one producer attempt.
public struct PartitionID: Hashable, Sendable, CustomStringConvertible {
    public var job: JobID
    public var result: Int
    public var producerSubtask: Int
    public var producerAttempt: Int

    public init(job: JobID, result: Int, producerSubtask: Int, producerAttempt: Int) {
        self.job = job
        self.result = result
        self.producerSubtask = producerSubtask
        self.producerAttempt = producerAttempt
    }

    public var description: String { "\(job)/r\(result)/p\(producerSubtask)@\(producerAttempt)" }
}

/// An encoded batch of records.
public typealias EncodedBatch = [UInt8]

/// How a consumer reads one subpartition.
public protocol SubpartitionReader: Sendable {
    /// The next batch, waiting for it; nil at the end of the partition.
    func next() async throws -> EncodedBatch?
}

/// A subpartition of a pipelined result: a bounded queue between the producer and its one
/// consumer. The producer waits when the consumer falls behind.
public final class PipelinedSubpartition: SubpartitionReader, Sendable {
    let queue: Mailbox<EncodedBatch>

    public init(capacity: Int) { queue = Mailbox(capacity: capacity) }

    public func write(_ batch: EncodedBatch) async { await queue.put(batch) }
    public func finish() async { queue.finish() }
    public func fail(_ error: any Error) async { queue.fail(error) }
    public func next() async throws -> EncodedBatch? { try await queue.take() }
}

/// A subpartition of a blocking result: every batch is kept (until the job releases it), and
/// every consumer attempt reads it from the start, once the producer finished.
public actor BlockingSubpartition {
    private var batches: [EncodedBatch] = []
    private var finished = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    public init() {}

    public func write(_ batch: EncodedBatch) { batches.append(batch) }

    public func finish() {
        finished = true
        for waiter in waiting { waiter.resume() }
        waiting.removeAll()
    }

    /// Waits until the producer finished, then hands out every batch.
    public func completeBatches() async -> [EncodedBatch] {
        if !finished { await withCheckedContinuation { waiting.append($0) } }
        return batches
    }

    public var byteCount: Int { batches.reduce(0) { $0 + $1.count } }
}

/// Reads a blocking subpartition from the start.
public final class BlockingSubpartitionReader: SubpartitionReader, @unchecked Sendable {
    // @unchecked: `position` and `batches` are used by the one task that reads.
    private let subpartition: BlockingSubpartition
    private var batches: [EncodedBatch]?
    private var position = 0

    public init(_ subpartition: BlockingSubpartition) { self.subpartition = subpartition }

    public func next() async throws -> EncodedBatch? {
        if batches == nil { batches = await subpartition.completeBatches() }
        guard position < batches!.count else { return nil }
        defer { position += 1 }
        return batches![position]
    }
}

/// A produced partition: its subpartitions, one per consumer subtask (one for forward edges).
public enum ProducedPartition: Sendable {
    case pipelined([PipelinedSubpartition])
    case blocking([BlockingSubpartition])

    public var subpartitionCount: Int {
        switch self {
        case .pipelined(let list): list.count
        case .blocking(let list): list.count
        }
    }

    public func reader(_ index: Int) -> (any SubpartitionReader)? {
        switch self {
        case .pipelined(let list): index < list.count ? list[index] : nil
        case .blocking(let list): index < list.count ? BlockingSubpartitionReader(list[index]) : nil
        }
    }
}

/// The partitions a task executor holds, so that consumers (local or remote) can find them. A
/// consumer that asks before its producer registered the partition polls until it appears or
/// its patience runs out (`partition(_:patience:)`).
public actor PartitionRegistry {
    private var partitions: [PartitionID: ProducedPartition] = [:]

    public init() {}

    public func register(_ id: PartitionID, _ partition: ProducedPartition) {
        partitions[id] = partition
    }

    public func lookup(_ id: PartitionID) -> ProducedPartition? { partitions[id] }

    /// Drops every partition of `job` (its results are no longer needed).
    public func release(job: JobID) {
        partitions = partitions.filter { $0.key.job != job }
    }

    /// Drops the partitions of one producer attempt.
    public func release(_ id: PartitionID) { partitions[id] = nil }

    public var count: Int { partitions.count }
}

extension PartitionRegistry {
    /// The partition, polling for up to `patience` while its producer has not registered it yet.
    public func partition(_ id: PartitionID, patience: Duration) async -> ProducedPartition? {
        let deadline = ContinuousClock.now + patience
        while true {
            if let partition = lookup(id) { return partition }
            guard ContinuousClock.now < deadline, !Task.isCancelled else { return nil }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}
