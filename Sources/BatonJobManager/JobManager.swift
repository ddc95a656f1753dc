public import BatonCheckpointing
public import BatonCore
public import BatonExecutionGraph
public import BatonJobGraph
public import BatonJobMaster
public import BatonResourceManager

/// What the leading master decides for one term, as a pure instance (Flink's JobManager: the
/// Dispatcher with a JobMaster per job, the ResourceManager, a CheckpointCoordinator per job that
/// takes checkpoints), with the registry of task executors, the reconciliation of a takeover and
/// its journal entry. No I/O, no clock, no tasks: events come in with `now` and the wall time,
/// and `Ready` batches go out.
///
/// Contract with the shell (as raft's `Ready`):
/// - Batches are carried out in order. A batch's `writes` go to the store in one transaction
///   fenced by the term's epoch, and only once they are durable are its `effects` carried out in
///   order (commands to task executors, replies, timers, file work). So every change is durable
///   before anything that depends on it is sent. Messages, replies, timers and notices may also
///   wait for writes made after them (they join one batch); work on files never does.
/// - A write either commits or ends the term: the shell feeds no event to an instance whose write
///   did not commit (a new term starts a new instance from the store).
/// - The shell feeds `taskExecutorLost` only for the connection the task executor registered on,
///   and reports only from the term the task executor registered with.
///
/// Guarantees (each pinned by a test):
/// - The store receives a job's ExecutionGraph changes in the order the JobMaster made them,
///   numbered without gaps from where the store's records end.
/// - A deployment to a task executor that has not registered with this term waits while the
///   takeover is being reconciled, and is a lost task executor after.
/// - Attempts a registering task executor reports are adopted, finished or cancelled as the
///   reconciliation decides; nothing healthy restarts (unless the takeover policy says so).
/// - A checkpoint is reported complete, and sinks notified, only after its metadata write.
public struct JobManager: Sendable {
    public struct Settings: Sendable {
        public var mode: Dispatcher.Mode
        public var takeover: TakeoverPolicy
        public var reconciliationWindow: Duration
        /// The checkpoint interval of a job that sets none.
        public var checkpointInterval: Duration
        public var checkpointTimeout: Duration
        public var retainedCheckpoints: Int
        /// `<checkpoints.dir>`: each job's checkpoints go to `<dir>/<job>`.
        public var checkpointDirectory: String
        public var savepointDirectory: String
        public var jobMaster: JobMaster.Options
        /// How many ended runs the history keeps, and for how long.
        public var historyRetain = 1000
        public var historyMaxAge: Duration = .seconds(7 * 86_400)
        /// A running job's ExecutionGraph is snapshotted once this many change records were
        /// written since its last snapshot; the records the snapshot covers are deleted with it.
        public var snapshotEvery = 1000

        public init(
            mode: Dispatcher.Mode, takeover: TakeoverPolicy, reconciliationWindow: Duration, checkpointInterval: Duration,
            checkpointTimeout: Duration, retainedCheckpoints: Int, checkpointDirectory: String, savepointDirectory: String,
            jobMaster: JobMaster.Options = JobMaster.Options(), historyRetain: Int = 1000, historyMaxAge: Duration = .seconds(7 * 86_400),
            snapshotEvery: Int = 1000
        ) {
            self.snapshotEvery = max(1, snapshotEvery)
            self.historyRetain = max(1, historyRetain)
            self.historyMaxAge = historyMaxAge
            self.mode = mode
            self.takeover = takeover
            self.reconciliationWindow = reconciliationWindow
            self.checkpointInterval = checkpointInterval
            self.checkpointTimeout = checkpointTimeout
            self.retainedCheckpoints = retainedCheckpoints
            self.checkpointDirectory = checkpointDirectory
            self.savepointDirectory = savepointDirectory
            self.jobMaster = jobMaster
        }
    }

    /// A request from a client, answered by a `.reply` effect with the same id.
    public struct RequestID: RawRepresentable, Hashable, Comparable, Sendable {
        public var rawValue: UInt64
        public init(rawValue: UInt64) { self.rawValue = rawValue }
        public static func < (lhs: RequestID, rhs: RequestID) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// A task executor registering with this term, with the attempts it holds.
    public struct Registration: Hashable, Sendable {
        public var resources: TaskExecutorResources
        public var dataAddress: String
        public var tasks: [TaskReport]

        public init(resources: TaskExecutorResources, dataAddress: String, tasks: [TaskReport]) {
            self.resources = resources
            self.dataAddress = dataAddress
            self.tasks = tasks
        }
    }

