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
import BatonWire
import BatonWireMapping
public import Logging
public import ServiceLifecycle

/// A task executor process: serves its data plane, finds the leader through leader retrieval,
/// registers with it (reporting every slot and every attempt it holds), runs the tasks the leader
/// deploys, and reports their states, buffering them while there is no leader. Its tasks keep
/// running when the leader is lost.
///
/// Commands are admitted by `TaskExecutorFencing`: only from the leader it registered with, at
/// that leader's epoch; anything from an older epoch is refused with a reply saying why.
public actor TaskExecutorService: Service {
    public let id: Identifier
    private let configuration: HAConfiguration
    private let settings: HAConfiguration.TaskExecutorConfiguration
    private let store: HAStore
    private let logger: Logger
    private let incarnation: Incarnation
    private let rpc: RPCConfiguration
    private var fencing = TaskExecutorFencing()
    private var connection: RPCConnection?
    /// When the last leader was lost (the task executor looks for the next one quickly after).
    private var lostLeaderAt = ContinuousClock.now
    private var tasks: [TaskSpec.AttemptKey: TaskRecord] = [:]
    /// The last reports of tasks that ended, kept for the next registration: a report sent to a
    /// leader that died before reading it is not lost with it.
    private var ended: [TaskSpec.AttemptKey: WireTaskReport] = [:]
    private var endedOrder: [TaskSpec.AttemptKey] = []
    private static let endedKept = 10_000
    /// Reports (task states, checkpoint acknowledgements) waiting to be sent to the leader, in
    /// order (kept while there is none).
    private let outbox = Mailbox<WireEnvelope.OneOf_Body>(capacity: 100_000)
    private let starts: AsyncStream<TaskSpec>.Continuation
    private let startStream: AsyncStream<TaskSpec>
    private var dataPlane: DataPlane?

    struct TaskRecord {
        var spec: TaskSpec
        var state: ExecutionState
        var failure: String?
        /// Ends the task (cancellation).
        let stop: AsyncStream<Void>.Continuation
        let stopSignal: AsyncStream<Void>
        /// Locations of inputs that were not known at deployment.
        let updates: AsyncStream<InputChannelSpec>.Continuation
        let updateStream: AsyncStream<InputChannelSpec>
        /// Checkpoint triggers and completion notices for the running task.
        let control = Mailbox<TaskControl>(capacity: 64)

        init(spec: TaskSpec, state: ExecutionState) {
            self.spec = spec
            self.state = state
            (stopSignal, stop) = AsyncStream<Void>.makeStream()
            (updateStream, updates) = AsyncStream<InputChannelSpec>.makeStream()
        }
    }

    public init(
        id: Identifier, configuration: HAConfiguration, store: HAStore, logger: Logger, incarnation: Incarnation
    ) throws {
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
        rpc = RPCConfiguration(configuration.rpc)
        (startStream, starts) = AsyncStream<TaskSpec>.makeStream()
    }

    public func run() async throws {
        let server = try await RPCServer.bind(
            host: settings.data.host, port: settings.data.port, identity: RPCPeer(id: id.rawValue, role: .taskExecutor), configuration: rpc,
            logger: logger)
        let plane = DataPlane(taskExecutor: id, registry: PartitionRegistry(), configuration: rpc, logger: logger)
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
        // While there is no leader to talk to, look again soon: a new leader is elected within
        // milliseconds of a crash, and every millisecond here delays the takeover.
        func retryDelay() -> Duration { ContinuousClock.now - lostLeaderAt < .seconds(3) ? .milliseconds(10) : .milliseconds(100) }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            guard let leader = try? await retrieval.currentLeader() else {
                try? await Task.sleep(for: retryDelay())
                continue
            }
            fencing.observed(epoch: leader.epoch)
            guard let colon = leader.address.lastIndex(of: ":"), let port = Int(leader.address[leader.address.index(after: colon)...]) else {
                try? await Task.sleep(for: .milliseconds(500))
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
            try? await Task.sleep(for: retryDelay())
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
            $0.tasks = registrationReports()
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
            group.addTask {
                while let body = try await self.outbox.take() {
                    var envelope = WireEnvelope()
                    envelope.epoch = epoch.rawValue
                    envelope.body = body
                    do {
                        try await connection.send(envelope)
                    } catch {
                        self.outbox.putBack(body)
                        return
                    }
                }
            }
            // Leave this leader when the store names a newer one.
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: .milliseconds(50))
                    if let current = try? await retrieval.currentLeader(), current.epoch != epoch {
                        await self.observed(epoch: current.epoch)
                        connection.close()
                        return
                    }
                }
            }
            for await message in connection.messages {
                await handle(message, on: connection)
            }
            group.cancelAll()
        }
    }

    private func registered(_ connection: RPCConnection, epoch: Epoch) -> Bool {
        guard fencing.registered(epoch: epoch) else { return false }
        self.connection = connection
        return true
    }

    private func observed(epoch: Epoch) { fencing.observed(epoch: epoch) }

    private func disconnected() {
        if connection != nil {
            logger.notice("lost the leader: tasks keep running, reports are buffered")
            lostLeaderAt = .now
        }
        connection = nil
        fencing.disconnected()
    }

    private func registrationReports() -> [WireTaskReport] {
        let live = tasks.values.map { record in
            WireTaskReport.with {
                $0.attempt = WireAttempt(record.spec.attempt)
                $0.state = record.state.wire
                $0.failure = record.failure ?? ""
                $0.allocation = record.spec.allocation
            }
        }
        return live + endedOrder.compactMap { ended[$0] }
    }

    private func remember(_ report: WireTaskReport, of key: TaskSpec.AttemptKey) {
        if ended.updateValue(report, forKey: key) == nil { endedOrder.append(key) }
        if endedOrder.count > Self.endedKept { ended[endedOrder.removeFirst()] = nil }
    }

    // MARK: commands

    private func handle(_ message: WireEnvelope, on connection: RPCConnection) async {
        func refuse(_ reason: String) async {
            logger.warning("refused a command", metadata: [LogKey.epoch: "\(message.epoch)", LogKey.reason: "\(reason)"])
            var reply = WireEnvelope()
            reply.failure = .with { $0.message = reason }
            try? await connection.reply(to: message, with: reply)
        }
        if case .decision(let reason) = admission(message) {
            await refuse(reason)
            return
        }
        switch message.body {
        case .deployTask(let deploy):
            do {
                let spec = try TaskSpec(wire: deploy)
                if tasks[spec.attempt] == nil {
                    tasks[spec.attempt] = TaskRecord(spec: spec, state: .deploying)
                    starts.yield(spec)
                }
                try? await connection.reply(to: message, with: WireEnvelope.with { $0.ack = WireAck() })
            } catch {
                await refuse("invalid deployment: \(error)")
            }
        case .cancelTask(let cancel):
            if let key = cancel.attempt.key {
                if let record = tasks[key] {
                    record.stop.finish()
                } else {
                    // Unknown here: report it canceled so the leader can move on.
                    await send(.taskStateChanged(.with {
                        $0.report = .with {
                            $0.attempt = cancel.attempt
                            $0.state = .canceled
                        }
                    }))
                }
            }
            try? await connection.reply(to: message, with: WireEnvelope.with { $0.ack = WireAck() })
        case .updatePartitionInfo(let update):
            if let key = update.consumer.key, let record = tasks[key], let location = update.channel.location {
                // The deployment named the subpartition this task reads from that producer.
                let known = record.spec.inputs.first { $0.result == Int(update.result) }?.channels.first {
                    $0.partition.producerSubtask == Int(update.channel.producerSubtask)
                }
                record.updates.yield(
                    InputChannelSpec(
                        partition: PartitionID(
                            job: key.job, result: Int(update.result), producerSubtask: Int(update.channel.producerSubtask),
                            producerAttempt: Int(update.channel.producerAttempt)),
                        subpartition: known?.subpartition ?? key.subtask, location: location))
            }
            try? await connection.reply(to: message, with: WireEnvelope.with { $0.ack = WireAck() })
        case .releasePartitions(let release):
            if let job = Identifier(rawValue: release.job) { await dataPlane?.registry.release(job: job) }
            try? await connection.reply(to: message, with: WireEnvelope.with { $0.ack = WireAck() })
        case .triggerCheckpoint(let trigger):
            if let key = trigger.attempt.key, let record = tasks[key], record.state == .running {
                record.control.force(.triggerCheckpoint(CheckpointTrigger(wire: trigger)))
            } else {
                await send(.declineCheckpoint(.with {
                    $0.attempt = trigger.attempt
                    $0.checkpointID = trigger.checkpointID
                    $0.reason = "task executor \(id) runs no such task"
                }))
            }
            try? await connection.reply(to: message, with: WireEnvelope.with { $0.ack = WireAck() })
        case .endSourceInput(let end):
            if let key = end.attempt.key, let record = tasks[key] { record.control.force(.endInput) }
            try? await connection.reply(to: message, with: WireEnvelope.with { $0.ack = WireAck() })
        case .notifyCheckpointComplete(let notice):
            for record in tasks.values where record.spec.attempt.job.rawValue == notice.job {
                record.control.force(.checkpointCompleted(notice.checkpointID))
            }
            try? await connection.reply(to: message, with: WireEnvelope.with { $0.ack = WireAck() })
        default:
            break
        }
    }

    private enum Admission { case ok, decision(String) }

    private func admission(_ message: WireEnvelope) -> Admission {
        switch message.body {
        case .deployTask, .cancelTask, .updatePartitionInfo, .releasePartitions, .triggerCheckpoint, .notifyCheckpointComplete, .endSourceInput:
            if case .refuse(let reason) = fencing.admit(commandEpoch: Epoch(message.epoch)) { return .decision(reason) }
            return .ok
        default:
            return .ok
        }
    }

    // MARK: tasks

    private func runTask(_ spec: TaskSpec, _ plane: DataPlane) async {
        let key = spec.attempt
        guard let record = tasks[key] else { return }
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
        guard tasks[key] != nil else { return }
        switch event {
        case .checkpointAcknowledged(let id, let handle):
            await send(.acknowledgeCheckpoint(.with {
                $0.attempt = WireAttempt(key)
                $0.checkpointID = id
                $0.state = WireStateHandle(handle)
            }))
            return
        case .checkpointDeclined(let id, let reason):
            await send(.declineCheckpoint(.with {
                $0.attempt = WireAttempt(key)
                $0.checkpointID = id
                $0.reason = reason
            }))
            return
        default:
            break
        }
        guard let state = event.state else { return }
        tasks[key]!.state = state
        tasks[key]!.failure = event.failure
        await report(key)
        if state.isTerminal {
            if let record = tasks[key] {
                remember(WireTaskReport.with {
                    $0.attempt = WireAttempt(key)
                    $0.state = state.wire
                    $0.failure = record.failure ?? ""
                    $0.allocation = record.spec.allocation
                }, of: key)
            }
            tasks[key]?.stop.finish()
            tasks[key]?.updates.finish()
            tasks[key]?.control.finish()
            tasks[key] = nil
        }
    }

    private func report(_ key: TaskSpec.AttemptKey) async {
        guard let record = tasks[key] else { return }
        await send(.taskStateChanged(.with {
            $0.report = .with {
                $0.attempt = WireAttempt(key)
                $0.state = record.state.wire
                $0.failure = record.failure ?? ""
                $0.allocation = record.spec.allocation
            }
        }))
    }

    /// Queues a report for the leader, in order; it waits in the outbox while there is none.
    private func send(_ body: WireEnvelope.OneOf_Body) async {
        await outbox.put(body)
    }
}

public struct TaskExecutorError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
