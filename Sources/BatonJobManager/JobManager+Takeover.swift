public import BatonCheckpointing
public import BatonCore
public import BatonElection
public import BatonExecutionGraph
public import BatonJobGraph
import BatonResourceManager
import BatonJobMaster

/// How a new leader takes over: it rebuilds every job's JobMaster from what the store holds (the
/// JobGraph, the ExecutionGraph replayed from its change records, the checkpoint counter and the
/// retained checkpoints), counts the slots their running attempts hold as taken when their task
/// executors register again, and reconciles what the task executors report with what the graphs
/// expect (`Reconciliation`): adopted attempts keep their attempt number and their process;
/// nothing healthy restarts. The outcome goes to the reconciliation journal.
extension JobManager {
    /// A job as the store holds it at the start of a term.
    public struct RecoveredJob: Sendable {
        public var record: JobRecord
        public var graph: ExecutionGraph
        /// What its change records said (`changeLog.next`: the sequence number of the next one).
        public var changeLog: ChangeLog
        /// Where the snapshot the graph was rebuilt from ends (0: none).
        public var snapshotEnd: UInt64
        public var nextSequence: UInt64 { changeLog.next }
        public var nextCheckpointID: CheckpointID
        public var completed: [CompletedCheckpoint]
        /// The savepoint the job started from, read from its file, when no checkpoint of its own
        /// completed yet (it restores from it).
        public var savepoint: CompletedCheckpoint?
        /// Why the store's records do not rebuild this job, if they do not: it fails.
        public var unreadable: String?

        public init(
            record: JobRecord, graph: ExecutionGraph, changeLog: ChangeLog, snapshotEnd: UInt64 = 0, nextCheckpointID: CheckpointID,
            completed: [CompletedCheckpoint], savepoint: CompletedCheckpoint? = nil, unreadable: String? = nil
        ) {
            self.unreadable = unreadable
            self.record = record
            self.graph = graph
            self.changeLog = changeLog
            self.snapshotEnd = snapshotEnd
            self.nextCheckpointID = nextCheckpointID
            self.completed = completed
            self.savepoint = savepoint
        }
    }

    /// What the store holds at the start of a term.
    public struct Takeover: Sendable {
        /// The jobs that had not ended.
        public var jobs: [RecoveredJob]
        /// Job records that do not decode at all, with why: those runs fail (to the history as
        /// FAILED, their records leave the jobs), every other job goes on.
        public var undecodableJobs: [JobID: String] = [:]
        /// Every ended run the history keeps.
        public var endedJobs: [JobSummary]
        /// When this term began (its term record), nil if unknown.
        public var electedAt: WallTime?
        /// The previous term, as its record says.
        public var previousEpoch: Epoch?
        public var previousTermEndedAt: WallTime?
        public var previousTermEnd: TermEndReason?

        public init(
            jobs: [RecoveredJob], endedJobs: [JobSummary] = [], electedAt: WallTime? = nil, previousEpoch: Epoch? = nil, previousTermEndedAt: WallTime? = nil,
            previousTermEnd: TermEndReason? = nil
        ) {
            self.jobs = jobs
            self.endedJobs = endedJobs
            self.electedAt = electedAt
            self.previousEpoch = previousEpoch
            self.previousTermEndedAt = previousTermEndedAt
            self.previousTermEnd = previousTermEnd
        }
    }