    /// A task executor registered with this term.
    public struct RegisteredTaskExecutor: Hashable, Sendable {
        public var resources: TaskExecutorResources
        public var dataAddress: String
        public var registeredAt: WallTime
    }

    public enum Timer: Hashable, Sendable {
        case job(JobID, JobMaster.Timer)
        case checkpoint(JobID, CheckpointCoordinator.Timer)
        case reconciliationWindow
    }

    public enum Event: Sendable {
        /// The term starts: what the store holds (first event of every term).
        case takeOver(Takeover)
        case registered(Registration)
        case reported(TaskReport, from: ResourceID)
        /// The connection a task executor registered on closed (or its heartbeats stopped).
        case taskExecutorLost(ResourceID)
        case submit(JobGraph, savepoint: CompletedCheckpoint?, RequestID)
        case cancel(JobID, RequestID)
        /// Answered when the job reaches a terminal state.
        case awaitJob(JobID, RequestID)
        /// Tell every running source of the job to end its input (`baton stop`).
        case endInput(JobID, RequestID)
        case triggerSavepoint(JobID, RequestID)
        case timerFired(Timer)
        case checkpointAcknowledged(JobID, ExecutionAttemptID, checkpoint: CheckpointID, state: StateHandle)
        case checkpointDeclined(JobID, ExecutionAttemptID, checkpoint: CheckpointID, reason: String)
        /// The outcome of a `.writeSavepointFile` effect.
        case savepointFileWritten(JobID, checkpoint: CheckpointID, failure: String?)
    }

    /// A change to make durable, fenced by the term's epoch.
    public enum StoreWrite: Hashable, Sendable {
        case job(JobRecord)
        /// The change record `sequence` of the job's ExecutionGraph.
        case change(JobID, sequence: UInt64, ExecutionGraphChange)
        /// A snapshot of the job's ExecutionGraph after its change records `0..<log.next`; the
        /// records it covers are deleted in the same transaction.
        case snapshot(JobID, ExecutionGraphSnapshot)
        /// The audit's record that `attempt` is deployed to restore from `checkpoint`.
        case restore(JobID, checkpoint: CheckpointID, attempt: ExecutionAttemptID, at: WallTime)
        /// The next checkpoint id, written before the trigger goes out.
        case checkpointCounter(JobID, next: CheckpointID)
        case checkpointCompleted(CompletedCheckpoint, subsumed: [CheckpointID], committedAt: WallTime)
        /// This term's entry of the reconciliation journal.
        case journal(ReconciliationRecord)
        /// A run ended: its summary goes to the history and its record leaves the jobs a new
        /// leader loads (its change records and checkpoints stay for the audit until the id runs
        /// again).
        case runEnded(JobSummary)
        /// A new run of the job id starts: what the store holds of earlier runs (change records,
        /// checkpoint metadata, counter and history) goes.
        case newRun(JobID)
        /// An ended run leaves the history (retention); with `records`, what the store kept of it
        /// (it was the id's latest run, and the id does not run) goes too.
        case pruneRun(JobID, run: Int, records: Bool)
    }

    /// A command to one task executor.
    public enum Command: Hashable, Sendable {
        case deploy(TaskDeploymentDescriptor)
        case cancel(JobID, ExecutionAttemptID)
        /// A producer the consumer did not know the location of is deployed.
        case updatePartition(JobID, consumer: ExecutionAttemptID, result: Int, channel: InputChannelDescriptor)
        /// Drop the job's kept result partitions: all of them, or `only` those one producer
        /// attempt wrote (every consumer of them finished).
        case releasePartitions(JobID, only: ProducedResults?)
        case triggerCheckpoint(JobID, source: ExecutionAttemptID, id: CheckpointID, timestamp: WallTime, directory: String, isSavepoint: Bool)
        case notifyCheckpointComplete(JobID, checkpoint: CheckpointID)
        case endInput(JobID, ExecutionAttemptID)
    }

    /// The blocking results one producer attempt wrote.
    public struct ProducedResults: Hashable, Sendable {
        public var producer: ExecutionAttemptID
        public var results: [Int]
        public init(producer: ExecutionAttemptID, results: [Int]) {
            self.producer = producer
            self.results = results
        }
    }

    public struct JobOutcome: Hashable, Sendable {
        public var job: JobID
        public var state: JobState
        public var failure: String?
        public init(job: JobID, state: JobState, failure: String?) {
            self.job = job
            self.state = state
            self.failure = failure
        }
    }

    public enum Reply: Hashable, Sendable {
        case submitted(JobID)
        case done
        case outcome(JobOutcome)
        case savepoint(path: String)
        case refused(String)
    }

