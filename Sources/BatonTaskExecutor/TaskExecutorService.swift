public import BatonConfig
public import BatonCore
import BatonClient
import BatonDataPlane
import BatonJobGraph
import BatonOperators
import BatonExecutionGraph
public import BatonHAStore
import BatonRPC
import BatonTaskRuntime
import BatonTaskSlots
import BatonWire
import BatonWireMapping
import BatonMetrics
import CoreMetrics
public import Logging
public import ServiceLifecycle

/// A task executor process: serves its data plane, finds the leader through leader retrieval,
/// registers with it (reporting every slot and every attempt it holds), runs the tasks the leader
/// deploys, and reports their states, buffering them while there is no leader. Its tasks keep
/// running when the leader is lost.
///
/// A shell: every decision (which commands are admitted, what a command does to the tasks, what
/// is reported, what is kept for the next leader, how soon to look for one) is `TaskSlotTable`'s;
/// this actor owns the connections, the running tasks and the outbox, and carries out the
/// table's actions.
public actor TaskExecutorService: Service {
    public let id: ResourceID
    private let configuration: HAConfiguration
    private let settings: HAConfiguration.TaskExecutorConfiguration
    private let store: HAStore
    private let logger: Logger
    /// `baton_taskexecutor_commands_refused_total`, exported from the start (0 until a refusal).
    private let commandsRefused = Counter(label: BatonMetric.commandsRefused.rawValue)
    private let incarnation: Incarnation
    private let rpc: RPCConfiguration
    private let time: any TimeSource
    /// The clock the reconnection backoff sleeps on.
    private let clock: any Clock<Duration>
    private var table: TaskSlotTable
    private var connection: RPCConnection?
    /// What the shell holds for each running task (its spec, its cancellation, its inputs and control).
    private var running: [TaskSpec.AttemptKey: TaskRecord] = [:]
    /// Reports (task states, checkpoint acknowledgements) waiting to be sent to the leader, in
    /// order (kept while there is none).
    private let outbox = Mailbox<WireEnvelope.OneOf_Body>(capacity: 100_000)
    /// At most this many reports go out in one write.
    static let reportsPerWrite = 1024
    private let starts: AsyncStream<TaskSpec>.Continuation
    private let startStream: AsyncStream<TaskSpec>
    private var dataPlane: DataPlane?

    struct TaskRecord {
        var spec: TaskSpec
        /// Ends the task (cancellation).
        let stop: AsyncStream<Void>.Continuation
        let stopSignal: AsyncStream<Void>
        /// Locations of inputs that were not known at deployment.
        let updates: AsyncStream<InputChannelSpec>.Continuation
        let updateStream: AsyncStream<InputChannelSpec>
        /// Checkpoint triggers and completion notices for the running task.
        let control = Mailbox<TaskControl>(capacity: 64)

        init(spec: TaskSpec) {
            self.spec = spec
            (stopSignal, stop) = AsyncStream<Void>.makeStream()
            (updateStream, updates) = AsyncStream<InputChannelSpec>.makeStream()
        }
    }

    public init(
        id: ResourceID, configuration: HAConfiguration, store: HAStore, logger: Logger, incarnation: Incarnation,
        time: any TimeSource = SystemTimeSource(), clock: any Clock<Duration> = ContinuousClock()
    ) throws {
        self.clock = clock
        guard let settings = configuration.taskExecutors.first(where: { $0.id == id }) else {
            throw TaskExecutorError("no task executor '\(id)' in \(configuration.file)")
        }
        self.id = id
        self.configuration = configuration
        self.settings = settings
        self.store = store
        var logger = logger
        logger[metadataKey: LogKey.taskExecutor] = "\(id)"
        self.logger = logger
        self.incarnation = incarnation
        self.time = time
        table = TaskSlotTable(taskExecutor: id)
        rpc = try RPCConfiguration(configuration.rpc, identity: id.rawValue)
        (startStream, starts) = AsyncStream<TaskSpec>.makeStream()
    }

    public func run() async throws {
        let server = try await RPCServer.bind(
            host: settings.data.host, port: settings.data.port, identity: RPCPeer(id: id.rawValue, role: .taskExecutor), configuration: rpc,
            logger: logger)
        let blocking = try BlockingResultMemory(
            budgetBytes: configuration.blockingResultMemoryBytes, directory: "\(configuration.blockingResultDirectory)/\(id)")
        let plane = DataPlane(taskExecutor: id, registry: PartitionRegistry(blockingMemory: blocking), configuration: rpc, logger: logger)
        dataPlane = plane
        logger.info(
            "task executor started",
            metadata: ["baton.data": "\(settings.data)", "baton.slots": "\(settings.slots)", "baton.resources": "\(settings.resources)"])
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { try? await plane.serve(server) }
                group.addTask { await self.leaderLoop() }
                for await spec in startStream {
                    group.addTask { await self.runTask(spec, plane) }
                }
                server.close()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.starts.finish()
        }
        logger.info("task executor stopped")
    }

    // MARK: leader connection

    private func leaderLoop() async {
        let retrieval = LeaderRetrieval(store: store)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            guard let leader = try? await retrieval.currentLeader(), table.shouldConnect(toLeaderAt: leader.epoch) else {
                try? await clock.sleep(for: table.retryDelay(now: time.monotonicNow()))
                continue
            }
            table.observed(epoch: leader.epoch)
            guard let colon = leader.address.lastIndex(of: ":"), let port = Int(leader.address[leader.address.index(after: colon)...]) else {
                try? await clock.sleep(for: .milliseconds(500))
                continue
            }
            do {
                try await RPCClient.connect(
                    host: String(leader.address[..<colon]), port: port, identity: RPCPeer(id: id.rawValue, role: .taskExecutor),
                    configuration: rpc, logger: logger
                ) { connection in
                    try await self.session(with: connection, leader: leader, retrieval: retrieval)
                }
            } catch {
                logger.debug("leader connection ended", metadata: ["baton.error": "\(error)", LogKey.epoch: "\(leader.epoch)"])
            }
            disconnected()
            try? await clock.sleep(for: table.retryDelay(now: time.monotonicNow()))
        }
    }

    private func session(with connection: RPCConnection, leader: LeaderInfo, retrieval: LeaderRetrieval) async throws {
        var register = WireEnvelope()
        register.registerTaskExecutor = .with {
            $0.id = id.rawValue
            $0.dataAddress = "\(settings.data)"
            $0.total = WireResourceProfile(settings.resources)
            $0.defaultSlots = UInt32(settings.slots)
            $0.incarnation = incarnation.rawValue
            $0.tasks = table.registrationReports.map(WireTaskReport.init)
        }
        let reply = try await connection.request(register, timeout: .seconds(10))
        guard case .registered = reply.body else {
            if case .notLeader(let notLeader) = reply.body {
                logger.info("not the leader any more", metadata: [LogKey.master: "\(leader.member)", "baton.leader": "\(notLeader.leaderID)"])
            }
            return
        }
        let epoch = Epoch(reply.epoch)
        guard registered(connection, epoch: epoch) else { return }
        logger.info("registered with the leader", metadata: [LogKey.epoch: "\(epoch)", LogKey.master: "\(leader.member)"])
        await withThrowingTaskGroup(of: Void.self) { group in
            // Reports go out in order; a report that cannot be sent waits for the next leader.
            // What queued up while the last run was written goes out in one write.
            group.addTask {
                while let first = try await self.outbox.take() {
                    var bodies = [first]
                    while bodies.count < Self.reportsPerWrite, let next = self.outbox.poll() { bodies.append(next) }
                    do {
                        try await connection.send(bodies.map { body in
                            WireEnvelope.with {
                                $0.epoch = epoch.rawValue
                                $0.body = body
                            }
                        })
                    } catch {
                        for body in bodies.reversed() { self.outbox.putBack(body) }
                        return
                    }
                }
            }
            // Answers to the leader's commands go out in order, without the next command waiting
            // for the last answer's write (the leader pipelines its commands).
            let answering = BatchQueue<(request: WireEnvelope, answer: WireEnvelope)>()
            group.addTask {
                while let answers = await answering.takeAll() { try? await connection.reply(to: answers) }
            }
            // Leave this leader when the store names a newer one.
            group.addTask {
                while !Task.isCancelled {
                    try await self.clock.sleep(for: .milliseconds(50))
                    if let current = try? await retrieval.currentLeader(), await self.storeNamesLeader(at: current.epoch) {
                        connection.close()
                        return
                    }
                }
            }
            for await message in connection.messages {
                await handle(message, answering: answering)
            }
            answering.finish()
            group.cancelAll()
        }
    }

    private func registered(_ connection: RPCConnection, epoch: Epoch) -> Bool {
        guard table.registered(epoch: epoch) else { return false }
        self.connection = connection
        return true
    }

    private func storeNamesLeader(at epoch: Epoch) -> Bool { table.storeNamesLeader(at: epoch) }

    private func disconnected() {
        if table.disconnected(now: time.monotonicNow()) { logger.notice("lost the leader: tasks keep running, reports are buffered") }
        connection = nil
    }

    // MARK: commands

    /// What answers a command: the session's queue of answers to the leader.
    typealias Answering = BatchQueue<(request: WireEnvelope, answer: WireEnvelope)>

    private func handle(_ message: WireEnvelope, answering: Answering) async {
        let epoch = Epoch(message.epoch)
        var deployment: TaskSpec?
        let command: TaskSlotTable.Command
        do {
            func job(_ text: String) throws -> JobID {
                guard let job = JobID(rawValue: text) else { throw TaskExecutorError("a command names an invalid job id '\(text)'") }
                return job
            }
            switch message.body {
            case .deployTask(let deploy):
                let spec: TaskSpec
                do { spec = try TaskSpec(wire: deploy) } catch { throw TaskExecutorError("invalid deployment: \(error)") }
                deployment = spec
                command = .deploy(TaskAttempt(spec.attempt), allocation: spec.allocation)
            case .cancelTask(let cancel): command = .cancel(try TaskAttempt(wire: cancel.attempt))
            case .updatePartitionInfo(let update): command = .updatePartitionInfo(consumer: try TaskAttempt(wire: update.consumer))
            case .releasePartitions(let release): command = .releasePartitions(try job(release.job))
            case .triggerCheckpoint(let trigger): command = .triggerCheckpoint(try TaskAttempt(wire: trigger.attempt), checkpoint: CheckpointID(rawValue: trigger.checkpointID))
            case .endSourceInput(let end): command = .endInput(try TaskAttempt(wire: end.attempt))
            case .notifyCheckpointComplete(let notice): command = .notifyCheckpointComplete(try job(notice.job), checkpoint: CheckpointID(rawValue: notice.checkpointID))
            default: return
            }
        } catch {
            await carryOut([.refuse("\(error)")], for: message, answering: answering)
            return
        }
        await carryOut(table.command(command, epoch: epoch), for: message, answering: answering, deployment: deployment)
    }

    /// Carries out the table's actions for one command, in order.
    private func carryOut(
        _ actions: [TaskSlotTable.Action], for message: WireEnvelope, answering: Answering, deployment: TaskSpec? = nil
    ) async {
        for action in actions {
            switch action {
            case .refuse(let reason):
                commandsRefused.increment()
                logger.warning("refused a command", metadata: [LogKey.epoch: "\(message.epoch)", LogKey.reason: "\(reason)"])
                answering.post((message, WireEnvelope.with { $0.failure = .with { $0.message = reason } }))
            case .acknowledge:
                answering.post((message, WireEnvelope.with { $0.ack = WireAck() }))
            case .startTask:
                guard let spec = deployment else { continue }
                running[spec.attempt] = TaskRecord(spec: spec)
                starts.yield(spec)
            case .stopTask(let attempt):
                running[attempt.key]?.stop.finish()
            case .forward(let attempts):
                for attempt in attempts { deliver(message, to: attempt.key) }
            case .releasePartitions(let job):
                let release = message.releasePartitions
                if release.oneProducer {
                    await dataPlane?.registry.release(
                        job: job, results: release.results.map { Int($0) }, producerSubtask: Int(release.producerSubtask),
                        producerAttempt: Int(release.producerAttempt))
                } else {
                    await dataPlane?.registry.release(job: job)
                }
            case .report(let report):
                await send(.taskStateChanged(.with { $0.report = WireTaskReport(report) }))
            case .declineCheckpoint(let attempt, let checkpoint, let reason):
                await send(.declineCheckpoint(.with {
                    $0.attempt = WireAttempt(attempt.key)
                    $0.checkpointID = checkpoint.rawValue
                    $0.reason = reason
                }))
            case .closeTask(let attempt):
                if let record = running.removeValue(forKey: attempt.key) {
                    record.stop.finish()
                    record.updates.finish()
                    record.control.finish()
                }
            }
        }
    }

    /// Hands a command's payload to one running task.
    private func deliver(_ message: WireEnvelope, to key: TaskSpec.AttemptKey) {
        guard let record = running[key] else { return }
        switch message.body {
        case .triggerCheckpoint(let trigger): record.control.force(.triggerCheckpoint(CheckpointTrigger(wire: trigger)))
        case .endSourceInput: record.control.force(.endInput)
        case .notifyCheckpointComplete(let notice): record.control.force(.checkpointCompleted(CheckpointID(rawValue: notice.checkpointID)))
        case .updatePartitionInfo(let update):
            if let channel = record.spec.channelUpdate(result: Int(update.result), channel: update.channel.descriptor) { record.updates.yield(channel) }
        default:
            break
        }
    }

    // MARK: tasks

    private func runTask(_ spec: TaskSpec, _ plane: DataPlane) async {
        let key = spec.attempt
        guard let record = running[key] else { return }
        logger.debug("task starting", metadata: ["baton.task": "\(key)"])
        let stopSignal = record.stopSignal
        let updates = record.updateStream
        let control = record.control
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                let ranges = SourceRanges.directory(checkpoints: self.configuration.checkpoints.directory, job: spec.attempt.job.rawValue)
                await TaskRunner.run(
                    spec, dataPlane: plane, channelUpdates: updates, control: control, options: .init(sourceRangeDirectory: ranges)
                ) { event in
                    await self.taskEvent(key, event)
                }
            }
            group.addTask {
                for await _ in stopSignal {}
            }
            // Whichever ends first: the task itself, or a cancellation.
            await group.next()
            group.cancelAll()
        }
    }

    private func taskEvent(_ key: TaskSpec.AttemptKey, _ event: TaskEvent) async {
        switch event {
        case .checkpointAcknowledged(let id, let handle):
            guard running[key] != nil else { return }
            await send(.acknowledgeCheckpoint(.with {
                $0.attempt = WireAttempt(key)
                $0.checkpointID = id.rawValue
                $0.state = WireStateHandle(handle)
            }))
        case .checkpointDeclined(let id, let reason):
            guard running[key] != nil else { return }
            await send(.declineCheckpoint(.with {
                $0.attempt = WireAttempt(key)
                $0.checkpointID = id.rawValue
                $0.reason = reason
            }))
        default:
            guard let state = event.state else { return }
            for action in table.taskChanged(TaskAttempt(key), to: state, failure: event.failure) {
                switch action {
                case .report(let report): await send(.taskStateChanged(.with { $0.report = WireTaskReport(report) }))
                case .closeTask:
                    if let record = running.removeValue(forKey: key) {
                        record.stop.finish()
                        record.updates.finish()
                        record.control.finish()
                    }
                default: preconditionFailure("a task's state change yields reports and its close only: \(action)")
                }
            }
        }
    }

    /// Queues a report for the leader, in order; it waits in the outbox while there is none.
    private func send(_ body: WireEnvelope.OneOf_Body) async {
        await outbox.put(body)
    }
}

extension TaskAttempt {
    init(_ key: TaskSpec.AttemptKey) {
        self.init(job: key.job, attempt: ExecutionAttemptID(vertex: ExecutionVertexID(jobVertex: key.jobVertex, subtask: key.subtask), attempt: Int32(key.attempt)))
    }

    init(wire: WireAttempt) throws {
        guard let key = wire.key else { throw TaskExecutorError("a command names an attempt of no job") }
        self.init(key)
    }

    var key: TaskSpec.AttemptKey {
        TaskSpec.AttemptKey(job: job, jobVertex: Int(attempt.vertex.jobVertex), subtask: Int(attempt.vertex.subtask), attempt: Int(attempt.attempt))
    }
}

public struct TaskExecutorError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
