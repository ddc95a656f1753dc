import BatonCheckpointing
import BatonConfig
import BatonCore
import BatonElection
import BatonExecutionGraph
import BatonFiles
import BatonHAStore
import BatonJobGraph
import BatonJobManager
import BatonJobMaster
import BatonOperators
import BatonRPC
import BatonResourceManager
import BatonStoreRecords
import BatonWire
import BatonWireMapping
import Foundation
import Logging
import Synchronization

/// The shell of one leader term: it owns the term's connections to task executors and the store,
/// feeds every input (a registration, a report, a lost connection, a request, a timer) to the
/// term's `JobManager` and carries out what it returns: each batch's writes in one transaction
/// fenced by the epoch, then, once they are durable, its effects in order. It decides nothing.
///
/// Inputs go through one loop that carries out all the batches an input causes before taking the
/// next, so the store receives the changes in exactly the order the JobManager made them. Events
/// that arrived together (a burst of task reports) are handled in order and their writes committed
/// in one transaction (group commit), before any of their effects. A fenced store write ends the
/// runtime at once: the leader has lost its term.
actor LeaderRuntime {
    enum Input: Sendable {
        case register(WireRegisterTaskExecutor, RPCConnection, CheckedContinuation<Bool, Never>)
        case disconnected(ResourceID, RPCConnection)
        case event(JobManager.Event)
        case request(@Sendable (JobManager.RequestID) -> JobManager.Event, CheckedContinuation<JobManager.Reply, Never>)
        case status(CheckedContinuation<LeaderStatusReport, Never>)
        /// Time to bring the leader's gauges up to date.
        case refreshMetrics
    }

    /// How often the leader's gauges follow its state.
    static let metricsPeriod: Duration = .seconds(1)

    let epoch: Epoch
    let identity: LeaderIdentity
    let store: HAStore
    let configuration: HAConfiguration
    let logger: Logger
    let time: any TimeSource
    /// The clock timers and retries sleep on.
    let clock: any Clock<Duration>
    private var manager: JobManager
    private var connections: [ResourceID: RPCConnection] = [:]
    /// Per task executor, the queue its commands leave through in order: the loop hands a command
    /// over and goes on; no reply, nor a frozen task executor, holds it up.
    private var outboxes: [ResourceID: BatchQueue<WireEnvelope>] = [:]
    /// How long a task executor has to answer a command before a warning is logged.
    static let commandReplyTimeout: Duration = .seconds(10)
    private var requests: [JobManager.RequestID: CheckedContinuation<JobManager.Reply, Never>] = [:]
    private var nextRequest: UInt64 = 1
    private var ended = false
    /// The failure that ended this runtime, if one did (the store cannot be read or written).
    private var failure: LeaderRuntimeFailure?
    private let metrics = LeaderMetrics()
    /// The checkpoints completed since the last summary, per job.
    private var checkpointWindows: [JobID: CheckpointWindow] = [:]
    private var lastCheckpointSummary = ContinuousClock.now
    /// How often the info log sums up the checkpoints (each one is logged at debug).
    static let checkpointSummaryPeriod: Duration = .seconds(30)
    /// Restarts already counted into `baton_job_restarts_total`, per job.
    private var countedRestarts: [JobID: Int] = [:]
    private let inputs = BatchQueue<Input>()
    /// The term's lease: commands leave only while it holds.
    let lease: LeaseGuard

    init(
        epoch: Epoch, identity: LeaderIdentity, store: HAStore, configuration: HAConfiguration, mode: Dispatcher.Mode,
        takeover: TakeoverPolicy, logger: Logger, time: any TimeSource, clock: any Clock<Duration>, lease: LeaseGuard
    ) {
        self.lease = lease
        self.clock = clock
        self.epoch = epoch
        self.identity = identity
        self.store = store
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: LogKey.epoch] = "\(epoch)"
        self.logger = logger
        self.time = time
        let checkpoints = configuration.checkpoints
        manager = JobManager(
            epoch: epoch, leader: identity.member,
            settings: .init(
                mode: mode, takeover: takeover, reconciliationWindow: configuration.reconciliationWindow, checkpointInterval: checkpoints.interval,
                checkpointTimeout: checkpoints.timeout, retainedCheckpoints: checkpoints.retain, checkpointDirectory: checkpoints.directory,
                savepointDirectory: checkpoints.savepointDirectory, historyRetain: configuration.jobHistoryRetain,
                historyMaxAge: configuration.jobHistoryMaxAge, snapshotEvery: configuration.jobSnapshotEvery))
    }

    /// Hands an input to the loop.
    nonisolated func post(_ input: Input) {
        if !inputs.post(input) { Self.answerStopped(input) }
    }

    /// Asks the term's JobManager and waits for its reply.
    nonisolated func request(_ event: @escaping @Sendable (JobManager.RequestID) -> JobManager.Event) async -> JobManager.Reply {
        await withCheckedContinuation { post(.request(event, $0)) }
    }

    /// Ends the runtime (the term ended).
    nonisolated func stop() { inputs.finish() }

    /// Stops acting as leader because of `failure`, so that `run` ends with it.
    private func endTerm(_ failure: LeaderRuntimeFailure) {
        self.failure = failure
        ended = true
        inputs.finish()
    }

    /// Runs the term until it ends. Throws when the store failed: the master process must end,
    /// so that its member lock hands the leadership over at once (the group restarts it).
    func run() async throws(LeaderRuntimeFailure) {
        logger.info("leader runtime started")
        await withDiscardingTaskGroup { group in
            // Take over what the previous leaders left before serving anyone.
            if let takeover = await loadTakeover() { await handle(.takeOver(takeover), timers: &group) }
            let (inputs, clock) = (self.inputs, self.clock)
            group.addTask {
                while (try? await clock.sleep(for: Self.metricsPeriod)) != nil {
                    if !inputs.post(.refreshMetrics) { return }
                }
            }
            while let arrived = await inputs.takeAll() {
                var index = 0
                while index < arrived.count {
                    guard !ended else {
                        Self.answerStopped(arrived[index])
                        index += 1
                        continue
                    }
                    // A run of events that arrived together: one transaction.
                    var events: [JobManager.Event] = []
                    while index < arrived.count, case .event(let event) = arrived[index] {
                        events.append(event)
                        index += 1
                    }
                    if !events.isEmpty {
                        await handle(events, timers: &group)
                        continue
                    }
                    await accept(arrived[index], timers: &group)
                    index += 1
                }
            }
            group.cancelAll()
        }
        for outbox in outboxes.values { outbox.finish() }
        for connection in connections.values { connection.close() }
        for waiter in requests.values { waiter.resume(returning: .refused("this master is no longer the leader")) }
        requests.removeAll()
        logger.info("leader runtime stopped")
        if let failure { throw failure }
    }

    private static func answerStopped(_ input: Input) {
        switch input {
        case .register(_, _, let reply): reply.resume(returning: false)
        case .request(_, let reply): reply.resume(returning: .refused("this master is no longer the leader"))
        case .status(let reply): reply.resume(returning: LeaderStatusReport(taskExecutors: [], jobs: []))
        case .event, .disconnected, .refreshMetrics: break
        }
    }

    private func accept(_ input: Input, timers: inout DiscardingTaskGroup) async {
        switch input {
        case .register(let registration, let connection, let reply):
            guard let id = ResourceID(rawValue: registration.id) else {
                reply.resume(returning: false)
                return
            }
            let offer = TaskExecutorResources(id: id, total: registration.total.profile, defaultSlots: max(1, Int(registration.defaultSlots)))
            if let replaced = connections.updateValue(connection, forKey: id), replaced !== connection { replaced.close() }
            openOutbox(to: id, over: connection, timers: &timers)
            reply.resume(returning: true)
            let registered = JobManager.Registration(
                resources: offer, dataAddress: registration.dataAddress, tasks: registration.tasks.compactMap(TaskReport.init(wire:)))
            await handle(.registered(registered), timers: &timers)
        case .disconnected(let id, let connection):
            guard connections[id] === connection else { return }
            connections[id] = nil
            outboxes.removeValue(forKey: id)?.finish()
            await handle(.taskExecutorLost(id), timers: &timers)
        case .event(let event):
            await handle(event, timers: &timers)
        case .request(let event, let reply):
            let id = JobManager.RequestID(rawValue: nextRequest)
            nextRequest += 1
            requests[id] = reply
            await handle(event(id), timers: &timers)
        case .status(let reply):
            reply.resume(returning: status())
        case .refreshMetrics:
            summarizeCheckpoints()
            // From the JobManager's state directly: no whole status report once a second.
            let slots = manager.taskExecutors.keys.map(slotCounts)
            let jobs = manager.dispatcher.jobs
            metrics.refresh(
                (slots.count, slots.map(\.total).reduce(0, +), slots.map(\.free).reduce(0, +), jobs.filter { !$0.state.isTerminal }.count),
                restarts: Dictionary(jobs.map { ($0.id, $0.restarts) }, uniquingKeysWith: max), counted: &countedRestarts)
        }
    }

    // MARK: carrying out

    private func handle(_ event: JobManager.Event, timers: inout DiscardingTaskGroup) async {
        await handle([event], timers: &timers)
    }

    /// Handles `events` in order. The batches of events that make one batch each are committed
    /// together, then their effects carried out in order; an event that makes several batches
    /// (each to be durable before the next) has them committed one by one, as the JobManager
    /// split them.
    private func handle(_ events: [JobManager.Event], timers: inout DiscardingTaskGroup) async {
        var pending: [JobManager.Ready] = []
        for event in events {
            let batches = manager.handle(event, now: time.monotonicNow(), wall: time.wallNow())
            if batches.count <= 1 {
                pending += batches
                continue
            }
            guard await commit(pending, timers: &timers) else { return }
            pending = []
            for batch in batches {
                guard await commit([batch], timers: &timers) else { return }
            }
        }
        _ = await commit(pending, timers: &timers)
    }

    /// Commits the batches' writes in one transaction, then carries out their effects in order;
    /// false when the term ended (nothing of batches whose writes did not commit is carried out).
    private func commit(_ batches: [JobManager.Ready], timers: inout DiscardingTaskGroup) async -> Bool {
        let writes = batches.flatMap(\.writes)
        if !writes.isEmpty {
            let epoch = self.epoch
            await write { writer in for change in writes { try change.apply(to: writer, epoch: epoch) } }
        }
        guard !ended else { return false }
        for batch in batches {
            for effect in batch.effects { await carryOut(effect, timers: &timers) }
        }
        return !ended
    }

    private func carryOut(_ effect: JobManager.Effect, timers: inout DiscardingTaskGroup) async {
        switch effect {
        case .send(let command, let target):
            await send(WireEnvelope(command, epoch: epoch), to: target)
        case .reply(let request, let reply):
            requests.removeValue(forKey: request)?.resume(returning: reply)
        case .startTimer(let timer, let after):
            let (inputs, clock) = (self.inputs, self.clock)
            timers.addTask {
                guard (try? await clock.sleep(for: after)) != nil else { return }
                inputs.post(.event(.timerFired(timer)))
            }
        case .writeSavepointFile(let job, let savepoint):
            var failure: String?
            do {
                try DurableFiles.write(CompletedCheckpointCodec.encodeFile(savepoint, key: configuration.rpc.secret), to: "\(savepoint.directory)/_metadata")
            } catch {
                failure = "\(error)"
            }
            inputs.post(.event(.savepointFileWritten(job, checkpoint: savepoint.id, failure: failure)))
        case .discardCheckpoint(let directory):
            timers.addTask { DurableFiles.removeTree(directory) }
        case .discardCheckpoints(let directory, let above, let below):
            timers.addTask { CheckpointFolders.removeLeftovers(in: directory, above: above, below: below) }
        case .removeJobFiles(let job, let keeping):
            CheckpointFolders.removeJobFiles(in: "\(configuration.checkpoints.directory)/\(job)", keeping: keeping)
        case .notice(let notice):
            log(notice)
            metrics.noticed(notice)
            if case .reconciled(let record) = notice, let previous = record.fromEpoch {
                let renewed = try? await store.read { try $0.term(previous)?.lastRenewedAt }
                metrics.failedOver(record, previousRenewal: renewed ?? nil)
            }
        }
    }

    /// Queues a command for a task executor (its outbox sends it); a task executor that cannot be
    /// reached is left to the lost-connection path.
    private func send(_ envelope: WireEnvelope, to id: ResourceID) async {
        outboxes[id]?.post(envelope)
    }

    /// The outbox of a task executor that registered over `connection`: its commands go out in
    /// the order they were queued, pipelined (each reply is awaited beside the next sends), what
    /// was queued meanwhile in one write, so that deploying thousands of tasks costs a few writes
    /// over the connection, not a round trip each.
    private func openOutbox(to id: ResourceID, over connection: RPCConnection, timers: inout DiscardingTaskGroup) {
        outboxes.removeValue(forKey: id)?.finish()
        let commands = BatchQueue<WireEnvelope>()
        outboxes[id] = commands
        let logger = self.logger
        let handler: RPCConnection.ReplyHandler = { result in
            switch result {
            case .success(let reply):
                if case .failure(let failure) = reply.body {
                    logger.warning("a task executor refused a command", metadata: [LogKey.taskExecutor: "\(id)", LogKey.reason: "\(failure.message)"])
                }
            case .failure(let error):
                logger.warning("a command did not reach its task executor", metadata: [LogKey.taskExecutor: "\(id)", LogKey.error: "\(error)"])
            }
        }
        // On the cooperative pool, like the connection it writes to, not on the store thread.
        let (lease, time, epoch) = (self.lease, self.time, self.epoch)
        timers.addTask(executorPreference: globalConcurrentExecutor) {
            await Self.drain(commands, while: lease, time: time) { run in
                await connection.send(requests: run, replyTimeout: Self.commandReplyTimeout, onReply: handler)
            } heldBack: { count in
                logger.warning(
                    "the lease ran out before the store answered: commands are held back",
                    metadata: [LogKey.epoch: "\(epoch)", LogKey.taskExecutor: "\(id)", "baton.commands": "\(count)"])
            }
        }
    }

    /// Sends what `commands` holds, in runs, while `lease` holds; past it, drops every run (the
    /// term is over) and calls `heldBack` once per lapse.
    static func drain(
        _ commands: BatchQueue<WireEnvelope>, while lease: LeaseGuard, time: any TimeSource,
        send: ([WireEnvelope]) async -> Void, heldBack: (Int) -> Void
    ) async {
        while let run = await commands.takeAll() {
            guard lease.holds(at: time.monotonicNow()) else {
                if lease.firstLapse() { heldBack(run.count) }
                continue
            }
            await send(run)
        }
    }

    // MARK: the store

    /// What the store holds for this term to take over; nil (and the term ends) when it cannot be
    /// read: leading without the jobs would cancel every task they run.
    private func loadTakeover() async -> JobManager.Takeover? {
        do {
            let epoch = self.epoch
            var (takeover, refusedHistory) = try await store.read { reader in
                let current = try reader.value(TermRecord.self, .terms, StoreKey.uint64(epoch.rawValue))
                let previous = try current?.previousEpoch.flatMap { try reader.value(TermRecord.self, .terms, StoreKey.uint64($0.rawValue)) }
                let (jobs, undecodable) = try JobManager.RecoveredJob.load(reader)
                let history = try reader.valuesAndRefusals(JobSummary.self, .jobHistory)
                var takeover = JobManager.Takeover(
                    jobs: jobs, endedJobs: history.values, electedAt: current?.startedAt, previousEpoch: previous?.epoch,
                    previousTermEndedAt: previous?.endedAt, previousTermEnd: previous?.endReason)
                takeover.undecodableJobs = undecodable
                return (takeover, history.refused.map(\.reason))
            }
            for reason in refusedHistory {
                logger.warning("an ended run's summary in the store does not decode; the history goes on without it", metadata: [LogKey.error: "\(reason)"])
            }
            // A job that has no checkpoint of its own yet restores from the savepoint it started from.
            for index in takeover.jobs.indices where takeover.jobs[index].completed.isEmpty && !takeover.jobs[index].record.state.isTerminal {
                takeover.jobs[index].savepoint = takeover.jobs[index].record.savepoint.flatMap { try? SavepointFile.read($0, key: configuration.rpc.secret) }
            }
            return takeover
        } catch {
            logger.critical("the jobs in the store cannot be read: this master ends", metadata: [LogKey.error: "\(error)"])
            endTerm(LeaderRuntimeFailure(message: "the jobs in the store cannot be read", underlying: error))
            return nil
        }
    }

    /// Writes fenced by this term's epoch. A fenced refusal ends the runtime at once; a write that
    /// keeps failing ends it with a failure (the master process ends, and another takes over).
    private func write(_ body: @escaping @Sendable (StoreWriter) throws -> Void) async {
        do {
            let started = ContinuousClock.now
            try await store.write(fencedBy: epoch, body)
            metrics.store.committed(in: ContinuousClock.now - started)
            return
        } catch let error as HAStoreError where error.code == .fenced {
            metrics.store.refused()
            logger.notice("a store write was refused as fenced: this term is over", metadata: [LogKey.error: "\(error.message)"])
            ended = true
            inputs.finish()
            return
        } catch let error as HAStoreError where error.code == .unusable {
            logger.critical("the store refuses this process every further transaction: this master ends", metadata: [LogKey.error: "\(error)"])
            endTerm(LeaderRuntimeFailure(message: "the store cannot be used by this process any more", underlying: error))
        } catch {
            // A leader whose writes do not land must not go on: what it did would differ from
            // what the next leader reads. Retry a passing problem, then end the process (the
            // group restarts it; its member lock hands the leadership over at once).
            for delay in [Duration.milliseconds(10), .milliseconds(100), .milliseconds(500)] {
                try? await clock.sleep(for: delay)
                do {
                    try await store.write(fencedBy: epoch, body)
                    return
                } catch let error as HAStoreError where error.code == .fenced {
                    metrics.store.refused()
                    ended = true
                    inputs.finish()
                    return
                } catch {
                    continue
                }
            }
            logger.critical("a store write keeps failing: this master ends so that another takes over", metadata: [LogKey.error: "\(error)"])
            endTerm(LeaderRuntimeFailure(message: "a store write keeps failing", underlying: error))
        }
    }

    // MARK: log and status

    /// Completed checkpoints over one summary period.
    struct CheckpointWindow {
        var count = 0
        var lastID: UInt64 = 0
        var millis: [Double] = []

        mutating func add(_ id: UInt64, millis duration: Double) {
            count += 1
            lastID = id
            millis.append(duration)
        }
    }

    /// Once per `checkpointSummaryPeriod`, one info line per job that completed checkpoints.
    private func summarizeCheckpoints() {
        guard ContinuousClock.now - lastCheckpointSummary >= Self.checkpointSummaryPeriod else { return }
        lastCheckpointSummary = .now
        for (job, window) in checkpointWindows.sorted(by: { $0.key < $1.key }) where window.count > 0 {
            let sorted = window.millis.sorted()
            logger.info(
                "checkpoints completed",
                metadata: [
                    LogKey.job: "\(job)", "baton.count": "\(window.count)", "baton.last": "\(window.lastID)",
                    "baton.medianMillis": "\(sorted[sorted.count / 2])", "baton.maxMillis": "\(sorted.last ?? 0)",
                    "baton.period": "\(DurationText.format(Self.checkpointSummaryPeriod))",
                ])
            checkpointWindows[job] = CheckpointWindow(count: 0, lastID: window.lastID, millis: [])
        }
    }

    private func log(_ notice: JobManager.Notice) {
        switch notice {
        case .taskExecutorRegistered(let id, let slots, let tasks):
            logger.info("task executor registered", metadata: [LogKey.taskExecutor: "\(id)", "baton.slots": "\(slots)", "baton.tasks": "\(tasks)"])
        case .taskExecutorLost(let id):
            logger.notice("task executor lost", metadata: [LogKey.taskExecutor: "\(id)"])
        case .taskExecutorNotBack(let id):
            logger.notice("a task executor did not come back within the reconciliation window", metadata: [LogKey.taskExecutor: "\(id)"])
        case .deploymentToUnregistered(let id, let job):
            logger.notice("a deployment names a task executor that is not registered", metadata: [LogKey.taskExecutor: "\(id)", LogKey.job: "\(job)"])
        case .jobSubmitted(let job, let name, let savepoint):
            logger.info("job submitted", metadata: [LogKey.job: "\(job)", "baton.name": "\(name)", "baton.savepoint": "\(savepoint ?? "")"])
        case .jobStateChanged(let job, let state, let reason):
            logger.info("job state changed", metadata: [LogKey.job: "\(job)", "baton.state": "\(state)", LogKey.reason: "\(reason ?? "")"])
        case .jobEnded(let job, let state):
            logger.info("job ended", metadata: [LogKey.job: "\(job)", "baton.state": "\(state)"])
        case .perJobClusterEnded(let state):
            logger.info("the per-job cluster's job ended", metadata: ["baton.state": "\(state)"])
        case .endingInput(let job):
            logger.info("ending the job's input", metadata: [LogKey.job: "\(job)"])
        case .cancellingLeftover(let job, let target):
            logger.notice(
                "this per-job cluster runs only the job it was started for: cancelling a job a session left running",
                metadata: [LogKey.job: "\(job)", "baton.perJob": "\(target)"])
        case .takingOver(let jobs, let expected, let executors, let previous):
            logger.info(
                "taking over the jobs of the previous leader",
                metadata: [
                    "baton.jobs": "\(jobs)", "baton.expected": "\(expected)",
                    "baton.taskExecutors": "\(executors.map(\.rawValue).joined(separator: ","))", "baton.previousEpoch": "\(previous?.rawValue ?? 0)",
                ])
        case .reconciled(let record):
            logger.info(
                "reconciliation done",
                metadata: [
                    "baton.previousEpoch": "\(record.fromEpoch ?? .none)", "baton.millis": "\(record.reconcileMillis ?? 0)",
                    "baton.adopted": "\(record.adopted)", "baton.finished": "\(record.finished)", "baton.restarted": "\(record.restarted)",
                    "baton.cancelled": "\(record.cancelled)", "baton.windowClosed": "\(record.windowClosed)",
                ])
        case .cancellingUnknownAttempt(let executor, let job, let attempt):
            logger.notice(
                "cancelling an attempt no job expects", metadata: [LogKey.taskExecutor: "\(executor)", LogKey.job: "\(job)", "baton.attempt": "\(attempt)"])
        case .checkpointTriggered(let job, let id, let isSavepoint):
            logger.debug(isSavepoint ? "savepoint triggered" : "checkpoint triggered", metadata: [LogKey.job: "\(job)", "baton.checkpoint": "\(id)"])
        case .checkpointAborted(let job, let id, let reason):
            logger.notice("checkpoint aborted", metadata: [LogKey.job: "\(job)", "baton.checkpoint": "\(id)", LogKey.reason: "\(reason)"])
        case .checkpointCompleted(let job, let checkpoint):
            // Each one at debug; the first of a job under this leader at info, then a summary per
            // `checkpointSummaryPeriod` (`summarizeCheckpoints`).
            let first = checkpointWindows[job] == nil
            logger.log(
                level: first ? .info : .debug, first ? "first checkpoint completed under this leader" : "checkpoint completed",
                metadata: [
                    LogKey.job: "\(job)", "baton.checkpoint": "\(checkpoint.id)", "baton.millis": "\(checkpoint.duration.milliseconds)",
                    "baton.bytes": "\(checkpoint.size)",
                ])
            checkpointWindows[job, default: CheckpointWindow()].add(checkpoint.id.rawValue, millis: checkpoint.duration.milliseconds)
        case .savepointCompleted(let job, let path):
            logger.info("savepoint completed", metadata: [LogKey.job: "\(job)", "baton.path": "\(path)"])
        }
    }

    /// A registered task executor's default slots, and how many of them its free resources still hold.
    private func slotCounts(_ id: ResourceID) -> (total: Int, free: Int, freeResources: ResourceProfile) {
        let executor = manager.taskExecutors[id]!
        let free = manager.resources.freeResources(of: id) ?? .zero
        let slots = executor.resources.defaultSlots
        let fitting = executor.resources.defaultSlotProfile.dimensions.filter { $0.1 > 0 }.map { Int(free.amount($0.0) / $0.1) }.min() ?? slots
        return (slots, max(0, min(fitting, slots)), free)
    }

    private func status() -> LeaderStatusReport {
        let (wallNow, monotonicNow) = (time.wallNow(), time.monotonicNow())
        let executors = manager.taskExecutors.keys.sorted().map { id -> LeaderStatusReport.TaskExecutor in
            let executor = manager.taskExecutors[id]!
            let (slots, freeSlots, free) = slotCounts(id)
            return LeaderStatusReport.TaskExecutor(
                id: id.rawValue, slots: slots, freeSlots: freeSlots,
                registeredEpoch: epoch.rawValue, dataAddress: executor.dataAddress, totalResource: Self.resources(executor.resources.total),
                freeResource: Self.resources(free))
        }
        let jobs = manager.dispatcher.jobs.map { master -> LeaderStatusReport.Job in
            let graph = master.graph
            let latest = manager.latestCheckpoint(of: master.id)
            return LeaderStatusReport.Job(
                id: master.id.rawValue, name: master.jobGraph.name, state: master.state.rawValue, restarts: master.restarts,
                failure: master.failureReason,
                lastCheckpoint: latest.map {
                    .init(id: $0.id.rawValue, time: $0.completedAt.iso8601, sizeBytes: $0.size, durationMillis: $0.duration.milliseconds)
                } ?? .init(),
                vertices: graph.jobVertices.map { jobVertex in
                    LeaderStatusReport.Vertex(
                        id: jobVertex.id.rawValue, parallelism: jobVertex.parallelism,
                        subtasks: (0..<jobVertex.parallelism).map { index in
                            let execution = graph.execution(ExecutionVertexID(jobVertex: jobVertex.index, subtask: index))
                            return LeaderStatusReport.Subtask(
                                index: index, attempt: Int(execution.attempt), state: execution.state.description,
                                taskExecutor: execution.location?.taskExecutor.rawValue)
                        })
                }, startTime: manager.submissionTime(of: master.id)?.millisecondsSince1970,
                endTime: master.state.isTerminal ? manager.history[master.id]?.endedAt.millisecondsSince1970 : nil,
                checkpoints: manager.checkpointing[master.id].map { Self.statistics($0.stats) },
                exceptions: master.failures.map { failure in
                    LeaderStatusReport.TaskException(
                        vertex: graph.jobVertices[Int(failure.vertex.jobVertex)].id.rawValue, subtask: Int(failure.vertex.subtask),
                        attempt: failure.attempt, cause: failure.cause, taskExecutor: failure.taskExecutor?.rawValue,
                        timestamp: wallNow.millisecondsSince1970 - Int64(monotonicNow.since(failure.at).milliseconds))
                })
        }
        // The last few runs that ended under earlier leaders.
        let ended = manager.history.values.filter { manager.dispatcher.job($0.id) == nil }.sorted { $0.endedAt > $1.endedAt }.prefix(10).map { run in
            LeaderStatusReport.Job(
                id: run.id.rawValue, name: run.name, state: run.state.rawValue, restarts: run.restarts, failure: run.failure,
                lastCheckpoint: run.lastCheckpoint.map { .init(id: $0.id.rawValue, time: $0.completedAt.iso8601, sizeBytes: 0, durationMillis: 0) } ?? .init(),
                vertices: [], startTime: run.submittedAt.millisecondsSince1970, endTime: run.endedAt.millisecondsSince1970)
        }
        return LeaderStatusReport(taskExecutors: executors, jobs: jobs + ended)
    }
}