    /// What happened, for the shell's log (leader changes and failovers at info).
    public enum Notice: Hashable, Sendable {
        case taskExecutorRegistered(ResourceID, slots: Int, tasks: Int)
        case taskExecutorLost(ResourceID)
        case taskExecutorNotBack(ResourceID)
        case deploymentToUnregistered(ResourceID, JobID)
        case jobSubmitted(JobID, name: String, savepoint: String?)
        case jobStateChanged(JobID, JobState, reason: String?)
        case jobEnded(JobID, JobState)
        case perJobClusterEnded(JobState)
        case endingInput(JobID)
        /// A per-job cluster cancels a job a session left running, to run the one it was started for.
        case cancellingLeftover(JobID, for: JobID)
        case takingOver(jobs: Int, expectedAttempts: Int, taskExecutors: [ResourceID], previousEpoch: Epoch?)
        case reconciled(ReconciliationRecord)
        case cancellingUnknownAttempt(ResourceID, JobID, ExecutionAttemptID)
        case checkpointTriggered(JobID, CheckpointID, isSavepoint: Bool)
        case checkpointAborted(JobID, CheckpointID, reason: String)
        case checkpointCompleted(JobID, CompletedCheckpoint)
        case savepointCompleted(JobID, path: String)
    }

    public enum Effect: Hashable, Sendable {
        case send(Command, to: ResourceID)
        case reply(RequestID, Reply)
        case startTimer(Timer, after: Duration)
        /// Write a savepoint's `_metadata` file; then feed `savepointFileWritten`.
        case writeSavepointFile(JobID, CompletedCheckpoint)
        /// Remove a checkpoint's folder.
        case discardCheckpoint(directory: String)
        /// Remove the folders `chk-<id>` in `directory` with `above` < id < `below`: checkpoints a
        /// previous leader triggered and never completed.
        case discardCheckpoints(directory: String, above: CheckpointID, below: CheckpointID)
        /// A new run of the job: forget the files an earlier run with this id left (its checkpoint
        /// folder, with its source ranges), all but `keeping` (the savepoint it starts from, if
        /// that lies there).
        case removeJobFiles(JobID, keeping: String?)
        case notice(Notice)

        /// Whether the effect may be carried out after writes made after it are durable too:
        /// true for what only leaves the process or waits (a message can be delayed on the way
        /// anyway); false for work on files, which later writes may depend on.
        var mayFollowLaterWrites: Bool {
            switch self {
            case .send, .reply, .startTimer, .notice: true
            case .writeSavepointFile, .discardCheckpoint, .discardCheckpoints, .removeJobFiles: false
            }
        }
    }

    /// Writes to make durable, then effects to carry out once they are.
    public struct Ready: Hashable, Sendable {
        public var writes: [StoreWrite]
        public var effects: [Effect]
    }

    public let epoch: Epoch
    /// The member leading this term.
    public let leader: MemberID
    public let settings: Settings
    public internal(set) var dispatcher: Dispatcher
    public internal(set) var resources = ResourceManager()
    public internal(set) var taskExecutors: [ResourceID: RegisteredTaskExecutor] = [:]
    /// The reconciliation of this term (nil when there was nothing to take over).
    public internal(set) var reconciliation: Reconciliation?
    /// This term's entry of the reconciliation journal, while it is being filled in.
    public internal(set) var journal: ReconciliationRecord?
    /// The CheckpointCoordinator of every job that takes checkpoints.
    public internal(set) var checkpointing: [JobID: CheckpointCoordinator] = [:]
    /// Deployments to task executors that have not registered with this term yet (during
    /// reconciliation), sent when they do.
    var deferredDeployments: [ResourceID: [(JobID, JobMaster.Deployment)]] = [:]
    var awaiting: [JobID: [RequestID]] = [:]
    /// The latest ended run of each job id this term knows of (from the history, and ended here).
    public internal(set) var history: [JobID: JobSummary] = [:]
    /// Every run the history keeps, oldest first (what retention prunes).
    var keptRuns: [JobSummary] = []
    /// Each job's change records so far (the next sequence number, and what the audit needs).
    var changeLogs: [JobID: ChangeLog] = [:]
    /// Where each job's latest snapshot ends (its records before it are deleted).
    var snapshotEnds: [JobID: UInt64] = [:]
    /// The run number of each job id's current run.
    var runs: [JobID: Int] = [:]
    var savepoints: [JobID: String] = [:]
    var submittedAt: [JobID: WallTime] = [:]
    /// Per job, the attempts that may wait to learn where a producer runs: those this term
    /// deployed before one of their producers had a place, and those an earlier term deployed
    /// (this term cannot know what they were told). Only these get UpdatePartitionInfo: an
    /// attempt deployed with its producers' places (in the same batch, say) learns nothing from it.
    var awaitingProducers: [JobID: Set<ExecutionAttemptID>] = [:]
    /// The time of the event being handled.
    var now = MonotonicInstant(nanoseconds: 0)
    var wall = WallTime(millisecondsSince1970: 0)

