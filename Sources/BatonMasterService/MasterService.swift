import BatonStoreRecords
import BatonCheckpointing
public import BatonConfig
public import BatonCore
public import BatonElection
public import BatonHAStore
public import BatonJobMaster
import BatonExecutionGraph
import BatonJobManager
import BatonWireMapping
import BatonJobGraph
import BatonClient
public import BatonMemberLocks
import BatonRPC
import BatonWire
import Dispatch
import Foundation
public import Logging
public import ServiceLifecycle

/// One master candidate: the shell that carries out what its `LeaderElection` decides, against the
/// HA store and the member locks, and (in later issues) runs the leader's duties.
///
/// One loop consumes every input in order (ticks, deaths reported by the member-lock watcher,
/// shutdown) and awaits each action before taking the next input, so the election instance is
/// never touched concurrently. On graceful shutdown (SIGTERM, SIGINT) a leader resigns: it ends
/// its term in the store before the process exits, so standbys take over at once.
public actor MasterService: Service {
    public struct Options: Sendable {
        /// How often the loop looks at the election's deadlines.
        public var tickInterval: Duration
        /// Session (many jobs) or per-job (one job).
        public var mode: Dispatcher.Mode
        /// What a new leader does with running tasks (`restartAll` is a fault for testing checkers).
        public var takeover: TakeoverPolicy
        public init(tickInterval: Duration = .milliseconds(10), mode: Dispatcher.Mode = .session, takeover: TakeoverPolicy = .reconcile) {
            self.tickInterval = tickInterval
            self.mode = mode
            self.takeover = takeover
        }
    }

    private enum Input: Sendable {
        case tick
        /// A member's process died; `done`, when given, is signalled once the loop acted on it
        /// (the lock watcher holds the member's lock until then).
        case holderDied(MemberID, Incarnation?, DispatchSemaphore?)
        /// The store says the leadership record changed.
        case leadershipChanged
        case shutdown
        /// The leader runtime ended on a store failure: this master ends with it.
        case runtimeFailed(LeaderRuntimeFailure)
    }

    public let identity: LeaderIdentity
    private let configuration: HAConfiguration
    private let store: HAStore
    /// How this master learns that the leader's process died (and, on etcd, that the record changed).
    private let liveness: any MemberLiveness
    private let logger: Logger
    private let time: any TimeSource
    /// The clock ticks and the leader's timers sleep on.
    private let clock: any Clock<Duration>
    private let options: Options
    private var election: LeaderElection
    private var leadingSince: MonotonicInstant?
    private var runtime: LeaderRuntime?
    /// The lease of the term this master leads, for the runtime's outboxes.
    private let lease = LeaseGuard()
    private let runtimes: AsyncStream<LeaderRuntime>
    private let runtimeStarts: AsyncStream<LeaderRuntime>.Continuation
    /// The store refused this process for good (LMDB's MDB_PANIC): the master ends, so that the
    /// group starts a new process that opens the store again.
    private var unusableStore: HAStoreError?

    private func noteStoreFailure(_ error: any Error) {
        if let error = error as? HAStoreError, error.code == .unusable, unusableStore == nil {
            logger.critical("the store refuses this process every further transaction: this master ends", metadata: [LogKey.error: "\(error)"])
            unusableStore = error
        }
    }

    /// The last leader this master logged, so that each change of leader is logged once.
    private var knownLeader: (epoch: Epoch, member: MemberID?)?
    private lazy var metrics = MasterMetrics(member: identity.member)

    public init(
        identity: LeaderIdentity, configuration: HAConfiguration, store: HAStore, liveness: any MemberLiveness, logger: Logger,
        time: any TimeSource = SystemTimeSource(), clock: any Clock<Duration> = ContinuousClock(), options: Options = Options()
    ) {
        self.clock = clock
        self.identity = identity
        self.configuration = configuration
        self.store = store
        self.liveness = liveness
        self.time = time
        self.options = options
        var logger = logger
        logger[metadataKey: LogKey.master] = "\(identity.member)"
        logger[metadataKey: LogKey.incarnation] = "\(identity.incarnation)"
        self.logger = logger
        (runtimes, runtimeStarts) = AsyncStream<LeaderRuntime>.makeStream()
        self.election = LeaderElection(
            identity: identity,
            configuration: .init(
                leaseDuration: configuration.election.leaseDuration,
                renewInterval: configuration.election.renewInterval,
                pollInterval: configuration.election.pollInterval))
    }

    /// The master runs on its store's thread: its loop is mostly store calls, which then run
    /// inline (the store thread is never blocked by anything but the store itself).
    public nonisolated var unownedExecutor: UnownedSerialExecutor { store.executor.asUnownedSerialExecutor() }

    /// The role right now.
    public var role: LeaderElection.Role { election.role }

    public func run() async throws {
        let (inputs, continuation) = AsyncStream<Input>.makeStream()
        var failure: LeaderRuntimeFailure?
        let watcher = liveness.makeWatcher { member, incarnation in
            guard incarnation == nil else {
                // A certified death: nothing is held while the loop acts on it.
                continuation.yield(.holderDied(member, incarnation, nil))
                return
            }
            // Called on the watcher's thread while it holds `member`'s lock: wait until the loop has
            // acted on it (campaigned), so the lock is released only afterwards.
            let done = DispatchSemaphore(value: 0)
            if case .enqueued = continuation.yield(.holderDied(member, nil, done)) {
                done.wait()
            }
        } onLeadershipChange: {
            continuation.yield(.leadershipChanged)
        }
        defer { watcher.stop() }
        let rpcConfiguration = try RPCConfiguration(configuration.rpc, identity: identity.member.rawValue)
        let endpoint = configuration.master(identity.member)!.rpc
        let server = try await RPCServer.bind(
            host: endpoint.host, port: endpoint.port, identity: RPCPeer(id: identity.member.rawValue, role: .master),
            configuration: rpcConfiguration, logger: logger)
        _ = metrics
        logger.info(
            "master candidate started",
            metadata: [
                LogKey.store: "\(store.path)", LogKey.backend: "\(store.backendName)",
                LogKey.pid: "\(identity.pid)",
            ])
        let (tick, clock) = (options.tickInterval, clock)
        // Nonisolated async calls (the store's methods) then run on the store thread too, inline.
        await withTaskExecutorPreference(store.executor) {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        try? await clock.sleep(for: tick)
                        continuation.yield(.tick)
                    }
                }
                // Connections are served on the cooperative pool: reading frames, decoding them and
                // encoding status replies must not wait behind the store thread's syncs (nor delay them).
                group.addTask(executorPreference: globalConcurrentExecutor) {
                    try? await server.run { connection in await self.serve(connection) }
                }
                group.addTask {
                    for await runtime in self.runtimes {
                        do throws(LeaderRuntimeFailure) { try await runtime.run() } catch { continuation.yield(.runtimeFailed(error)) }
                    }
                }
                await self.carryOut(self.election.start(now: self.time.monotonicNow()), watcher: watcher)
                for await input in inputs {
                    defer {
                        if let unusable = self.unusableStore, failure == nil {
                            failure = LeaderRuntimeFailure(message: "the store cannot be used by this process any more", underlying: unusable)
                            continuation.finish()
                        }
                    }
                    switch input {
                    case .tick:
                        await self.carryOut(self.election.tick(now: self.time.monotonicNow()), watcher: watcher)
                    case .holderDied(let member, let incarnation, let done):
                        self.logger.debug(
                            "the leader's process died", metadata: [LogKey.member: "\(member)", LogKey.incarnation: "\(incarnation.map { "\($0)" } ?? "any")"])
                        await self.carryOut(
                            self.election.holderProcessDied(member, incarnation: incarnation, now: self.time.monotonicNow()), watcher: watcher)
                        done?.signal()
                    case .leadershipChanged:
                        await self.carryOut(self.election.leadershipChanged(now: self.time.monotonicNow()), watcher: watcher)
                    case .shutdown:
                        await self.carryOut(self.election.resign(now: self.time.monotonicNow()), watcher: watcher)
                        continuation.finish()
                    case .runtimeFailed(let error):
                        failure = error
                        continuation.finish()
                    }
                }
                runtime?.stop()
                runtimeStarts.finish()
                server.close()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            continuation.yield(.shutdown)
        }
        }
        // Release a watcher thread that may still wait for the loop.
        for await input in inputs { if case .holderDied(_, _, let done) = input { done?.signal() } }
        if let failure {
            logger.critical("master candidate ends: its store failed while it led", metadata: [LogKey.error: "\(failure)"])
            throw failure
        }
        logger.info("master candidate stopped")
    }

    // MARK: RPC

    private func currentRuntime() -> LeaderRuntime? { runtime }

    /// Serves one connection: task executors register and report, clients submit, cancel, wait
    /// and ask for status. A standby answers with where the leader is.
    private nonisolated func serve(_ connection: RPCConnection) async {
        var executor: (ResourceID, LeaderRuntime)?
        for await message in connection.messages {
            // Reports go to the term their task executor registered with, without asking for the current one.
            if Self.forward(report: message, from: executor) { continue }
            var reply = WireEnvelope()
            let runtime = await currentRuntime()
            switch message.body {
            case .registerTaskExecutor(let registration):
                guard let runtime, let id = ResourceID(rawValue: registration.id) else {
                    reply.notLeader = await notLeader()
                    break
                }
                let accepted = await withCheckedContinuation { runtime.post(.register(registration, connection, $0)) }
                if accepted {
                    executor = (id, runtime)
                    reply.epoch = runtime.epoch.rawValue
                    reply.registered = .with {
                        $0.leaderID = identity.member.rawValue
                        $0.heartbeatIntervalMillis = UInt64(configuration.rpc.heartbeatInterval.milliseconds)
                        $0.heartbeatTimeoutMillis = UInt64(configuration.rpc.heartbeatTimeout.milliseconds)
                    }
                } else {
                    reply.notLeader = await notLeader()
                }
            case .triggerSavepoint(let request):
                guard let (runtime, job) = await jobTarget(request.job, reply: &reply) else { break }
                switch await runtime.request({ .triggerSavepoint(job, $0) }) {
                case .savepoint(let path): reply.savepointCompleted = .with {
                    $0.job = job.rawValue
                    $0.path = path
                }
                case let other: reply.answer(other)
                }
            case .submitJob(let submit):
                guard let runtime else {
                    reply.notLeader = await notLeader()
                    break
                }
                do {
                    let graph = try JSONDecoder().decode(JobGraph.self, from: submit.jobGraphJson)
                    // Every path of the job, and the savepoint, inside the folders jobs may use.
                    let specDirectory = submit.specDirectory.isEmpty ? nil : submit.specDirectory
                    do {
                        try configuration.jobPathRoots(specDirectory: specDirectory).check(graph)
                        if !submit.fromSavepoint.isEmpty {
                            try configuration.savepointRoots(specDirectory: specDirectory).check(submit.fromSavepoint, named: "the savepoint")
                        }
                    } catch {
                        logger.warning("refused a job whose paths lie outside the allowed folders", metadata: [LogKey.error: "\(error)"])
                        reply.failure = .with { $0.message = "\(error)" }
                        break
                    }
                    var savepoint: CompletedCheckpoint?
                    if !submit.fromSavepoint.isEmpty {
                        do {
                            savepoint = try SavepointFile.read(submit.fromSavepoint, key: configuration.rpc.secret)
                        } catch {
                            reply.failure = .with { $0.message = "\(error)" }
                            break
                        }
                    }
                    let start = savepoint
                    switch await runtime.request({ .submit(graph, savepoint: start, $0) }) {
                    case .submitted(let job): reply.jobAccepted = .with { $0.job = job.rawValue }
                    case let other: reply.answer(other)
                    }
                } catch {
                    reply.failure = .with { $0.message = "the job graph could not be read: \(error)" }
                }
            case .stopJob(let stop):
                guard let (runtime, job) = await jobTarget(stop.job, reply: &reply) else { break }
                reply.answer(await runtime.request { .endInput(job, $0) })
            case .cancelJob(let cancel):
                guard let (runtime, job) = await jobTarget(cancel.job, reply: &reply) else { break }
                reply.answer(await runtime.request { .cancel(job, $0) })
            case .awaitJob(let request):
                guard let (runtime, job) = await jobTarget(request.job, reply: &reply) else { break }
                reply.answer(await runtime.request { .awaitJob(job, $0) })
            case .statusRequest:
                guard let runtime else {
                    reply.notLeader = await notLeader()
                    break
                }
                let status = await withCheckedContinuation { runtime.post(.status($0)) }
                reply.statusReply = .with { $0.statusJson = (try? JSONEncoder().encode(status)) ?? Data() }
            default:
                continue
            }
            try? await connection.reply(to: message, with: reply)
        }
        if let (id, runtime) = executor { runtime.post(.disconnected(id, connection)) }
    }

    /// Hands a report (a task's state, a checkpoint's acknowledgement or decline) to the runtime of
    /// the term its task executor registered with; true when `message` is a report (handed over,
    /// or dropped when it is from no registered task executor or for another term).
    private static func forward(report message: WireEnvelope, from executor: (ResourceID, LeaderRuntime)?) -> Bool {
        // Reports count only for the term the task executor registered with.
        let registeredWith = executor.flatMap { message.epoch == $0.1.epoch.rawValue ? $0 : nil }
        switch message.body {
        case .taskStateChanged(let changed):
            if let (id, runtime) = registeredWith, let report = TaskReport(wire: changed.report) {
                runtime.post(.event(.reported(report, from: id)))
            }
        case .acknowledgeCheckpoint(let acknowledgement):
            if let (_, runtime) = registeredWith, let job = JobID(rawValue: acknowledgement.attempt.job) {
                runtime.post(
                    .event(
                        .checkpointAcknowledged(
                            job, acknowledgement.attempt.executionAttempt, checkpoint: CheckpointID(rawValue: acknowledgement.checkpointID),
                            state: acknowledgement.state.handle)))
            }
        case .declineCheckpoint(let decline):
            if let (_, runtime) = registeredWith, let job = JobID(rawValue: decline.attempt.job) {
                runtime.post(
                    .event(.checkpointDeclined(job, decline.attempt.executionAttempt, checkpoint: CheckpointID(rawValue: decline.checkpointID), reason: decline.reason)))
            }
        default:
            return false
        }
        return true
    }

    /// The leader's runtime and the job a client's request names; nil when this master does not
    /// lead (`reply` says who does) or the id is not a job id (`reply` says so).
    private func jobTarget(_ raw: String, reply: inout WireEnvelope) async -> (LeaderRuntime, JobID)? {
        guard let runtime else {
            reply.notLeader = await notLeader()
            return nil
        }
        guard let job = JobID(rawValue: raw) else {
            reply.failure = .with { $0.message = "no job '\(raw)': not a valid job id" }
            return nil
        }
        return (runtime, job)
    }

    private func notLeader() async -> WireNotLeader {
        let record = try? await store.leadership()
        return .with {
            $0.leaderID = record?.holder?.member.rawValue ?? ""
            $0.leaderAddress = record?.holder?.address ?? ""
            $0.leaderEpoch = record?.epoch.rawValue ?? 0
        }
    }

    /// Logs a change of leader seen in the store (by this master or another).
    private func noteLeader(_ record: LeadershipRecord?) {
        let seen = (epoch: record?.epoch ?? .none, member: record?.holder?.member)
        guard knownLeader.map({ $0.epoch != seen.epoch || $0.member != seen.member }) ?? true else { return }
        if knownLeader != nil { metrics.changedLeader() }
        metrics.knowEpoch(seen.epoch)
        knownLeader = seen
        if let holder = record?.holder, holder != identity {
            logger.info(
                "leader is \(holder.member)",
                metadata: [LogKey.epoch: "\(seen.epoch)", LogKey.holder: "\(holder.member)", "baton.address": "\(holder.address)"])
        } else if record?.holder == nil {
            logger.info("no leader", metadata: [LogKey.epoch: "\(seen.epoch)"])
        }
    }

    /// Carries out `actions` in order, feeding each outcome back into the election.
    private func carryOut(_ actions: [LeaderElection.Action], watcher: any HolderWatcher) async {
        var pending = actions[...]
        // The lease the runtime's outboxes check follows the election at every step.
        while let action = pending.popFirst() {
            lease.set(election.leaseExpiry)
            pending = await perform(action, watcher: watcher)[...] + pending
        }
        lease.set(election.leaseExpiry)
    }

    private func perform(_ action: LeaderElection.Action, watcher: any HolderWatcher) async -> [LeaderElection.Action] {
        switch action {
        case .readLeadership:
            do {
                let record = try await store.leadership()
                noteLeader(record)
                return election.observed(record, now: time.monotonicNow())
            } catch {
                logger.warning("cannot read the leadership record", metadata: [LogKey.error: "\(error)"])
                noteStoreFailure(error)
                return election.readFailed(now: time.monotonicNow())
            }

        case .watchHolder(let member):
            watcher.watch(member)
            return []

        case .campaign(let expectation):
            do {
                let outcome = try await store.campaign(
                    as: identity, expecting: expectation,
                    leaseMillis: Int64(configuration.election.leaseDuration.milliseconds), now: time.wallNow())
                switch outcome {
                case .won(let victory):
                    if let closed = victory.closedTerm {
                        logger.info(
                            "took over from the previous leader",
                            metadata: [
                                LogKey.epoch: "\(victory.record.epoch)", "baton.previous.epoch": "\(closed.epoch)",
                                "baton.previous.holder": "\(closed.holder.member)",
                                LogKey.reason: "\(closed.endReason?.rawValue ?? "?")",
                            ])
                    }
                    return election.campaignCompleted(.won(victory.record), now: time.monotonicNow())
                case .lost(let current):
                    noteLeader(current)
                    logger.debug(
                        "campaign lost", metadata: [LogKey.epoch: "\(current?.epoch ?? .none)", LogKey.reason: "\(expectation)"])
                    return election.campaignCompleted(.lost(current: current), now: time.monotonicNow())
                }
            } catch {
                logger.warning("campaign failed", metadata: [LogKey.error: "\(error)", LogKey.reason: "\(expectation)"])
                noteStoreFailure(error)
                return election.campaignCompleted(.failed, now: time.monotonicNow())
            }

        case .renew(let epoch):
            do {
                try await store.renew(epoch: epoch, now: time.wallNow())
                return election.renewCompleted(.renewed, epoch: epoch, now: time.monotonicNow())
            } catch let error as HAStoreError where error.code == .fenced {
                metrics.store.refused()
                logger.notice(
                    "lease renewal refused as fenced",
                    metadata: [LogKey.epoch: "\(epoch)", LogKey.error: "\(error.message)"])
                return election.renewCompleted(
                    .fenced(current: error.fencedWrite?.current ?? epoch.next), epoch: epoch, now: time.monotonicNow())
            } catch {
                logger.warning("lease renewal failed", metadata: [LogKey.epoch: "\(epoch)", LogKey.error: "\(error)"])
                noteStoreFailure(error)
                return election.renewCompleted(.failed, epoch: epoch, now: time.monotonicNow())
            }

        case .relinquish(let epoch, let reason):
            do {
                try await store.relinquish(epoch: epoch, reason: reason, now: time.wallNow())
                logger.info("term ended in the store", metadata: [LogKey.epoch: "\(epoch)", LogKey.reason: "\(reason.rawValue)"])
            } catch let error as HAStoreError where error.code == .fenced {
                metrics.store.refused()
                logger.notice(
                    "write refused as fenced: a newer term exists",
                    metadata: [LogKey.epoch: "\(epoch)", LogKey.error: "\(error.message)"])
            } catch {
                logger.warning("cannot end the term in the store", metadata: [LogKey.epoch: "\(epoch)", LogKey.error: "\(error)"])
            }
            return []

        case .leadershipGranted(let epoch):
            leadingSince = time.monotonicNow()
            if knownLeader.map({ $0.epoch != epoch || $0.member != identity.member }) ?? false { metrics.changedLeader() }
            knownLeader = (epoch, identity.member)
            metrics.lead(true)
            metrics.knowEpoch(epoch)
            logger.info(
                "leadership granted",
                metadata: [LogKey.epoch: "\(epoch)", "baton.address": "\(identity.address)"])
            let runtime = LeaderRuntime(
                epoch: epoch, identity: identity, store: store, configuration: configuration, mode: options.mode, takeover: options.takeover,
                logger: logger, time: time, clock: clock, lease: lease)
            self.runtime = runtime
            runtimeStarts.yield(runtime)
            return []

        case .leadershipRevoked(let epoch, let reason):
            metrics.lead(false)
            runtime?.stop()
            runtime = nil
            let held = leadingSince.map { DurationText.format(time.monotonicNow().since($0)) } ?? "?"
            leadingSince = nil
            logger.notice(
                "leadership revoked: no longer acting as leader",
                metadata: [LogKey.epoch: "\(epoch)", LogKey.reason: "\(reason)", "baton.held": "\(held)"])
            return []
        }
    }
}

extension WireEnvelope {
    /// The reply to a client's request, from the JobManager's answer.
    fileprivate mutating func answer(_ reply: JobManager.Reply) {
        switch reply {
        case .submitted(let job): jobAccepted = .with { $0.job = job.rawValue }
        case .done: ack = WireAck()
        case .outcome(let outcome):
            jobOutcome = .with {
                $0.job = outcome.job.rawValue
                $0.state = outcome.state.rawValue
                $0.failure = outcome.failure ?? ""
            }
        case .savepoint(let path): savepointCompleted = .with { $0.path = path }
        case .refused(let message): failure = .with { $0.message = message }
        }
    }
}
