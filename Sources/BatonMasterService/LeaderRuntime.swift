import BatonStoreRecords
import BatonCheckpointing
import BatonConfig
import BatonCore
import BatonElection
import BatonExecutionGraph
import BatonHAStore
import BatonJobGraph
import BatonJobMaster
import BatonFiles
import BatonOperators
import BatonRPC
import BatonResourceManager
import BatonWire
import BatonWireMapping
import Foundation
import Logging

/// What the leader runs for its term: the Dispatcher (and a JobMaster per job), the
/// ResourceManager, the registry of task executors and their connections, and the writing of
/// every job and every execution change to the store, fenced by the term's epoch.
///
/// Every input (a registration, a report, a lost connection, a request, a timer) goes through one
/// loop that carries out all the actions it causes, in order, before taking the next input: so
/// the store receives the changes in exactly the order the JobMasters made them. A fenced store
/// write ends the runtime at once: the leader has lost its term.
actor LeaderRuntime {
    enum Input: Sendable {
        case register(WireRegisterTaskExecutor, RPCConnection, CheckedContinuation<Bool, Never>)
        case report(WireTaskReport, from: Identifier)
        case disconnected(Identifier, RPCConnection)
        case submit(JobGraph, savepoint: CompletedCheckpoint?, CheckedContinuation<Result<JobID, RuntimeFailure>, Never>)
        case cancel(JobID, CheckedContinuation<Result<Void, RuntimeFailure>, Never>)
        case awaitJob(JobID, CheckedContinuation<Result<WireJobOutcome, RuntimeFailure>, Never>)
        case status(CheckedContinuation<LeaderStatusReport, Never>)
        case timer(JobID, JobMaster.Timer)
        case checkpointTimer(JobID, CheckpointCoordinator.Timer)
        case acknowledgeCheckpoint(WireAcknowledgeCheckpoint)
        case declineCheckpoint(WireDeclineCheckpoint)
        case savepoint(JobID, CheckedContinuation<Result<String, RuntimeFailure>, Never>)
        case reconciliationWindowClosed
        case stop(JobID, CheckedContinuation<Result<Void, RuntimeFailure>, Never>)
    }

    struct RuntimeFailure: Error, Sendable { var message: String }

    struct Executor {
        var connection: RPCConnection
        var dataAddress: String
        var resources: TaskExecutorResources
        var registeredAt: WallTime
    }

    let epoch: Epoch
    let identity: LeaderIdentity
    let store: HAStore
    let configuration: HAConfiguration
    let logger: Logger
    let time: any TimeSource
    var dispatcher: Dispatcher
    var resources = ResourceManager()
    /// The reconciliation of this term (nil when there was nothing to take over).
    var reconciliation: Reconciliation?
    /// This term's entry of the reconciliation journal, while it is being filled in.
    var journal: ReconciliationRecord?
    var executors: [Identifier: Executor] = [:]
    /// Deployments to task executors that have not registered with this leader yet (during
    /// reconciliation), sent when they do.
    var deferredDeployments: [Identifier: [(JobID, JobMaster.Deployment)]] = [:]
    /// The CheckpointCoordinator of every job that takes checkpoints.
    var checkpointing: [JobID: CheckpointCoordinator] = [:]
    /// Savepoint requests waiting for their savepoint, by request number.
    var savepointRequests: [UInt64: CheckedContinuation<Result<String, RuntimeFailure>, Never>] = [:]
    var nextSavepointRequest: UInt64 = 1
    private var awaiting: [JobID: [CheckedContinuation<Result<WireJobOutcome, RuntimeFailure>, Never>]] = [:]
    var sequences: [JobID: UInt64] = [:]
    /// The savepoint folder each job started from, if any.
    var savepoints: [JobID: String] = [:]
    var submittedAt: [JobID: WallTime] = [:]
    private(set) var fenced = false
    /// What this leader does with the running tasks it takes over.
    let takeover: TakeoverPolicy
    private let inputs: AsyncStream<Input>
    let continuation: AsyncStream<Input>.Continuation

    init(
        epoch: Epoch, identity: LeaderIdentity, store: HAStore, configuration: HAConfiguration, mode: Dispatcher.Mode,
        takeover: TakeoverPolicy, logger: Logger, time: any TimeSource
    ) {
        self.takeover = takeover
        self.epoch = epoch
        self.identity = identity
        self.store = store
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: LogKey.epoch] = "\(epoch)"
        self.logger = logger
        self.time = time
        dispatcher = Dispatcher(mode: mode)
        (inputs, continuation) = AsyncStream<Input>.makeStream()
    }

    /// Hands an input to the loop.
    nonisolated func post(_ input: Input) { continuation.yield(input) }

    /// Ends the runtime (the term ended).
    nonisolated func stop() { continuation.finish() }

    /// The failure that ended this runtime, if one did (the store cannot be read or written).
    private(set) var failure: LeaderRuntimeFailure?

    /// Stops acting as leader because of `failure` (as a fenced leader stops), so that `run` ends
    /// with it; returns the problem to report to the caller.
    func endTerm(_ failure: LeaderRuntimeFailure) -> String {
        self.failure = failure
        fenced = true
        continuation.finish()
        return failure.description
    }

    /// Runs the term until it ends. Throws when the store failed: the master process must end,
    /// so that its member lock hands the leadership over at once (the group restarts it).
    func run() async throws(LeaderRuntimeFailure) {
        logger.info("leader runtime started")
        await withDiscardingTaskGroup { group in
            // Take over what the previous leaders left before serving anyone.
            await carryOut(await recover(), timers: &group)
            for await input in inputs {
                guard !fenced else { answerStopped(input); continue }
                let actions = accept(input)
                await carryOut(actions, timers: &group)
            }
            group.cancelAll()
        }
        for connection in executors.values.map(\.connection) { connection.close() }
        for waiters in awaiting.values {
            for waiter in waiters { waiter.resume(returning: .failure(RuntimeFailure(message: "this master is no longer the leader"))) }
        }
        awaiting.removeAll()
        for waiter in savepointRequests.values { waiter.resume(returning: .failure(RuntimeFailure(message: "this master is no longer the leader"))) }
        savepointRequests.removeAll()
        logger.info("leader runtime stopped")
        if let failure { throw failure }
    }

    private func answerStopped(_ input: Input) {
        let failure = RuntimeFailure(message: "this master is no longer the leader")
        switch input {
        case .register(_, _, let reply): reply.resume(returning: false)
        case .submit(_, _, let reply): reply.resume(returning: .failure(failure))
        case .savepoint(_, let reply): reply.resume(returning: .failure(failure))
        case .stop(_, let reply): reply.resume(returning: .failure(failure))
        case .cancel(_, let reply): reply.resume(returning: .failure(failure))
        case .awaitJob(_, let reply): reply.resume(returning: .failure(failure))
        case .status(let reply): reply.resume(returning: LeaderStatusReport(taskExecutors: [], jobs: []))
        default: break
        }
    }

    var now: MonotonicInstant { time.monotonicNow() }

    // MARK: inputs

    /// Turns one input into the actions it causes (no awaiting: state changes happen here).
    private func accept(_ input: Input) -> [Step] {
        switch input {
        case .register(let registration, let connection, let reply):
            guard let id = Identifier(rawValue: registration.id) else {
                reply.resume(returning: false)
                return []
            }
            let offer = TaskExecutorResources(id: id, total: registration.total.profile, defaultSlots: max(1, Int(registration.defaultSlots)))
            let replaced = executors[id]?.connection
            executors[id] = Executor(connection: connection, dataAddress: registration.dataAddress, resources: offer, registeredAt: time.wallNow())
            if let replaced, replaced !== connection { replaced.close() }
            logger.info(
                "task executor registered",
                metadata: [LogKey.taskExecutor: "\(id)", "baton.slots": "\(offer.defaultSlots)", "baton.tasks": "\(registration.tasks.count)"])
            reply.resume(returning: true)
            let held = dispatcher.jobs.flatMap { $0.allocations(on: id) }
            for job in dispatcher.submissionOrder { _ = dispatcher.route(job) { $0.taskExecutorRegistered(id); return [] } }
            var steps = resourceSteps(resources.register(offer, adopting: held))
            reconciliation?.registered(id)
            for report in registration.tasks { steps += registrationSteps(report, from: id) }
            // Deployments that waited for this task executor to come back.
            for (job, deployment) in deferredDeployments.removeValue(forKey: id) ?? [] {
                steps.append(.dispatch(.job(job, .deploy(deployment))))
            }
            return steps + reconciliationProgress()
        case .report(let report, let executor):
            let steps = reportSteps(report, from: executor)
            return steps + (Identifier(rawValue: report.attempt.job).map { checkpointTasksChanged($0) } ?? [])
        case .disconnected(let id, let connection):
            guard let executor = executors[id], executor.connection === connection else { return [] }
            executors[id] = nil
            logger.notice("task executor lost", metadata: [LogKey.taskExecutor: "\(id)"])
            var steps = resourceSteps(resources.taskExecutorLost(id))
            let current = now
            for job in dispatcher.submissionOrder {
                steps += dispatcher.route(job) { $0.taskExecutorLost(id, now: current) }.map(Step.dispatch)
                steps += checkpointTasksChanged(job)
            }
            return steps
        case .submit(let graph, let savepoint, let reply):
            let offers = executors.isEmpty ? nil : executors.values.map(\.resources.total)
            if let savepoint {
                let problems = savepoint.mismatches(with: graph)
                guard problems.isEmpty else {
                    reply.resume(returning: .failure(RuntimeFailure(message: "the job cannot start from savepoint \(savepoint.directory): " + problems.joined(separator: "; "))))
                    return []
                }
            }
            do {
                let actions = try dispatcher.submit(graph, taskExecutors: offers, now: now)
                logger.info(
                    "job submitted",
                    metadata: [LogKey.job: "\(graph.id)", "baton.name": "\(graph.name)", "baton.savepoint": "\(savepoint?.directory ?? "")"])
                submittedAt[graph.id] = time.wallNow()
                savepoints[graph.id] = savepoint?.directory
                let checkpoints = startCheckpointing(graph, savepoint: savepoint)
                return [.removeSourceRanges(graph.id), .saveJob(graph.id), .reply { reply.resume(returning: .success(graph.id)) }] + checkpoints
                    + actions.map(Step.dispatch)
            } catch {
                reply.resume(returning: .failure(RuntimeFailure(message: error.message)))
                return []
            }
        case .cancel(let job, let reply):
            do {
                let actions = try dispatcher.cancel(job, now: now)
                reply.resume(returning: .success(()))
                return actions.map(Step.dispatch)
            } catch {
                reply.resume(returning: .failure(RuntimeFailure(message: error.message)))
                return []
            }
        case .awaitJob(let job, let reply):
            guard let master = dispatcher.job(job) else {
                reply.resume(returning: .failure(RuntimeFailure(message: "no job '\(job)'")))
                return []
            }
            if master.state.isTerminal {
                reply.resume(returning: .success(outcome(master)))
            } else {
                awaiting[job, default: []].append(reply)
            }
            return []
        case .status(let reply):
            reply.resume(returning: liveStatus())
            return []
        case .timer(let job, let timer):
            let current = now
            return dispatcher.route(job) { $0.timerFired(timer, now: current) }.map(Step.dispatch) + checkpointTasksChanged(job)
        case .checkpointTimer(let job, let timer):
            return checkpointTimerFired(job, timer)
        case .acknowledgeCheckpoint(let acknowledgement):
            return checkpointAcknowledged(acknowledgement)
        case .declineCheckpoint(let decline):
            return checkpointDeclined(decline)
        case .savepoint(let job, let reply):
            return savepointRequested(job, reply)
        case .reconciliationWindowClosed:
            return reconciliationWindowClosed()
        case .stop(let job, let reply):
            guard let master = dispatcher.job(job), !master.state.isTerminal else {
                reply.resume(returning: .failure(RuntimeFailure(message: "no running job '\(job)'")))
                return []
            }
            reply.resume(returning: .success(()))
            logger.info("ending the job's input", metadata: [LogKey.job: "\(job)"])
            return [.endInput(job)]
        }
    }

    func reportSteps(_ report: WireTaskReport, from executor: Identifier) -> [Step] {
        guard let job = Identifier(rawValue: report.attempt.job) else { return [] }
        let state = ExecutionState(wire: report.state)
        let attempt = report.attempt.executionAttempt
        let current = now
        return dispatcher.route(job) { master in
            master.taskStateChanged(attempt, to: state, failure: report.failure.isEmpty ? nil : report.failure, now: current)
        }.map(Step.dispatch)
    }

    func resourceSteps(_ actions: [ResourceManager.Action]) -> [Step] {
        var steps: [Step] = []
        let current = now
        for action in actions {
            switch action {
            case .allocated(let allocation):
                steps += dispatcher.route(allocation.job) { $0.slotAllocated(allocation, now: current) }.map(Step.dispatch)
            case .pending(let shortage):
                steps += dispatcher.route(shortage.request.job) { $0.slotPending(request: shortage.request.id, shortage: shortage.description) }
                    .map(Step.dispatch)
            case .lost(let allocation):
                steps += dispatcher.route(allocation.job) { $0.slotLost(allocation, now: current) }.map(Step.dispatch)
            }
        }
        return steps
    }

    private func outcome(_ master: JobMaster) -> WireJobOutcome {
        .with {
            $0.job = master.id.rawValue
            $0.state = master.state.rawValue
            $0.failure = master.failureReason ?? ""
        }
    }

    // MARK: actions

    /// One thing to do, in order.
    enum Step: Sendable {
        case dispatch(Dispatcher.Action)
        case saveJob(JobID)
        case reply(@Sendable () -> Void)
        case checkpoint(JobID, CheckpointCoordinator.Action)
        /// Cancel an attempt a task executor holds that no job expects.
        case cancelUnknown(Identifier, WireAttempt)
        /// Write this term's reconciliation journal entry.
        case saveJournal
        /// Tell every running source of the job to end its input.
        case endInput(JobID)
        /// A new run of the job: forget the source ranges an earlier run with this id left.
        case removeSourceRanges(JobID)
    }

    func carryOut(_ steps: [Step], timers: inout DiscardingTaskGroup) async {
        var queue = steps[...]
        var changes: [(JobID, ExecutionGraphChange)] = []
        while let step = queue.popFirst() {
            if case .dispatch(.job(let job, .persist(let change))) = step {
                changes.append((job, change))
                continue
            }
            // Anything else waits until the changes before it are durable.
            if !changes.isEmpty {
                await persist(changes)
                changes.removeAll()
            }
            guard !fenced else { return }
            switch step {
            case .dispatch(let action):
                queue += await perform(action, timers: &timers)
            case .saveJob(let job):
                await saveJob(job)
            case .removeSourceRanges(let job):
                DurableFiles.removeTree(SourceRanges.directory(checkpoints: configuration.checkpoints.directory, job: job.rawValue))
            case .reply(let reply):
                reply()
            case .checkpoint(let job, let action):
                queue += await perform(action, of: job, timers: &timers)
            case .cancelUnknown(let executor, let attempt):
                var envelope = WireEnvelope()
                envelope.epoch = epoch.rawValue
                envelope.cancelTask = .with { $0.attempt = attempt }
                await command(envelope, to: executor)
            case .saveJournal:
                await saveJournal()
            case .endInput(let job):
                guard let master = dispatcher.job(job) else { break }
                for jobVertex in master.graph.jobVertices where jobVertex.inputs.isEmpty {
                    for subtask in 0..<jobVertex.parallelism {
                        let vertex = ExecutionVertexID(jobVertex: jobVertex.index, subtask: subtask)
                        guard let location = master.graph.execution(vertex).location, !master.graph.execution(vertex).state.isTerminal else { continue }
                        var envelope = WireEnvelope()
                        envelope.epoch = epoch.rawValue
                        envelope.endSourceInput = .with { $0.attempt = WireAttempt(job: job, master.graph.attemptID(vertex)) }
                        await command(envelope, to: location.taskExecutor)
                    }
                }
            }
        }
        if !changes.isEmpty { await persist(changes) }
    }

    private func perform(_ action: Dispatcher.Action, timers: inout DiscardingTaskGroup) async -> [Step] {
        switch action {
        case .job(let job, let jobAction):
            switch jobAction {
            case .requestSlot(let request):
                return resourceSteps(resources.request(request))
            case .cancelSlotRequest(let id):
                resources.cancelRequest(id, of: job)
            case .releaseSlot(let id):
                return resourceSteps(resources.release(id))
            case .deploy(let deployment):
                return await deploy(deployment, of: job)
            case .cancelTask(let attempt, let location):
                var envelope = WireEnvelope()
                envelope.epoch = epoch.rawValue
                envelope.cancelTask = .with { $0.attempt = WireAttempt(job: job, attempt) }
                await command(envelope, to: location.taskExecutor)
            case .startTimer(let timer, let after):
                let continuation = self.continuation
                timers.addTask {
                    try? await Task.sleep(for: after)
                    continuation.yield(.timer(job, timer))
                }
            case .persist:
                break  // gathered by carryOut
            case .jobStateChanged(let state, let reason):
                logger.info("job state changed", metadata: [LogKey.job: "\(job)", "baton.state": "\(state)", LogKey.reason: "\(reason ?? "")"])
                await saveJob(job)
            }
        case .jobEnded(let job, let state):
            logger.info("job ended", metadata: [LogKey.job: "\(job)", "baton.state": "\(state)"])
            var ended: [Step] = []
            if checkpointing[job] != nil {
                ended = checkpointing[job]!.stop(reason: "the job ended \(state)").map { .checkpoint(job, $0) }
            }
            if let master = dispatcher.job(job) {
                for waiter in awaiting.removeValue(forKey: job) ?? [] { waiter.resume(returning: .success(outcome(master))) }
            }
            var release = WireEnvelope()
            release.epoch = epoch.rawValue
            release.releasePartitions = .with { $0.job = job.rawValue }
            for id in executors.keys.sorted() { await command(release, to: id) }
            return ended
        case .shutDown(let state):
            logger.info("the per-job cluster's job ended", metadata: ["baton.state": "\(state)"])
        }
        return []
    }

    /// Sends a command to a task executor and waits for its acknowledgement; a task executor that
    /// cannot be reached is left to the lost-connection path.
    func command(_ envelope: WireEnvelope, to id: Identifier) async {
        guard let executor = executors[id] else { return }
        do {
            let reply = try await executor.connection.request(envelope, timeout: .seconds(10))
            if case .failure(let failure) = reply.body {
                logger.warning("a task executor refused a command", metadata: [LogKey.taskExecutor: "\(id)", LogKey.reason: "\(failure.message)"])
            }
        } catch {
            logger.warning("a command did not reach its task executor", metadata: [LogKey.taskExecutor: "\(id)", LogKey.error: "\(error)"])
        }
    }

    private func deploy(_ deployment: JobMaster.Deployment, of job: JobID) async -> [Step] {
        let target = deployment.location.taskExecutor
        guard executors[target] != nil else {
            if let reconciliation, !reconciliation.isDone {
                deferredDeployments[target, default: []].append((job, deployment))
                return []
            }
            // Not registered and not expected any more: it is lost.
            logger.notice("a deployment names a task executor that is not registered", metadata: [LogKey.taskExecutor: "\(target)", LogKey.job: "\(job)"])
            let current = now
            return dispatcher.route(job) { $0.taskExecutorLost(target, now: current) }.map(Step.dispatch) + checkpointTasksChanged(job)
        }
        guard let master = dispatcher.job(job) else { return [] }
        let graph = master.graph
        let vertex = deployment.attempt.vertex
        let jobVertex = graph.jobVertices[Int(vertex.jobVertex)]
        guard let spec = master.jobGraph.vertex(jobVertex.id) else { return [] }
        var deploy = WireDeployTask()
        deploy.attempt = WireAttempt(job: job, deployment.attempt)
        deploy.allocation = deployment.location.allocation
        deploy.vertexID = jobVertex.id.rawValue
        deploy.parallelism = UInt32(jobVertex.parallelism)
        deploy.maxParallelism = UInt32(spec.maxParallelism)
        deploy.operators = spec.operators.map { operation in .with { $0.name = operation.name; $0.parameters = operation.parameters } }
        deploy.inputs = jobVertex.inputs.map { resultIndex in
            let result = graph.results[resultIndex]
            return .with {
                $0.result = UInt32(resultIndex)
                $0.blocking = result.type == .blocking
                $0.pointwise = result.isPointwise
                $0.channels = graph.producers(of: vertex, through: result).map { channel(for: $0, in: graph) }
            }
        }
        if let restore = checkpointing[job]?.restoreState(for: vertex, jobVertex: jobVertex.id) {
            deploy.restore = .with {
                $0.checkpointID = restore.checkpoint
                $0.state = WireStateHandle(restore.state)
            }
        }
        deploy.outputs = jobVertex.outputs.map { resultIndex in
            let result = graph.results[resultIndex]
            let edge = master.jobGraph.edges[resultIndex]
            let consumer = master.jobGraph.vertex(edge.target)!
            return .with {
                $0.result = UInt32(resultIndex)
                $0.blocking = result.type == .blocking
                $0.pattern = edge.pattern.rawValue
                $0.key = edge.key ?? ""
                $0.consumerParallelism = UInt32(consumer.parallelism)
                $0.consumerMaxParallelism = UInt32(consumer.maxParallelism)
            }
        }
        var envelope = WireEnvelope()
        envelope.epoch = epoch.rawValue
        envelope.deployTask = deploy
        await command(envelope, to: deployment.location.taskExecutor)
        // Consumers deployed earlier did not know where this producer runs: tell them.
        for resultIndex in jobVertex.outputs {
            let result = graph.results[resultIndex]
            for consumer in graph.consumers(of: vertex, through: result) {
                let execution = graph.execution(consumer)
                guard [.deploying, .initializing, .running].contains(execution.state), let location = execution.location else { continue }
                var update = WireEnvelope()
                update.epoch = epoch.rawValue
                update.updatePartitionInfo = .with {
                    $0.consumer = WireAttempt(job: job, graph.attemptID(consumer))
                    $0.result = UInt32(resultIndex)
                    $0.channel = channel(for: vertex, in: graph)
                }
                await command(update, to: location.taskExecutor)
            }
        }
        return []
    }

    private func channel(for producer: ExecutionVertexID, in graph: ExecutionGraph) -> WireInputChannel {
        let execution = graph.execution(producer)
        return .with {
            $0.producerSubtask = UInt32(producer.subtask)
            $0.producerAttempt = UInt32(execution.attempt)
            if let location = execution.location, execution.state != .created, execution.state != .scheduled,
                let executor = executors[location.taskExecutor]
            {
                $0.taskExecutor = location.taskExecutor.rawValue
                $0.dataAddress = executor.dataAddress
                $0.known = true
            }
        }
    }

    // MARK: persistence

    /// Writes execution changes in one fenced transaction, with, for every attempt about to be
    /// deployed to restore from a checkpoint, the audit's record of which checkpoint it restores
    /// (so that record is durable before the deployment goes out, at no extra commit).
    private func persist(_ changes: [(JobID, ExecutionGraphChange)]) async {
        var entries: [([UInt8], [UInt8])] = []
        var restores: [(job: JobID, checkpoint: UInt64, attempt: ExecutionAttemptID)] = []
        for (job, change) in changes {
            let sequence = sequences[job, default: 0]
            sequences[job] = sequence + 1
            entries.append((JobKeys.change(job, sequence), ChangeRecord.value(epoch: epoch, change)))
            if case .state(let attempt, .deploying, _) = change, let master = dispatcher.job(job),
                let restore = checkpointing[job]?.restoreState(
                    for: attempt.vertex, jobVertex: master.graph.jobVertices[Int(attempt.vertex.jobVertex)].id)
            {
                restores.append((job, restore.checkpoint, attempt))
            }
        }
        let (batch, restored, epoch, wall) = (entries, restores, self.epoch, time.wallNow())
        await write { writer in
            for (key, value) in batch { try writer.put(.executionGraphs, key, bytes: value) }
            for restore in restored {
                try CheckpointRecords.writeRestore(writer, job: restore.job, checkpoint: restore.checkpoint, attempt: restore.attempt, epoch: epoch, at: wall)
            }
        }
    }

    private func saveJob(_ job: JobID) async {
        guard let master = dispatcher.job(job) else { return }
        let record = JobRecord(
            graph: master.jobGraph, state: master.state, submittedAt: submittedAt[job] ?? time.wallNow(), restarts: master.restarts,
            failure: master.failureReason, savepoint: savepoints[job])
        await write { writer in try writer.put(.jobs, JobKeys.job(job), record) }
    }

    /// Writes fenced by this term's epoch; nil when it committed, otherwise why not. A fenced
    /// refusal ends the runtime at once.
    @discardableResult
    func write(_ body: @escaping @Sendable (StoreWriter) throws -> Void) async -> String? {
        do {
            try await store.write(fencedBy: epoch, body)
            return nil
        } catch let error as HAStoreError where error.code == .fenced {
            logger.notice("a store write was refused as fenced: this term is over", metadata: [LogKey.error: "\(error.message)"])
            fenced = true
            continuation.finish()
            return "fenced: \(error.message)"
        } catch {
            // A leader whose writes do not land must not go on: what it did would differ from
            // what the next leader reads. Retry a passing problem, then end the process (the
            // group restarts it; its member lock hands the leadership over at once).
            for delay in [Duration.milliseconds(10), .milliseconds(100), .milliseconds(500)] {
                try? await Task.sleep(for: delay)
                do {
                    try await store.write(fencedBy: epoch, body)
                    return nil
                } catch let error as HAStoreError where error.code == .fenced {
                    fenced = true
                    continuation.finish()
                    return "fenced: \(error.message)"
                } catch {
                    continue
                }
            }
            logger.critical("a store write keeps failing: this master ends so that another takes over", metadata: [LogKey.error: "\(error)"])
            return endTerm(LeaderRuntimeFailure(message: "a store write keeps failing", underlying: error))
        }
    }

    // MARK: status

    private func liveStatus() -> LeaderStatusReport {
        let executorsStatus = executors.keys.sorted().map { id -> LeaderStatusReport.TaskExecutor in
            let executor = executors[id]!
            let free = resources.freeResources(of: id) ?? .zero
            let slot = executor.resources.defaultSlotProfile
            let freeSlots = slot.dimensions.filter { $0.1 > 0 }.map { Int(free.amount($0.0) / $0.1) }.min() ?? executor.resources.defaultSlots
            return LeaderStatusReport.TaskExecutor(
                id: id.rawValue, slots: executor.resources.defaultSlots, freeSlots: max(0, min(freeSlots, executor.resources.defaultSlots)),
                registeredEpoch: epoch.rawValue, dataAddress: executor.dataAddress)
        }
        let jobs = dispatcher.jobs.map { master -> LeaderStatusReport.Job in
            let graph = master.graph
            return LeaderStatusReport.Job(
                id: master.id.rawValue, name: master.jobGraph.name, state: master.state.rawValue, restarts: master.restarts,
                failure: master.failureReason, lastCheckpoint: lastCheckpoint(of: master.id),
                vertices: graph.jobVertices.map { jobVertex in
                    LeaderStatusReport.Vertex(
                        id: jobVertex.id.rawValue, parallelism: jobVertex.parallelism,
                        subtasks: (0..<jobVertex.parallelism).map { index in
                            let execution = graph.execution(ExecutionVertexID(jobVertex: jobVertex.index, subtask: index))
                            return LeaderStatusReport.Subtask(
                                index: index, attempt: Int(execution.attempt), state: execution.state.description,
                                taskExecutor: execution.location?.taskExecutor.rawValue)
                        })
                })
        }
        return LeaderStatusReport(taskExecutors: executorsStatus, jobs: jobs)
    }
}

extension Dispatcher.DispatcherError {
    var text: String { message }
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