    public init(epoch: Epoch, leader: MemberID, settings: Settings) {
        self.epoch = epoch
        self.leader = leader
        self.settings = settings
        dispatcher = Dispatcher(mode: settings.mode, options: settings.jobMaster)
    }

    /// The latest completed checkpoint of a job, if it takes checkpoints and has one.
    public func latestCheckpoint(of job: JobID) -> CompletedCheckpoint? { checkpointing[job]?.latestCompleted }

    /// When the job's current run was submitted.
    public func submissionTime(of job: JobID) -> WallTime? { submittedAt[job] }

    /// Requests waiting for a job to end.
    public var awaitingRequests: [RequestID] { awaiting.values.flatMap { $0 }.sorted() }

    // MARK: events

    /// Handles one event at `now` (monotonic) and `wall`; returns what to write and do, in order.
    public mutating func handle(_ event: Event, now: MonotonicInstant, wall: WallTime) -> [Ready] {
        self.now = now
        self.wall = wall
        var run = Run()
        // A job taken over with a long tail of records since its snapshot gets one at once.
        if case .takeOver(let takeover) = event { run.snapshotCandidates.formUnion(takeover.jobs.map(\.record.graph.id)) }
        run.queue = accept(event)[...]
        while let step = run.queue.popFirst() { carryOut(step, into: &run) }
        snapshotDueJobs(into: &run)
        return run.ready
    }

    /// Snapshots of the running jobs with `snapshotEvery` change records or more since their last
    /// one, each in the transaction of the job's last change (the graph now is the one its records
    /// rebuild: every change the JobMaster made was persisted).
    private mutating func snapshotDueJobs(into run: inout Run) {
        for job in run.snapshotCandidates.sorted() {
            guard let master = dispatcher.job(job), !master.state.isTerminal, let log = changeLogs[job],
                log.next - min(log.next, snapshotEnds[job] ?? 0) >= UInt64(settings.snapshotEvery)
            else { continue }
            let write = StoreWrite.snapshot(job, ExecutionGraphSnapshot(master.graph, log: log))
            if let batch = run.lastChangeBatch[job] {
                run.ready[batch].writes.append(write)
            } else if run.ready.isEmpty {
                run.ready.append(Ready(writes: [write], effects: []))
            } else {
                run.ready[0].writes.append(write)
            }
            snapshotEnds[job] = log.next
        }
    }

    /// One thing to do, in order; `carryOut` turns each into writes, effects and further steps.
    enum Step: Sendable {
        case dispatch(Dispatcher.Action)
        case checkpoint(JobID, CheckpointCoordinator.Action)
        case saveJob(JobID)
        case saveJournal
        case write(StoreWrite)
        case effect(Effect)
    }

    /// The output of one event being built: steps still to carry out, and the batches so far.
    struct Run {
        var queue: ArraySlice<Step> = []
        var ready: [Ready] = []
        /// Jobs that may be due a snapshot, and the batch that holds each one's last change.
        var snapshotCandidates: Set<JobID> = []
        var lastChangeBatch: [JobID: Int] = [:]

        /// A write joins the last batch unless one of that batch's effects must be carried out
        /// before the write is durable (file work); messages, replies, timers and notices may
        /// wait for it (they go out later, in the same order), so a submission of thousands of
        /// tasks is one transaction, not one per slot.
        mutating func write(_ write: StoreWrite) {
            if let last = ready.indices.last, ready[last].effects.allSatisfy(\.mayFollowLaterWrites) {
                ready[last].writes.append(write)
            } else {
                ready.append(Ready(writes: [write], effects: []))
            }
        }

        mutating func effect(_ effect: Effect) {
            if ready.isEmpty { ready.append(Ready(writes: [], effects: [])) }
            ready[ready.count - 1].effects.append(effect)
        }
    }

