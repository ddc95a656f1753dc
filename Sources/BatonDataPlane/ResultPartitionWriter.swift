import BatonCore
public import BatonJobGraph
public import BatonOperators


/// Writes a task's records into one result partition: routes each record to its
/// subpartitions (forward, round robin, by key group, or to all), gathers them in batches, and
/// hands full batches to the subpartitions (waiting when a pipelined consumer is behind).
///
/// Used by the one task that produces the partition.
public final class ResultPartitionWriter: @unchecked Sendable {
    // @unchecked: owned by the one task that writes the partition.
    public let id: PartitionID
    public let spec: OutputSpec
    public let produced: ProducedPartition
    private var builders: [RecordBatchCodec.Builder]
    private var oldestUnflushed: [ContinuousClock.Instant?]
    private var roundRobin: Int
    private var markerTarget = 0
    private let batchRecords: Int
    private let batchBytes: Int
    public private(set) var recordsWritten: Int = 0
    /// Time spent handing batches to pipelined subpartitions: waiting while a consumer is behind
    /// (back pressure), plus the hand-over itself.
    public private(set) var handOverWait: Duration = .zero

    /// A batch is full at `batchRecords` records or `batchBytes` bytes, as Flink's network
    /// buffers are 32 KiB. Blocking subpartitions keep their batches within `blockingMemory` and
    /// spill past it.
    public init(
        id: PartitionID, spec: OutputSpec, pipelinedCapacity: Int = 8, batchRecords: Int = 8192, batchBytes: Int = 64 << 10,
        blockingMemory: BlockingResultMemory? = nil
    ) {
        self.id = id
        self.spec = spec
        let count = spec.subpartitionCount
        let name = "\(id.job)-r\(id.result)-p\(id.producerSubtask)-a\(id.producerAttempt)"
        produced = spec.blocking
            ? .blocking((0..<count).map { BlockingSubpartition(memory: blockingMemory, name: "\(name)-s\($0)") })
            : .pipelined((0..<count).map { _ in PipelinedSubpartition(capacity: pipelinedCapacity) })
        builders = (0..<count).map { _ in ChannelEventCodec.recordsBuilder(capacity: batchBytes) }
        oldestUnflushed = Array(repeating: nil, count: count)
        roundRobin = id.producerSubtask % max(1, count)
        self.batchRecords = batchRecords
        self.batchBytes = batchBytes
    }

    /// Routes a run of records to their subpartitions' batches (no I/O; call `flushFull` after).
    public func add(_ records: [Record]) {
        guard !records.isEmpty else { return }
        recordsWritten += records.count
        // The batches are taken out for the run: one access to the writer's storage, not one per record.
        var batches: [RecordBatchCodec.Builder] = []
        swap(&batches, &builders)
        defer { swap(&batches, &builders) }
        for index in batches.indices where batches[index].isEmpty { oldestUnflushed[index] = .now }
        switch spec.pattern {
        case .forward:
            for record in records { batches[0].append(record) }
        case .rebalance:
            var next = roundRobin
            for record in records {
                batches[next].append(record)
                next = next + 1 == batches.count ? 0 : next + 1
            }
            roundRobin = next
        case .hash:
            let (maxParallelism, parallelism) = (spec.consumerMaxParallelism, spec.consumerParallelism)
            for record in records {
                batches[KeyGroups.subtask(for: record.key, maxParallelism: maxParallelism, parallelism: parallelism)].append(record)
            }
        case .broadcast:
            for index in batches.indices {
                for record in records { batches[index].append(record) }
            }
        }
    }

    /// Hands over every full batch.
    public func flushFull() async {
        for index in builders.indices where builders[index].count >= batchRecords || builders[index].byteCount >= batchBytes {
            await flush(index)
        }
    }

    /// Hands over batches older than `age` (latency bound for slow streams).
    public func flush(olderThan age: Duration) async {
        let now = ContinuousClock.now
        for index in builders.indices where !builders[index].isEmpty {
            if let oldest = oldestUnflushed[index], now - oldest >= age { await flush(index) }
        }
    }

    /// Hands over everything gathered.
    public func flushAll() async {
        for index in builders.indices where !builders[index].isEmpty { await flush(index) }
    }

    public var hasUnflushed: Bool { builders.contains { !$0.isEmpty } }

    /// Hands `event` (a barrier, a latency marker) to every pipelined subpartition, behind the
    /// records gathered so far. Blocking results carry records only.
    public func broadcast(_ event: ChannelEvent) async {
        guard case .pipelined(let list) = produced else { return }
        await flushAll()
        let bytes = ChannelEventCodec.encode(event)
        for subpartition in list { await subpartition.write(bytes) }
    }

    /// Hands `event` to one pipelined subpartition (round robin), behind its gathered records.
    public func emitToOne(_ event: ChannelEvent) async {
        guard case .pipelined(let list) = produced else { return }
        markerTarget = (markerTarget + 1) % list.count
        if !builders[markerTarget].isEmpty { await flush(markerTarget) }
        await list[markerTarget].write(ChannelEventCodec.encode(event))
    }

    private func flush(_ index: Int) async {
        let batch = builders[index].take()
        oldestUnflushed[index] = nil
        switch produced {
        case .pipelined(let list):
            let started = ContinuousClock.now
            await list[index].write(batch)
            handOverWait += ContinuousClock.now - started
        case .blocking(let list): await list[index].write(batch)
        }
    }

    /// Flushes and ends every subpartition; throws if a blocking batch could not be spilled.
    public func finish() async throws {
        await flushAll()
        switch produced {
        case .pipelined(let list): for subpartition in list { await subpartition.finish() }
        case .blocking(let list): for subpartition in list { try await subpartition.finish() }
        }
    }

    /// Ends every pipelined subpartition with an error (the producer failed or was canceled), so
    /// that its consumers fail rather than wait.
    public func abort(_ error: any Error) async {
        if case .pipelined(let list) = produced {
            for subpartition in list { await subpartition.fail(error) }
        }
    }
}
