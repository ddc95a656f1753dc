public import BatonCheckpointing
public import BatonCore
public import BatonDataPlane
import BatonFiles
import BatonJobGraph
import BatonOperators

/// What a task reports about itself while it runs: its states, and its part in checkpoints.
public enum TaskEvent: Sendable, Equatable {
    case initializing, running, finished, canceled
    case failed(String)
    /// The task's state of checkpoint `id` is durable at `state`.
    case checkpointAcknowledged(CheckpointID, StateHandle)
    /// The task could not take checkpoint `id`.
    case checkpointDeclined(CheckpointID, String)
}

/// Runs one task: builds its operator chain and output partitions, restores the chain's state
/// from a checkpoint when the deployment names one, reads its inputs (or its source), pushes
/// every record through the chain into the outputs, takes checkpoints, and reports its states.
///
/// Checkpoints: a source takes one when the task executor triggers it; a task with inputs takes
/// one when the checkpoint's barrier arrived on all of its channels (`BarrierAligner`). Taking it
/// means: snapshot every operator of the chain, send the barrier on every output behind the
/// records before it, write the snapshots to one synced file, and acknowledge with its handle.
///
/// Records go out in batches: a batch is handed over when it is full, when the task has no
/// more input waiting (so a slow stream still flows), and at the end. Cancelling the Swift task
/// that runs it cancels the task: its pipelined outputs are failed so consumers do not wait.
public enum TaskRunner {
    public static let batchRecords = 512

    /// How many records a source limited to `rate` per second emits at a time: 2 ms' worth, at
    /// least one, at most a full batch.
    public static func throttledBatch(rate: Double) -> Int { max(1, min(batchRecords, Int(rate * 0.002))) }

    public struct Options: Sendable {
        /// How often sources emit latency markers (nil: never).
        public var latencyMarkerInterval: Duration?
        /// Where sinks record the latency markers they receive.
        public var metrics: TaskMetrics?
        /// Where a source attempt writes its range (`SourceRanges`) when it stops (nil: nowhere).
        public var sourceRangeDirectory: String?
        public init(latencyMarkerInterval: Duration? = nil, metrics: TaskMetrics? = nil, sourceRangeDirectory: String? = nil) {
            self.latencyMarkerInterval = latencyMarkerInterval
            self.metrics = metrics
            self.sourceRangeDirectory = sourceRangeDirectory
        }
    }