    private mutating func accept(_ event: Event) -> [Step] {
        switch event {
        case .takeOver(let takeover):
            return takeOver(takeover)
        case .registered(let registration):
            return registered(registration)
        case .reported(let report, let executor):
            guard taskExecutors[executor] != nil else { return [] }
            let (job, current) = (report.attempt.job, now)
            return dispatcher.route(job) { master in
                master.taskStateChanged(report.attempt.attempt, to: report.state, failure: report.failure, now: current)
            }.map(Step.dispatch) + checkpointTasksChanged(job)
        case .taskExecutorLost(let id):
            guard taskExecutors.removeValue(forKey: id) != nil else { return [] }
            var steps: [Step] = [.effect(.notice(.taskExecutorLost(id)))]
            steps += resourceSteps(resources.taskExecutorLost(id))
            steps += taskExecutorGone(id)
            return steps
        case .submit(let graph, let savepoint, let request):
            return submit(graph, savepoint: savepoint, request)
        case .cancel(let job, let request):
            do {
                let actions = try dispatcher.cancel(job, now: now)
                return [.effect(.reply(request, .done))] + actions.map(Step.dispatch)
            } catch {
                return [.effect(.reply(request, .refused(error.message)))]
            }
        case .awaitJob(let job, let request):
            guard let master = dispatcher.job(job) else {
                if let ended = history[job] {
                    return [.effect(.reply(request, .outcome(JobOutcome(job: job, state: ended.state, failure: ended.failure))))]
                }
                return [.effect(.reply(request, .refused("no job '\(job)'")))]
            }
            if master.state.isTerminal { return [.effect(.reply(request, .outcome(outcome(master))))] }
            awaiting[job, default: []].append(request)
            return []
        case .endInput(let job, let request):
            guard let master = dispatcher.job(job), !master.state.isTerminal else {
                return [.effect(.reply(request, .refused("no running job '\(job)'")))]
            }
            var steps: [Step] = [.effect(.reply(request, .done)), .effect(.notice(.endingInput(job)))]
            let graph = master.graph
            for jobVertex in graph.jobVertices where jobVertex.inputs.isEmpty {
                for subtask in 0..<jobVertex.parallelism {
                    let vertex = ExecutionVertexID(jobVertex: jobVertex.index, subtask: subtask)
                    let execution = graph.execution(vertex)
                    guard let location = execution.location, !execution.state.isTerminal else { continue }
                    steps.append(.effect(.send(.endInput(job, graph.attemptID(vertex)), to: location.taskExecutor)))
                }
            }
            return steps
        case .triggerSavepoint(let job, let request):
            return savepointRequested(job, request)
        case .timerFired(.job(let job, let timer)):
            let current = now
            return dispatcher.route(job) { $0.timerFired(timer, now: current) }.map(Step.dispatch) + checkpointTasksChanged(job)
        case .timerFired(.checkpoint(let job, let timer)):
            let (tasks, current, wall) = (checkpointTasks(job), now, wall)
            return coordinatorSteps(job) { $0.timerFired(timer, tasks: tasks, wall: wall, now: current) }
        case .timerFired(.reconciliationWindow):
            return reconciliationWindowClosed()
        case .checkpointAcknowledged(let job, let attempt, let checkpoint, let state):
            let (current, wall) = (now, wall)
            return coordinatorSteps(job) { $0.acknowledge(attempt, checkpoint: checkpoint, state: state, wall: wall, now: current) }
        case .checkpointDeclined(let job, let attempt, let checkpoint, let reason):
            return coordinatorSteps(job) { $0.decline(attempt, checkpoint: checkpoint, reason: reason) }
        case .savepointFileWritten(let job, let checkpoint, let failure):
            if let failure { return coordinatorSteps(job) { $0.completionFailed(checkpoint, reason: failure) } }
            let (tasks, current, wall) = (checkpointTasks(job), now, wall)
            return coordinatorSteps(job) { $0.savepointWritten(checkpoint, wall: wall, now: current, tasks: tasks) }
        }
    }

    private mutating func registered(_ registration: Registration) -> [Step] {
        let offer = registration.resources
        let id = offer.id
        taskExecutors[id] = RegisteredTaskExecutor(resources: offer, dataAddress: registration.dataAddress, registeredAt: wall)
        var steps: [Step] = [.effect(.notice(.taskExecutorRegistered(id, slots: offer.defaultSlots, tasks: registration.tasks.count)))]
        let held = dispatcher.jobs.flatMap { $0.allocations(on: id) }
        for job in dispatcher.submissionOrder {
            _ = dispatcher.route(job) { master in
                master.taskExecutorRegistered(id)
                return []
            }
        }
        // Before its slots are offered (which places new attempts on it): what it lost.
        steps += attemptsGone(from: registration)
        steps += resourceSteps(resources.register(offer, adopting: held))
        reconciliation?.registered(id)
        for report in registration.tasks { steps += heldAttempt(report, on: id) }
        // Deployments that waited for this task executor to come back.
        for (job, deployment) in deferredDeployments.removeValue(forKey: id) ?? [] {
            steps.append(.dispatch(.job(job, .deploy(deployment))))
        }
        return steps + reconciliationProgress()
    }

