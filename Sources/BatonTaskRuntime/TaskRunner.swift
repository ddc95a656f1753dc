public import BatonCore
public import BatonDataPlane
import BatonJobGraph
import BatonOperators

/// What a task reports about itself while it runs.
public enum TaskEvent: Sendable, Equatable {
    case initializing, running, finished, canceled
    case failed(String)
}

/// Runs one task: builds its operator chain and output partitions, reads its inputs (or its
/// source), pushes every record through the chain into the outputs, and reports its states.
///
/// Records go out in batches: a batch is handed over when it is full, when the task has no
/// more input waiting (so a slow stream still flows), and at the end. Cancelling the Swift task
/// that runs it cancels the task: its pipelined outputs are failed so consumers do not wait.
public enum TaskRunner {
    public static let batchRecords = 512

    public static func run(
        _ spec: TaskSpec, dataPlane: DataPlane, time: any TimeSource = SystemTimeSource(),
        channelUpdates: AsyncStream<InputChannelSpec>? = nil, report: @escaping @Sendable (TaskEvent) async -> Void
    ) async {
        let writers = spec.outputs.map { output in
            ResultPartitionWriter(
                id: PartitionID(job: spec.attempt.job, result: output.result, producerSubtask: spec.attempt.subtask, producerAttempt: spec.attempt.attempt),
                spec: output, batchRecords: batchRecords)
        }
        await report(.initializing)
        do {
            for writer in writers { await dataPlane.registry.register(writer.id, writer.produced) }
            let isSource = OperatorCatalog.builtIn.entry(spec.operators.first?.name ?? "")?.isSource ?? false
            let boundedInput = isSource
                ? spec.operators.first?.parameters["to"] != nil || spec.operators.first?.name == "text-file"
                : !spec.inputs.isEmpty && spec.inputs.allSatisfy(\.blocking)
            let context = OperatorContext(
                jobVertex: spec.vertexID, subtask: spec.attempt.subtask, parallelism: spec.parallelism, attempt: spec.attempt.attempt,
                boundedInput: boundedInput)
            let chain = Chain(
                operators: try (isSource ? Array(spec.operators.dropFirst()) : spec.operators).map {
                    try OperatorFactory.transform($0, context: context)
                },
                writers: writers)
            await report(.running)
            if isSource {
                var source = try OperatorFactory.source(spec.operators[0], context: context)
                try await runSource(&source, chain: chain, writers: writers, time: time)
            } else {
                try await runInputs(spec, chain: chain, writers: writers, dataPlane: dataPlane, time: time, updates: channelUpdates)
            }
            try chain.finish()
            for writer in writers { await writer.finish() }
            await report(.finished)
        } catch {
            for writer in writers { await writer.abort(error) }
            if error is CancellationError || Task.isCancelled {
                await report(.canceled)
            } else {
                await report(.failed("\(error)"))
            }
        }
    }

    private static func runSource(
        _ source: inout any SourceOperator, chain: Chain, writers: [ResultPartitionWriter], time: any TimeSource
    ) async throws {
        let started = ContinuousClock.now
        var produced = 0
        var lastAdvance = ContinuousClock.now
        while true {
            try Task.checkCancellation()
            let more = try source.produce(limit: batchRecords) { record in
                produced += 1
                try chain.push(record)
            }
            for writer in writers { await writer.flushFull() }
            if ContinuousClock.now - lastAdvance >= .milliseconds(50) {
                try chain.advance(to: time.wallNow())
                lastAdvance = .now
            }
            if let rate = source.rate {
                let due = started + .milliseconds(Int64(Double(produced) / rate * 1000))
                if due > .now {
                    for writer in writers { await writer.flushAll() }
                    try await Task.sleep(until: due, clock: .continuous)
                }
            } else {
                for writer in writers { await writer.flush(olderThan: .milliseconds(10)) }
                await Task.yield()
            }
            if !more { return }
        }
    }

    private static func runInputs(
        _ spec: TaskSpec, chain: Chain, writers: [ResultPartitionWriter], dataPlane: DataPlane, time: any TimeSource,
        updates: AsyncStream<InputChannelSpec>?
    ) async throws {
        let gate = InputGate(channels: spec.inputs.flatMap(\.channels))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await gate.run(opener: dataPlane) }
            if let updates {
                group.addTask { for await update in updates { await gate.update(update) } }
            }
            defer { group.cancelAll() }
            var lastAdvance = ContinuousClock.now
            let pacing = chain.pacing
            let started = ContinuousClock.now
            var processed = 0
            while true {
                try Task.checkCancellation()
                var batch = gate.mailbox.poll()
                if batch == nil {
                    // Nothing waiting: hand over what was gathered so the stream keeps flowing.
                    for writer in writers { await writer.flushAll() }
                    batch = try await gate.mailbox.take()
                }
                guard let records = batch else { break }
                for record in records { try chain.push(record) }
                processed += records.count
                for writer in writers { await writer.flushFull() }
                if let pacing {
                    let due = started + .milliseconds(Int64(Double(processed) / pacing * 1000))
                    if due > .now { try await Task.sleep(until: due, clock: .continuous) }
                }
                if ContinuousClock.now - lastAdvance >= .milliseconds(50) {
                    try chain.advance(to: time.wallNow())
                    lastAdvance = .now
                }
            }
            await gate.close()
        }
    }

    /// The operator chain: each operator's output goes to the next, the last one's to the outputs.
    final class Chain: @unchecked Sendable {
        // @unchecked: used by the one task that runs the chain.
        final class Box {
            var operation: any StreamOperator
            init(_ operation: any StreamOperator) { self.operation = operation }
        }
        let boxes: [Box]
        let writers: [ResultPartitionWriter]

        init(operators: [any StreamOperator], writers: [ResultPartitionWriter]) {
            boxes = operators.map(Box.init)
            self.writers = writers
        }

        /// The slowest pacing of the chain.
        var pacing: Double? { boxes.compactMap(\.operation.pacing).min() }

        func push(_ record: Record, from index: Int = 0) throws {
            guard index < boxes.count else {
                for writer in writers { writer.add(record) }
                return
            }
            try boxes[index].operation.process(record) { try self.push($0, from: index + 1) }
        }

        func advance(to now: WallTime) throws {
            for (index, box) in boxes.enumerated() {
                try box.operation.advance(to: now) { try self.push($0, from: index + 1) }
            }
        }

        func finish() throws {
            for (index, box) in boxes.enumerated() {
                try box.operation.finish { try self.push($0, from: index + 1) }
            }
        }
    }
}