    /// Takes every job of the store over; starts the reconciliation window.
    mutating func takeOver(_ takeover: Takeover) -> [Step] {
        for ended in takeover.endedJobs where ended.run >= history[ended.id]?.run ?? 0 { history[ended.id] = ended }
        keptRuns = takeover.endedJobs.sorted { ($0.endedAt.millisecondsSince1970, $0.id, $0.run) < ($1.endedAt.millisecondsSince1970, $1.id, $1.run) }
        var steps: [Step] = []
        for (id, reason) in takeover.undecodableJobs.sorted(by: { $0.key < $1.key }) {
            let failure = "its record in the store does not decode: \(reason)"
            let summary = JobSummary(
                id: id, run: (history[id]?.run ?? 0) + 1, name: id.rawValue, state: .failed, submittedAt: wall, endedAt: wall, restarts: 0,
                failure: failure, lastCheckpoint: nil)
            history[id] = summary
            keptRuns.append(summary)
            steps += [.effect(.notice(.jobStateChanged(id, .failed, reason: failure))), .write(.runEnded(summary))]
        }
        let loaded = takeover.jobs
        guard !loaded.isEmpty else { return steps + pruneHistory() }
        var expected: [JobID: [(attempt: ExecutionAttemptID, location: TaskLocation)]] = [:]
        var highestAllocation: AllocationID = 0
        for job in loaded {
            let id = job.record.graph.id
            if job.record.state.isTerminal || job.unreadable != nil {
                // A run that ended without leaving the jobs a leader loads (a leader died in
                // between, or an older store) goes to the history now. So does a run the store's
                // records do not rebuild: that one job fails (its tasks that still run are
                // cancelled when their task executors report them), every other job goes on.
                let failure = job.unreadable.map { "its records in the store do not rebuild it: \($0)" } ?? job.record.failure
                let summary = JobSummary(
                    id: id, run: job.record.runNumber, name: job.record.graph.name, state: job.unreadable == nil ? job.record.state : .failed,
                    submittedAt: job.record.submittedAt, endedAt: wall, restarts: job.record.restarts, failure: failure,
                    lastCheckpoint: job.completed.last.map { .init(id: $0.id, completedAt: $0.completedAt) })
                history[id] = summary
                runs[id] = summary.run
                keptRuns.append(summary)
                if job.unreadable != nil { steps.append(.effect(.notice(.jobStateChanged(id, .failed, reason: failure)))) }
                steps.append(.write(.runEnded(summary)))
                continue
            }
            let state = job.record.state
            let master = JobMaster(
                recovering: job.record.graph, graph: job.graph, state: state, failureReason: job.record.failure, restartBudget: job.record.restartBudget)
            if !state.isTerminal { expected[id] = master.liveAttempts.map { ($0.attempt, $0.location) } }
            awaitingProducers[id] = Set(master.liveAttempts.map(\.attempt))
            for vertex in job.graph.allVertices {
                highestAllocation = max(highestAllocation, job.graph.execution(vertex).location?.allocation ?? 0)
            }
            changeLogs[id] = job.changeLog
            snapshotEnds[id] = job.snapshotEnd
            submittedAt[id] = job.record.submittedAt
            savepoints[id] = job.record.savepoint
            runs[id] = job.record.runNumber
            steps += dispatcher.recover(master, asPerJobTarget: job.record.perJob == true, now: now).map(Step.dispatch)
            let savepoint = job.completed.isEmpty && !state.isTerminal ? job.savepoint : nil
            steps += startCheckpointing(
                job.record.graph, savepoint: savepoint, nextID: job.nextCheckpointID, completed: job.completed, ended: state.isTerminal)
        }
        resources.reserveAllocationIDs(through: highestAllocation)
        var known: Set<ResourceID> = []
        for job in loaded where !job.record.state.isTerminal {
            for vertex in job.graph.allVertices { if let location = job.graph.execution(vertex).location { known.insert(location.taskExecutor) } }
        }
        let tracker = Reconciliation(expected: expected, known: known)
        reconciliation = tracker
        journal = ReconciliationRecord(
            fromEpoch: takeover.previousEpoch, toEpoch: epoch, leader: leader, previousTermEndedAt: takeover.previousTermEndedAt,
            previousTermEnd: takeover.previousTermEnd, electedAt: takeover.electedAt ?? wall, loadedAt: wall, jobs: loaded.count, adopted: 0,
            finished: 0, restarted: 0, cancelled: 0, windowClosed: false,
            checkpointsAtTakeover: Dictionary(
                uniqueKeysWithValues: loaded.compactMap { job in
                    job.completed.last.map { (job.record.graph.id.rawValue, ReconciliationRecord.CheckpointMark(id: $0.id, completedAt: $0.completedAt)) }
                }))
        let notice = Notice.takingOver(
            jobs: loaded.count, expectedAttempts: expected.values.map(\.count).reduce(0, +),
            taskExecutors: tracker.expectedTaskExecutors.sorted(), previousEpoch: takeover.previousEpoch)
        return [.effect(.notice(notice)), .effect(.startTimer(.reconciliationWindow, after: settings.reconciliationWindow))] + steps
            + pruneHistory() + reconciliationProgress()
    }