    public static func run(
        _ spec: TaskSpec, dataPlane: DataPlane, time: any TimeSource = SystemTimeSource(),
        channelUpdates: AsyncStream<InputChannelSpec>? = nil, control: Mailbox<TaskControl> = Mailbox(capacity: 1),
        options: Options = Options(), report: @escaping @Sendable (TaskEvent) async -> Void
    ) async {
        let writers = spec.outputs.map { output in
            ResultPartitionWriter(
                id: PartitionID(job: spec.attempt.job, result: output.result, producerSubtask: spec.attempt.subtask, producerAttempt: spec.attempt.attempt),
                spec: output, blockingMemory: dataPlane.registry.blockingMemory)
        }
        await report(.initializing)
        do {
            for writer in writers { await dataPlane.registry.register(writer.id, writer.produced) }
            let task = try RunningTask(spec, writers: writers, time: time, options: options, report: report)
            defer {
                task.io.publish(writers)
                task.io.remove()
            }
            try task.restore(spec.restore, attempt: spec.attempt.attempt)
            await report(.running)
            if task.source != nil {
                try await task.runSource(control: control)
            } else {
                try await task.runInputs(dataPlane: dataPlane, updates: channelUpdates, control: control)
            }
            try task.chain.finish()
            for writer in writers { try await writer.finish() }
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
}

/// One task while it runs: its chain (and source), outputs and checkpointing.
final class RunningTask: @unchecked Sendable {
    // @unchecked: used by the one Swift task that runs it.
    let spec: TaskSpec
    let writers: [ResultPartitionWriter]
    let chain: Chain
    var source: (any SourceOperator)?
    let time: any TimeSource
    let options: Options
    let report: @Sendable (TaskEvent) async -> Void
    let io: TaskIOMetrics
    typealias Options = TaskRunner.Options

    init(
        _ spec: TaskSpec, writers: [ResultPartitionWriter], time: any TimeSource, options: Options,
        report: @escaping @Sendable (TaskEvent) async -> Void
    ) throws {
        self.spec = spec
        self.writers = writers
        self.time = time
        self.options = options
        self.report = report
        io = TaskIOMetrics(spec)
        let isSource = OperatorCatalog.builtIn.entry(spec.operators.first?.name ?? "")?.isSource ?? false
        let boundedInput = isSource
            ? spec.operators.first?.parameters["to"] != nil || spec.operators.first?.name == "text-file"
            : !spec.inputs.isEmpty && spec.inputs.allSatisfy(\.blocking)
        let context = OperatorContext(
            jobVertex: spec.vertexID, subtask: spec.attempt.subtask, parallelism: spec.parallelism, attempt: spec.attempt.attempt,
            boundedInput: boundedInput)
        chain = Chain(
            operators: try (isSource ? Array(spec.operators.dropFirst()) : spec.operators).map {
                try OperatorFactory.transform($0, context: context)
            },
            writers: writers)
        source = isSource ? try OperatorFactory.source(spec.operators[0], context: context) : nil
    }

    /// How many operators keep state in a checkpoint (the source, then the chain).
    private var operatorCount: Int { chain.boxes.count + (source == nil ? 0 : 1) }

    // MARK: restore

    /// Restores every operator from the checkpoint the deployment names; a restarted attempt
    /// without one starts afresh (sinks drop what earlier attempts left uncommitted).
    func restore(_ restore: TaskRestore?, attempt: Int) throws {
        guard let restore else {
            if attempt > 0 {
                try source?.restoreState(nil, checkpoint: nil)
                for box in chain.boxes { try box.operation.restoreState(nil, checkpoint: nil) }
            }
            return
        }
        let parts = try TaskStateFile.read(restore.state)
        guard parts.count == operatorCount else {
            throw TaskStateError(
                "the state of checkpoint \(restore.checkpoint) at \(restore.state.path) holds \(parts.count) operator states; the chain of \(spec.vertexID) has \(operatorCount) operators")
        }
        var index = 0
        if source != nil {
            try source!.restoreState(parts[0], checkpoint: restore.checkpoint)
            index = 1
        }
        for box in chain.boxes {
            try box.operation.restoreState(parts[index], checkpoint: restore.checkpoint)
            index += 1
        }
    }

    // MARK: checkpoints

    /// Snapshots the chain, forwards the barrier, writes the state durably and acknowledges.
    func takeCheckpoint(_ trigger: CheckpointTrigger) async throws {
        var parts: [[UInt8]] = []
        do {
            let savepoint = trigger.isSavepoint ? trigger.directory : nil
            if source != nil { parts.append(try source!.snapshotState(checkpoint: trigger.id, savepointDirectory: savepoint)) }
            for box in chain.boxes { parts.append(try box.operation.snapshotState(checkpoint: trigger.id, savepointDirectory: savepoint)) }
        } catch {
            await report(.checkpointDeclined(trigger.id, "\(error)"))
            return
        }
        for writer in writers { await writer.broadcast(.barrier(trigger)) }
        let path = "\(trigger.directory)/\(spec.vertexID)-\(spec.attempt.subtask).state"
        do {
            let handle = try TaskStateFile.write(parts, to: path)
            await report(.checkpointAcknowledged(trigger.id, handle))
        } catch {
            await report(.checkpointDeclined(trigger.id, "\(error)"))
        }
    }

    func checkpointCompleted(_ id: CheckpointID) throws {
        try source?.checkpointCompleted(id)
        for box in chain.boxes { try box.operation.checkpointCompleted(id) }
    }

    /// A source whose input was ended by the task executor.
    private var inputEnded = false

    private func handle(_ control: TaskControl) async throws {
        switch control {
        case .endInput:
            inputEnded = true
        case .triggerCheckpoint(let trigger):
            // Only sources are triggered; other tasks take checkpoints at their barriers.
            if source != nil { try await takeCheckpoint(trigger) }
        case .checkpointCompleted(let id):
            try checkpointCompleted(id)
        }
    }

    // MARK: running

    func runSource(control: Mailbox<TaskControl>) async throws {
        let startState = try source!.snapshotState(checkpoint: 0)
        var ending = SourceRange.Ending.stopped
        defer {
            recordRange(start: startState, ending: ending)
            options.metrics?.countSourceRecords(writers.reduce(0) { $0 + $1.recordsWritten })
        }
        let started = ContinuousClock.now
        var produced = 0
        var lastAdvance = ContinuousClock.now
        var lastMarker = ContinuousClock.now
        // A rate-limited source emits evenly, a couple of milliseconds' worth at a time.
        let batch = source!.rate.map { TaskRunner.throttledBatch(rate: $0) } ?? TaskRunner.batchRecords
        var records: [Record] = []
        records.reserveCapacity(batch)
        while true {
            try Task.checkCancellation()
            while let message = control.poll() { try await handle(message) }
            if inputEnded {
                ending = .inputEnded
                return
            }
            records.removeAll(keepingCapacity: true)
            let more = try source!.produce(limit: batch) { records.append($0) }
            produced += records.count
            try chain.push(records)
            for writer in writers { await writer.flushFull() }
            io.publish(writers)
            let now = ContinuousClock.now
            if now - lastAdvance >= .milliseconds(50) {
                try chain.advance(to: time.wallNow())
                lastAdvance = now
            }
            if let interval = options.latencyMarkerInterval, now - lastMarker >= interval {
                let marker = ChannelEvent.latencyMarker(emittedAt: time.monotonicNow())
                for writer in writers { await writer.emitToOne(marker) }
                lastMarker = now
            }
            if let rate = source!.rate {
                let due = started + .nanoseconds(Int64(Double(produced) / rate * 1e9))
                if due > .now {
                    for writer in writers { await writer.flushAll() }
                    try await waitForControl(control, until: due)
                }
            } else {
                for writer in writers { await writer.flush(olderThan: .milliseconds(10)) }
                await Task.yield()
            }
            if !more {
                ending = .exhausted
                return
            }
        }
    }

    /// Waits until `due` (the next batch's time of a throttled source), acting at once on every
    /// control message that comes meanwhile: a checkpoint trigger or the end of input never waits
    /// for the batch.
    private func waitForControl(_ control: Mailbox<TaskControl>, until due: ContinuousClock.Instant) async throws {
        while !inputEnded {
            switch try await control.take(until: due) {
            case .element(let message): try await handle(message)
            case .timedOut: return
            case .end:
                // No more control messages (the task executor lets go of the task): only time.
                try await Task.sleep(until: due, clock: .continuous)
                return
            }
        }
    }

    /// Writes where this source attempt started and stopped (a failure to write is logged by
    /// nobody: the range is evidence for checkers, never needed to run).
    private func recordRange(start: [UInt8], ending: SourceRange.Ending) {
        guard let directory = options.sourceRangeDirectory, let end = try? source?.snapshotState(checkpoint: 0) else { return }
        try? SourceRanges.write(
            SourceRange(vertex: spec.vertexID, subtask: spec.attempt.subtask, attempt: spec.attempt.attempt, start: start, end: end, ending: ending),
            to: directory)
    }

    func runInputs(dataPlane: DataPlane, updates: AsyncStream<InputChannelSpec>?, control: Mailbox<TaskControl>) async throws {
        let gate = InputGate(channels: spec.inputs.flatMap(\.channels))
        var aligner = BarrierAligner(channels: gate.channelCount)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await gate.run(opener: dataPlane) }
            if let updates {
                group.addTask { for await update in updates { await gate.update(update) } }
            }
            group.addTask {
                // Control messages join the input, never waiting behind a full mailbox.
                while let message = try await control.take() { gate.mailbox.force(.control(message)) }
            }
            defer { group.cancelAll() }
            var lastAdvance = ContinuousClock.now
            let pacing = chain.pacing
            let started = ContinuousClock.now
            var processed = 0
            while true {
                try Task.checkCancellation()
                var next = gate.mailbox.poll()
                if next == nil {
                    // Nothing waiting: hand over what was gathered so the stream keeps flowing.
                    for writer in writers { await writer.flushAll() }
                    next = try await gate.mailbox.take()
                }
                guard let event = next else { break }
                switch event {
                case .records(let records):
                    try chain.push(records)
                    processed += records.count
                    if writers.isEmpty { options.metrics?.countSinkRecords(records.count) }
                    for writer in writers { await writer.flushFull() }
                    io.took(records.count)
                    io.publish(writers)
                    if let pacing {
                        let due = started + .milliseconds(Int64(Double(processed) / pacing * 1000))
                        if due > .now { try await Task.sleep(until: due, clock: .continuous) }
                    }
                case .barrier(let trigger, let channel):
                    try await align(aligner.barrier(trigger.id, channel: channel), trigger: trigger, gate: gate)
                case .channelEnded(let channel):
                    try await align(aligner.channelEnded(channel), trigger: nil, gate: gate)
                case .latencyMarker(let emittedAt):
                    if writers.isEmpty {
                        options.metrics?.recordLatency(time.monotonicNow().since(emittedAt))
                    } else {
                        for writer in writers { await writer.emitToOne(.latencyMarker(emittedAt: emittedAt)) }
                    }
                case .control(let message):
                    try await handle(message)
                }
                if ContinuousClock.now - lastAdvance >= .milliseconds(50) {
                    try chain.advance(to: time.wallNow())
                    lastAdvance = .now
                }
            }
            await gate.close()
        }
    }