extension LeaderRuntime {
    /// A resource profile as Flink's REST API shows one (memory in MiB).
    static func resources(_ profile: ResourceProfile) -> LeaderStatusReport.Resources {
        .init(
            cpuCores: Double(profile.cpuMillis) / 1000, taskHeapMemory: profile.taskHeapBytes >> 20, managedMemory: profile.managedMemoryBytes >> 20,
            networkMemory: profile.networkMemoryBytes >> 20, extendedResources: profile.extended)
    }

    static func statistics(_ stats: CheckpointStats) -> LeaderStatusReport.CheckpointStatistics {
        func entry(_ entry: CheckpointStats.Entry) -> LeaderStatusReport.CheckpointEntry {
            .init(
                id: entry.id.rawValue, status: entry.status.rawValue, isSavepoint: entry.isSavepoint,
                triggerTimestamp: entry.triggeredAt.millisecondsSince1970, latestAckTimestamp: entry.completedAt?.millisecondsSince1970,
                durationMillis: entry.duration?.milliseconds, sizeBytes: entry.sizeBytes, failure: entry.failure)
        }
        func summary(_ summary: CheckpointStats.Summary) -> LeaderStatusReport.Summary {
            .init(min: summary.minimum, max: summary.maximum, avg: summary.average)
        }
        return .init(
            completed: stats.completedCount, failed: stats.failedCount, inProgress: stats.inProgressCount,
            latestCompleted: stats.latestCompleted.map(entry), latestSavepoint: stats.latestSavepoint.map(entry),
            latestFailed: stats.latestFailed.map(entry), history: stats.history.map(entry), durationMillis: summary(stats.durationMillis),
            sizeBytes: summary(stats.sizeBytes))
    }
}

/// The store failed under a leader: its term ends, and so does its master process.
public struct LeaderRuntimeFailure: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var underlying: String
    public init(message: String, underlying: any Error) {
        self.message = message
        self.underlying = "\(underlying)"
    }
    public var description: String { "\(message): \(underlying)" }
}