    /// A task executor reports every attempt it holds when it registers: an attempt the jobs
    /// place on it that it does not report is gone (the task executor restarted, or a deployment
    /// was lost with a connection), and fails, so that its job's failover strategy restarts it.
    /// An attempt a takeover's reconciliation still waits for is left to its window.
    private mutating func attemptsGone(from registration: Registration) -> [Step] {
        let id = registration.resources.id
        let reported = Set(registration.tasks.map(\.attempt))
        var steps: [Step] = []
        let current = now
        for job in dispatcher.submissionOrder {
            guard let master = dispatcher.job(job) else { continue }
            let gone = master.liveAttempts.filter { live in
                live.location.taskExecutor == id && !reported.contains(TaskAttempt(job: job, attempt: live.attempt))
                    && !(reconciliation?.awaits(job: job, attempt: live.attempt) ?? false)
            }
            guard !gone.isEmpty else { continue }
            for attempt in gone.map(\.attempt) {
                steps += dispatcher.route(job) { master in
                    master.taskStateChanged(attempt, to: .failed, failure: "task executor \(id) registered again without it", now: current)
                }.map(Step.dispatch)
            }
            steps += checkpointTasksChanged(job)
        }
        return steps
    }

    private mutating func submit(_ graph: JobGraph, savepoint: CompletedCheckpoint?, _ request: RequestID) -> [Step] {
        if let savepoint {
            let problems = savepoint.mismatches(with: graph)
            guard problems.isEmpty else {
                return [
                    .effect(
                        .reply(request, .refused("the job cannot start from savepoint \(savepoint.directory): " + problems.joined(separator: "; "))))
                ]
            }
        }
        let offers = taskExecutors.isEmpty ? nil : taskExecutors.keys.sorted().map { taskExecutors[$0]!.resources.total }
        // A job id runs again once its earlier run ended.
        let earlier = [runs[graph.id], history[graph.id]?.run].compactMap { $0 }.max()
        do {
            var actions = try dispatcher.submit(graph, taskExecutors: offers, now: now)
            // A per-job cluster runs the job it was started for: jobs a session left running in
            // the store are cancelled, saying so.
            var leftovers: [Step] = []
            if settings.mode == .perJob {
                for leftover in dispatcher.jobs where leftover.id != graph.id && !leftover.state.isTerminal {
                    leftovers.append(.effect(.notice(.cancellingLeftover(leftover.id, for: graph.id))))
                    actions += (try? dispatcher.cancel(leftover.id, now: now)) ?? []
                }
            }
            submittedAt[graph.id] = wall
            savepoints[graph.id] = savepoint?.directory
            runs[graph.id] = (earlier ?? 0) + 1
            changeLogs[graph.id] = ChangeLog()
            snapshotEnds[graph.id] = 0
            awaitingProducers[graph.id] = nil
            checkpointing[graph.id] = nil
            let checkpoints = startCheckpointing(graph, savepoint: savepoint)
            return leftovers + [
                .effect(.notice(.jobSubmitted(graph.id, name: graph.name, savepoint: savepoint?.directory))),
                .effect(.removeJobFiles(graph.id, keeping: savepoint?.directory)),
            ] + (earlier == nil ? [] : [.write(.newRun(graph.id))]) + [.saveJob(graph.id), .effect(.reply(request, .submitted(graph.id)))]
                + checkpoints + actions.map(Step.dispatch)
        } catch {
            return [.effect(.reply(request, .refused(error.message)))]
        }
    }

    /// Drops the oldest ended runs beyond the history's retention (count and age), with what the
    /// store kept of a run that was its id's latest while the id does not run.
    mutating func pruneHistory() -> [Step] {
        var steps: [Step] = []
        let oldestKept = wall.millisecondsSince1970 - Int64(settings.historyMaxAge.milliseconds)
        while let oldest = keptRuns.first, keptRuns.count > settings.historyRetain || oldest.endedAt.millisecondsSince1970 < oldestKept {
            keptRuns.removeFirst()
            let latest = history[oldest.id]?.run == oldest.run
            let running = dispatcher.job(oldest.id).map { !$0.state.isTerminal } ?? false
            if latest, !running {
                history[oldest.id] = nil
                if dispatcher.job(oldest.id) != nil { dispatcher.forget(oldest.id) }
            }
            steps.append(.write(.pruneRun(oldest.id, run: oldest.run, records: latest && !running)))
        }
        return steps
    }