    /// One attempt a registering task executor holds.
    mutating func heldAttempt(_ report: TaskReport, on executor: ResourceID) -> [Step] {
        let (job, attempt, state) = (report.attempt.job, report.attempt.attempt, report.state)
        // An attempt of an ended job is never current: if it still runs, it is cancelled.
        let isCurrent =
            dispatcher.job(job).map { master in
                !master.state.isTerminal && master.graph.contains(attempt.vertex) && master.graph.execution(attempt.vertex).attempt == attempt.attempt
            } ?? false
        let decision: Reconciliation.Decision
        if reconciliation != nil {
            decision = reconciliation!.reported(job: job, attempt: attempt, state: state, isCurrent: isCurrent)
        } else {
            decision = isCurrent ? .reconcile : (state.isTerminal ? .ignore : .cancel)
        }
        switch decision {
        case .reconcile:
            let location = TaskLocation(taskExecutor: executor, allocation: report.allocation)
            let current = now
            return dispatcher.route(job) { master in
                master.reconcile(attempt, reported: state, failure: report.failure, location: location, now: current)
            }.map(Step.dispatch) + checkpointTasksChanged(job)
        case .cancel:
            return [.effect(.notice(.cancellingUnknownAttempt(executor, job, attempt))), .effect(.send(.cancel(job, attempt), to: executor))]
        case .ignore:
            return []
        }
    }

    /// The window closed: task executors that did not come back are lost, attempts nobody
    /// reported failed; each goes to its job's failover strategy.
    mutating func reconciliationWindowClosed() -> [Step] {
        guard reconciliation != nil, !reconciliation!.isDone else { return [] }
        let (lost, unreported) = reconciliation!.closeWindow()
        journal?.windowClosed = true
        var steps: [Step] = []
        let current = now
        for executor in lost {
            deferredDeployments[executor] = nil
            steps.append(.effect(.notice(.taskExecutorNotBack(executor))))
            for job in dispatcher.submissionOrder {
                steps += dispatcher.route(job) { $0.taskExecutorLost(executor, now: current) }.map(Step.dispatch)
                steps += checkpointTasksChanged(job)
            }
        }
        for (job, attempts) in unreported.sorted(by: { $0.key < $1.key }) {
            for attempt in attempts {
                steps += dispatcher.route(job) { master in
                    master.taskStateChanged(attempt, to: .failed, failure: "no task executor reported it within the reconciliation window", now: current)
                }.map(Step.dispatch)
            }
            steps += checkpointTasksChanged(job)
        }
        return steps + reconciliationProgress()
    }

    /// Once every expected attempt is accounted for (or the window closed): the journal entry,
    /// and the completion notice of each job's latest checkpoint again (a sink commit the previous
    /// leader did not get to is made; commits are idempotent).
    mutating func reconciliationProgress() -> [Step] {
        guard let tracker = reconciliation, tracker.isDone, var record = journal, record.reconciledAt == nil else { return [] }
        record.reconciledAt = wall
        record.reconcileMillis = Double(wall.millis(since: record.electedAt))
        record.adopted = tracker.summary.adopted
        record.finished = tracker.summary.finished
        record.restarted = tracker.summary.restarted
        record.cancelled = tracker.summary.cancelled
        journal = record
        var steps: [Step] = [.effect(.notice(.reconciled(record))), .saveJournal]
        if settings.takeover == .restartAll {
            let current = now
            for job in dispatcher.submissionOrder {
                steps += dispatcher.route(job) { $0.restartAll(reason: "--takeover restart-all: restart on master failover", now: current) }
                    .map(Step.dispatch)
            }
        }
        for job in checkpointing.keys.sorted() {
            if let latest = checkpointing[job]!.latestCompleted { steps.append(.checkpoint(job, .notifyComplete(latest.id))) }
            steps += coordinatorSteps(job) { $0.triggerSoon() }
        }
        return steps
    }

    /// The first checkpoint completed after reconciliation goes into the journal.
    mutating func firstCheckpointAfterFailover(_ checkpoint: CompletedCheckpoint) -> [Step] {
        guard var record = journal, record.reconciledAt != nil, record.nextCheckpointAt == nil else { return [] }
        record.nextCheckpointAt = checkpoint.completedAt
        record.nextCheckpointMillis = Double(checkpoint.completedAt.millis(since: record.electedAt))
        journal = record
        return [.saveJournal]
    }
}