    private var alignedTriggers: [CheckpointID: CheckpointTrigger] = [:]

    private func align(_ step: BarrierAligner.Step, trigger: CheckpointTrigger?, gate: InputGate) async throws {
        if let trigger { alignedTriggers[trigger.id] = trigger }
        if let abandoned = step.abandoned { alignedTriggers[abandoned] = nil }
        if let aligned = step.aligned, let trigger = alignedTriggers.removeValue(forKey: aligned) {
            alignedTriggers = alignedTriggers.filter { $0.key > aligned }
            try await takeCheckpoint(trigger)
        }
        for channel in step.release { gate.release(channel) }
    }

    /// The operator chain: each operator's output goes to the next, the last one's to the outputs.
    final class Chain: @unchecked Sendable {
        // @unchecked: used by the one task that runs the chain.
        final class Box {
            var operation: any StreamOperator
            init(_ operation: any StreamOperator) { self.operation = operation }

            /// Passes a run of records through the operator, which is taken out of the box for
            /// the run (one access to the box, not one per record; no copy of its state).
            func process(_ records: [Record], emit: (Record) throws -> Void) throws {
                var taken: any StreamOperator = DiscardOperator()
                swap(&taken, &operation)
                defer { swap(&taken, &operation) }
                for record in records { try taken.process(record, emit: emit) }
            }
        }
        let boxes: [Box]
        let writers: [ResultPartitionWriter]