    /// Every job's attempts on a task executor that is gone (lost, or not back in the window).
    private mutating func taskExecutorGone(_ id: ResourceID) -> [Step] {
        var steps: [Step] = []
        let current = now
        for job in dispatcher.submissionOrder {
            steps += dispatcher.route(job) { $0.taskExecutorLost(id, now: current) }.map(Step.dispatch)
            steps += checkpointTasksChanged(job)
        }
        return steps
    }

    mutating func resourceSteps(_ actions: [ResourceManager.Action]) -> [Step] {
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

    private func outcome(_ master: JobMaster) -> JobOutcome {
        JobOutcome(job: master.id, state: master.state, failure: master.failureReason)
    }

    // MARK: carrying out

    private mutating func carryOut(_ step: Step, into run: inout Run) {
        switch step {
        case .dispatch(let action):
            run.queue += perform(action, into: &run)
        case .checkpoint(let job, let action):
            run.queue += perform(action, of: job, into: &run)
        case .saveJob(let job):
            guard let master = dispatcher.job(job) else { return }
            run.write(
                .job(
                    JobRecord(
                        graph: master.jobGraph, state: master.state, submittedAt: submittedAt[job] ?? wall, restarts: master.restarts,
                        failure: master.failureReason, savepoint: savepoints[job], restartBudget: master.restartBudget, run: runs[job],
                        perJob: dispatcher.perJobTarget == job ? true : nil)))
        case .saveJournal:
            if let journal { run.write(.journal(journal)) }
        case .write(let write):
            run.write(write)
        case .effect(let effect):
            run.effect(effect)
        }
    }

    private mutating func perform(_ action: Dispatcher.Action, into run: inout Run) -> [Step] {
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
                return deploy(deployment, of: job)
            case .cancelTask(let attempt, let location):
                return [.effect(.send(.cancel(job, attempt), to: location.taskExecutor))]
            case .startTimer(let timer, let after):
                return [.effect(.startTimer(.job(job, timer), after: after))]
            case .persist(let change):
                persist(change, of: job, into: &run)
            case .releasePartitions(let attempt, let location, let results):
                return [.effect(.send(.releasePartitions(job, only: ProducedResults(producer: attempt, results: results)), to: location.taskExecutor))]
            case .restartBudgetChanged:
                // In the transaction of the failure that used it.
                carryOut(.saveJob(job), into: &run)
            case .jobStateChanged(let state, let reason):
                // In the same transaction as the changes made with it (a restart's new attempts
                // and the job RUNNING again), so that no takeover finds one without the other.
                carryOut(.saveJob(job), into: &run)
                return [.effect(.notice(.jobStateChanged(job, state, reason: reason)))]
            }
        case .jobEnded(let job, let state):
            awaitingProducers[job] = nil
            var steps: [Step] = [.effect(.notice(.jobEnded(job, state)))]
            if let master = dispatcher.job(job) {
                let summary = JobSummary(
                    id: job, run: runs[job] ?? 1, name: master.jobGraph.name, state: state, submittedAt: submittedAt[job] ?? wall, endedAt: wall,
                    restarts: master.restarts, failure: master.failureReason,
                    lastCheckpoint: latestCheckpoint(of: job).map { .init(id: $0.id, completedAt: $0.completedAt) })
                history[job] = summary
                run.write(.runEnded(summary))
                keptRuns.append(summary)
            }
            steps += coordinatorSteps(job) { $0.stop(reason: "the job ended \(state)") }
            if let master = dispatcher.job(job) {
                for request in awaiting.removeValue(forKey: job) ?? [] { steps.append(.effect(.reply(request, .outcome(outcome(master))))) }
            }
            for id in taskExecutors.keys.sorted() { steps.append(.effect(.send(.releasePartitions(job, only: nil), to: id))) }
            return steps + pruneHistory()
        case .shutDown(let state):
            return [.effect(.notice(.perJobClusterEnded(state)))]
        }
        return []
    }

