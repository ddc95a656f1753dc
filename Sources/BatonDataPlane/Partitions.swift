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
    /// The next batch if one is there now (nil: none yet, or the end; `next` tells which).
    func nextIfReady() throws -> EncodedBatch?
}

extension SubpartitionReader {
    public func nextIfReady() throws -> EncodedBatch? { nil }
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
    public func nextIfReady() -> EncodedBatch? { queue.poll() }
}

/// A subpartition of a blocking result: every batch is kept (until the job releases it), and
/// every consumer attempt reads it from the start, once the producer finished. Batches are kept
/// in memory while the task executor's budget for blocking results lasts (`BlockingResultMemory`),
/// and from the first that does not fit, in a spill file of the subpartition's own.
public actor BlockingSubpartition {
    private let memory: BlockingResultMemory?
    private let name: String
    private var batches: [EncodedBatch] = []
    private var reservedBytes = 0
    private var spill: SpillFile?
    private var spillFailure: SpillError?
    private var finished = false
    private var released = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// Without `memory`, every batch stays in memory.
    public init(memory: BlockingResultMemory? = nil, name: String = "result") {
        self.memory = memory
        self.name = name
    }

    public func write(_ batch: EncodedBatch) {
        guard !released, spillFailure == nil else { return }
        if spill == nil {
            guard let memory else {
                batches.append(batch)
                return
            }
            if memory.reserve(batch.count) {
                reservedBytes += batch.count
                batches.append(batch)
                return
            }
            do {
                spill = try SpillFile(path: memory.newSpillPath(name))
            } catch {
                spillFailure = error as? SpillError ?? SpillError("\(error)")
                return
            }
        }
        do {
            try spill?.append(batch)
        } catch {
            spillFailure = error as? SpillError ?? SpillError("\(error)")
        }
    }

    /// The producer finished; throws if a batch could not be spilled (the producer fails).
    public func finish() throws {
        spill?.close()
        finished = true
        for waiter in waiting { waiter.resume() }
        waiting.removeAll()
        if let spillFailure { throw spillFailure }
    }

    /// Waits until the producer finished, then hands out the batches in memory and the spill
    /// file that holds the rest, if any.
    func complete() async -> (batches: [EncodedBatch], spillPath: String?) {
        if !finished { await withCheckedContinuation { waiting.append($0) } }
        return (batches, spill?.path)
    }

    /// Every batch, read back from the spill file too (tests).
    public func completeBatches() async throws -> [EncodedBatch] {
        let reader = BlockingSubpartitionReader(self)
        var all: [EncodedBatch] = []
        while let batch = try await reader.next() { all.append(batch) }
        return all
    }

    /// Bytes held in memory.
    public var byteCount: Int { batches.reduce(0) { $0 + $1.count } }
    public var spillPath: String? { spill?.path }

    /// The result is no longer needed: its memory goes back to the budget and its file goes
    /// (a reader that has it open reads on).
    public func release() {
        guard !released else { return }
        released = true
        memory?.giveBack(reservedBytes)
        reservedBytes = 0
        batches = []
        spill?.remove()
    }
}

/// Reads a blocking subpartition from the start: its batches in memory, then its spill file.
public final class BlockingSubpartitionReader: SubpartitionReader, @unchecked Sendable {
    // @unchecked: `position`, `batches` and `file` are used by the one task that reads.
    private let subpartition: BlockingSubpartition
    private var batches: [EncodedBatch]?
    private var spillPath: String?
    private var file: SpillFileReader?
    private var position = 0

    public init(_ subpartition: BlockingSubpartition) { self.subpartition = subpartition }

    public func next() async throws -> EncodedBatch? {
        if batches == nil { (batches, spillPath) = await subpartition.complete() }
        if position < batches!.count {
            defer { position += 1 }
            return batches![position]
        }
        guard let spillPath else { return nil }
        if file == nil { file = try SpillFileReader(path: spillPath) }
        return try file!.next()
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

    /// Gives a blocking result's memory back and removes its spill files.
    func release() async {
        if case .blocking(let list) = self { for subpartition in list { await subpartition.release() } }
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
    /// The budget and spill folder of the blocking results produced here (nil: all in memory).
    public nonisolated let blockingMemory: BlockingResultMemory?

    public init(blockingMemory: BlockingResultMemory? = nil) { self.blockingMemory = blockingMemory }

    public func register(_ id: PartitionID, _ partition: ProducedPartition) {
        partitions[id] = partition
    }

    public func lookup(_ id: PartitionID) -> ProducedPartition? { partitions[id] }

    /// Drops every partition of `job` (its results are no longer needed): blocking results give
    /// their memory back and their spill files go.
    public func release(job: JobID) async {
        let dropped = partitions.filter { $0.key.job == job }
        partitions = partitions.filter { $0.key.job != job }
        for partition in dropped.values { await partition.release() }
    }

    /// Drops one partition.
    public func release(_ id: PartitionID) async {
        await partitions.removeValue(forKey: id)?.release()
    }

    /// Drops the partitions one producer attempt wrote into `results` (every consumer finished).
    public func release(job: JobID, results: [Int], producerSubtask: Int, producerAttempt: Int) async {
        for result in results {
            await release(PartitionID(job: job, result: result, producerSubtask: producerSubtask, producerAttempt: producerAttempt))
        }
    }

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