        init(operators: [any StreamOperator], writers: [ResultPartitionWriter]) {
            boxes = operators.map(Box.init)
            self.writers = writers
        }

        /// The slowest pacing of the chain.
        var pacing: Double? { boxes.compactMap(\.operation.pacing).min() }

        /// What the last operator emitted during the current call: handed to the writers as one run.
        private var output: [Record] = []

        /// Pushes a run of records through the chain into the outputs.
        func push(_ records: [Record]) throws {
            guard let first = boxes.first else { return deliver(records) }
            try first.process(records) { try self.push($0, from: 1) }
            deliverOutput()
        }

        func advance(to now: WallTime) throws {
            for (index, box) in boxes.enumerated() {
                try box.operation.advance(to: now) { try self.push($0, from: index + 1) }
            }
            deliverOutput()
        }

        func finish() throws {
            for (index, box) in boxes.enumerated() {
                try box.operation.finish { try self.push($0, from: index + 1) }
            }
            deliverOutput()
        }

        private func push(_ record: Record, from index: Int) throws {
            guard index < boxes.count else { return output.append(record) }
            try boxes[index].operation.process(record) { try self.push($0, from: index + 1) }
        }

        private func deliverOutput() {
            guard !output.isEmpty else { return }
            deliver(output)
            output.removeAll(keepingCapacity: true)
        }

        private func deliver(_ records: [Record]) {
            for writer in writers { writer.add(records) }
        }
    }
}