    /// A change record of the job's ExecutionGraph, with, for an attempt about to be deployed to
    /// restore from a checkpoint, the audit's record of which checkpoint it restores (in the
    /// same transaction, so it is durable before the deployment goes out).
    private mutating func persist(_ change: ExecutionGraphChange, of job: JobID, into run: inout Run) {
        let sequence = changeLogs[job, default: ChangeLog()].next
        changeLogs[job, default: ChangeLog()].fold(sequence: sequence, epoch: epoch, change)
        run.write(.change(job, sequence: sequence, change))
        run.lastChangeBatch[job] = run.ready.count - 1
        run.snapshotCandidates.insert(job)
        if case .state(let attempt, .deploying, _) = change, let master = dispatcher.job(job),
            let restore = checkpointing[job]?.restoreState(for: attempt.vertex, jobVertex: master.graph.jobVertices[Int(attempt.vertex.jobVertex)].id)
        {
            run.write(.restore(job, checkpoint: restore.checkpoint, attempt: attempt, at: wall))
        }
    }

    private mutating func deploy(_ deployment: JobMaster.Deployment, of job: JobID) -> [Step] {
        let target = deployment.location.taskExecutor
        guard taskExecutors[target] != nil else {
            if let reconciliation, !reconciliation.isDone {
                deferredDeployments[target, default: []].append((job, deployment))
                return []
            }
            // Not registered and not expected any more: it is lost.
            let current = now
            return [.effect(.notice(.deploymentToUnregistered(target, job)))]
                + dispatcher.route(job) { $0.taskExecutorLost(target, now: current) }.map(Step.dispatch) + checkpointTasksChanged(job)
        }
        guard let master = dispatcher.job(job) else { return [] }
        let graph = master.graph
        let vertex = deployment.attempt.vertex
        let jobVertex = graph.jobVertices[Int(vertex.jobVertex)]
        guard let spec = master.jobGraph.vertex(jobVertex.id) else { return [] }
        let inputs = jobVertex.inputs.map { resultIndex in
            let result = graph.results[resultIndex]
            return TaskDeploymentDescriptor.InputGate(
                result: resultIndex, blocking: result.type == .blocking, pointwise: result.isPointwise,
                channels: graph.producers(of: vertex, through: result).map { channel(for: $0, in: graph) })
        }
        let outputs = jobVertex.outputs.map { resultIndex in
            let result = graph.results[resultIndex]
            let edge = master.jobGraph.edges[resultIndex]
            let consumer = master.jobGraph.vertex(edge.target)!
            return OutputSpec(
                result: resultIndex, blocking: result.type == .blocking, pattern: edge.pattern, key: edge.key,
                consumerParallelism: consumer.parallelism, consumerMaxParallelism: consumer.maxParallelism)
        }
        let descriptor = TaskDeploymentDescriptor(
            job: job, attempt: deployment.attempt, allocation: deployment.location.allocation, vertexID: jobVertex.id,
            parallelism: jobVertex.parallelism, maxParallelism: spec.maxParallelism, operators: spec.operators, inputs: inputs,
            outputs: outputs, restore: checkpointing[job]?.restoreState(for: vertex, jobVertex: jobVertex.id))
        var steps: [Step] = [.effect(.send(.deploy(descriptor), to: target))]
        if deployment.attempt.attempt > 0 {
            awaitingProducers[job]?.remove(ExecutionAttemptID(vertex: vertex, attempt: deployment.attempt.attempt - 1))
        }
        if inputs.contains(where: { $0.channels.contains { $0.location == nil } }) {
            awaitingProducers[job, default: []].insert(deployment.attempt)
        } else {
            awaitingProducers[job]?.remove(deployment.attempt)
        }
        // Consumers deployed earlier that did not know where this producer runs: tell them.
        for resultIndex in jobVertex.outputs {
            let result = graph.results[resultIndex]
            for consumer in graph.consumers(of: vertex, through: result) {
                let execution = graph.execution(consumer)
                guard [.deploying, .initializing, .running].contains(execution.state), let location = execution.location,
                    awaitingProducers[job]?.contains(graph.attemptID(consumer)) == true
                else { continue }
                steps.append(
                    .effect(
                        .send(
                            .updatePartition(job, consumer: graph.attemptID(consumer), result: resultIndex, channel: channel(for: vertex, in: graph)),
                            to: location.taskExecutor)))
            }
        }
        return steps
    }

    private func channel(for producer: ExecutionVertexID, in graph: ExecutionGraph) -> InputChannelDescriptor {
        let execution = graph.execution(producer)
        var location: InputChannelDescriptor.Location?
        if let placed = execution.location, execution.state != .created, execution.state != .scheduled,
            let executor = taskExecutors[placed.taskExecutor]
        {
            location = .init(taskExecutor: placed.taskExecutor, dataAddress: executor.dataAddress)
        }
        return InputChannelDescriptor(producerSubtask: Int(producer.subtask), producerAttempt: execution.attempt, location: location)
    }
}
