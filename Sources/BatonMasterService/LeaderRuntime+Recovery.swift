import BatonStoreRecords
import BatonCheckpointing
import BatonConfig
import BatonCore
import BatonElection
import BatonExecutionGraph
import BatonHAStore
import BatonJobGraph
import BatonJobMaster
import BatonResourceManager
import BatonWire
import BatonWireMapping
import Foundation
import Logging

/// How a new leader takes over (the README's "Master failover"): it rebuilds every job's JobMaster from the
/// store (the JobGraph, the ExecutionGraph replayed from its change records, the checkpoint
/// counter and the retained checkpoints), counts the slots their running attempts hold as taken
/// when their task executors register again, and reconciles what the task executors report with
/// what the graphs expect (`Reconciliation`): adopted attempts keep their attempt number and
/// their process; nothing healthy restarts. The outcome goes to the reconciliation journal.
extension LeaderRuntime {
    struct RecoveredJob: Sendable {
        var record: JobRecord
        var graph: ExecutionGraph
        var nextSequence: UInt64
        var nextCheckpointID: UInt64
        var completed: [CompletedCheckpoint]
    }

    /// Loads every job of the store and takes it over; starts the reconciliation window.
    func recover() async -> [Step] {
        let loaded: [RecoveredJob]
        let terms: (current: TermRecord?, previous: TermRecord?)
        do {
            let epoch = self.epoch
            (loaded, terms) = try await store.read { reader in
                let current = try reader.value(TermRecord.self, .terms, StoreKey.uint64(epoch.rawValue))
                let previous = try current?.previousEpoch.flatMap { try reader.value(TermRecord.self, .terms, StoreKey.uint64($0.rawValue)) }
                return (try Self.loadJobs(reader), (current, previous))
            }
        } catch {
            // Leading without the jobs would cancel every task they run: let another master try.
            logger.critical("the jobs in the store cannot be read: this master ends", metadata: [LogKey.error: "\(error)"])
            _ = endTerm(LeaderRuntimeFailure(message: "the jobs in the store cannot be read", underlying: error))
            return []
        }
        guard !loaded.isEmpty else { return [] }
        var steps: [Step] = []
        var expected: [JobID: [(attempt: ExecutionAttemptID, location: TaskLocation)]] = [:]
        var highestAllocation: UInt64 = 0
        for job in loaded {
            let id = job.record.graph.id
            let state = job.record.state
            let master = JobMaster(recovering: job.record.graph, graph: job.graph, state: state, failureReason: job.record.failure)
            if !state.isTerminal { expected[id] = master.liveAttempts.map { ($0.attempt, $0.location) } }
            for vertex in job.graph.allVertices {
                highestAllocation = max(highestAllocation, job.graph.execution(vertex).location?.allocation ?? 0)
            }
            sequences[id] = job.nextSequence
            submittedAt[id] = job.record.submittedAt
            savepoints[id] = job.record.savepoint
            steps += dispatcher.recover(master, now: now).map(Step.dispatch)
            let savepoint = job.completed.isEmpty && !state.isTerminal ? job.record.savepoint.flatMap { try? SavepointFile.read($0) } : nil
            steps += startCheckpointing(
                job.record.graph, savepoint: savepoint, nextID: job.nextCheckpointID, completed: job.completed, ended: state.isTerminal)
        }
        resources.reserveAllocationIDs(through: highestAllocation)
        var known: Set<Identifier> = []
        for job in loaded where !job.record.state.isTerminal {
            for vertex in job.graph.allVertices { if let location = job.graph.execution(vertex).location { known.insert(location.taskExecutor) } }
        }
        let tracker = Reconciliation(expected: expected, known: known)
        reconciliation = tracker
        journal = ReconciliationRecord(
            fromEpoch: terms.previous?.epoch, toEpoch: epoch, leader: identity.member.rawValue,
            previousTermEndedAt: terms.previous?.endedAt, previousTermEnd: terms.previous?.endReason.map { "\($0)" },
            electedAt: terms.current?.startedAt ?? time.wallNow(), loadedAt: time.wallNow(), jobs: loaded.count, adopted: 0, finished: 0,
            restarted: 0, cancelled: 0, windowClosed: false,
            checkpointsAtTakeover: Dictionary(
                uniqueKeysWithValues: loaded.compactMap { job in
                    job.completed.last.map { (job.record.graph.id.rawValue, ReconciliationRecord.CheckpointMark(id: $0.id, completedAt: $0.completedAt)) }
                }))
        logger.info(
            "taking over the jobs of the previous leader",
            metadata: [
                "baton.jobs": "\(loaded.count)", "baton.expected": "\(expected.values.map(\.count).reduce(0, +))",
                "baton.taskExecutors": "\(tracker.expectedTaskExecutors.sorted().map(\.rawValue).joined(separator: ","))",
                "baton.previousEpoch": "\(terms.previous?.epoch.rawValue ?? 0)",
            ])
        let continuation = self.continuation
        let window = configuration.reconciliationWindow
        Task {
            try? await Task.sleep(for: window)
            continuation.yield(.reconciliationWindowClosed)
        }
        return steps + reconciliationProgress()
    }

    /// Every job of the store, with its graph replayed from the change records.
    static func loadJobs(_ reader: StoreReader) throws -> [RecoveredJob] {
        var jobs: [RecoveredJob] = []
        for record in try reader.values(JobRecord.self, .jobs) {
            let id = record.graph.id
            var graph = ExecutionGraph(jobGraph: record.graph)
            var next: UInt64 = 0
            for record in try ChangeRecord.all(of: id, in: reader) {
                do {
                    try graph.apply(record.change)
                } catch {
                    throw HAStoreError(.invalidValue, path: reader.path, "change \(record.sequence) of job \(id) does not apply: \(error)")
                }
                next = record.sequence + 1
            }
            let checkpoints = try CheckpointRecords.read(reader, job: id)
            jobs.append(
                RecoveredJob(record: record, graph: graph, nextSequence: next, nextCheckpointID: checkpoints.nextID, completed: checkpoints.completed))
        }
        return jobs
    }

    /// One attempt a registering task executor holds.
    func registrationSteps(_ report: WireTaskReport, from executor: Identifier) -> [Step] {
        guard let job = Identifier(rawValue: report.attempt.job) else { return [] }
        let attempt = report.attempt.executionAttempt
        let state = ExecutionState(wire: report.state)
        let isCurrent = dispatcher.job(job).map { master in
            master.graph.contains(attempt.vertex) && master.graph.execution(attempt.vertex).attempt == attempt.attempt
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
                master.reconcile(attempt, reported: state, failure: report.failure.isEmpty ? nil : report.failure, location: location, now: current)
            }.map(Step.dispatch) + checkpointTasksChanged(job)
        case .cancel:
            logger.notice(
                "cancelling an attempt no job expects", metadata: [LogKey.taskExecutor: "\(executor)", LogKey.job: "\(job)", "baton.attempt": "\(attempt)"])
            return [.cancelUnknown(executor, report.attempt)]
        case .ignore:
            return []
        }
    }

    /// The window closed: task executors that did not come back are lost, attempts nobody
    /// reported failed; each goes to its job's failover strategy.
    func reconciliationWindowClosed() -> [Step] {
        guard reconciliation != nil, !reconciliation!.isDone else { return [] }
        let (lost, unreported) = reconciliation!.closeWindow()
        journal?.windowClosed = true
        var steps: [Step] = []
        let current = now
        for executor in lost {
            deferredDeployments[executor] = nil
            logger.notice("a task executor did not come back within the reconciliation window", metadata: [LogKey.taskExecutor: "\(executor)"])
            for job in dispatcher.submissionOrder {
                steps += dispatcher.route(job) { $0.taskExecutorLost(executor, now: current) }.map(Step.dispatch)
                steps += checkpointTasksChanged(job)
            }
        }
        for (job, attempts) in unreported.sorted(by: { $0.key < $1.key }) {
            for attempt in attempts {
                steps += dispatcher.route(job) { master in
                    master.taskStateChanged(
                        attempt, to: .failed, failure: "no task executor reported it within the reconciliation window", now: current)
                }.map(Step.dispatch)
            }
            steps += checkpointTasksChanged(job)
        }
        return steps + reconciliationProgress()
    }

    /// Once every expected attempt is accounted for (or the window closed): the journal entry,
    /// and the completion notice of each job's latest checkpoint again (a sink commit the previous
    /// leader did not get to is made; commits are idempotent).
    func reconciliationProgress() -> [Step] {
        guard let tracker = reconciliation, tracker.isDone, var record = journal, record.reconciledAt == nil else { return [] }
        let done = time.wallNow()
        record.reconciledAt = done
        record.reconcileMillis = Double(done.millis(since: record.electedAt))
        record.adopted = tracker.summary.adopted
        record.finished = tracker.summary.finished
        record.restarted = tracker.summary.restarted
        record.cancelled = tracker.summary.cancelled
        journal = record
        logger.info(
            "reconciliation done",
            metadata: [
                "baton.previousEpoch": "\(record.fromEpoch ?? .none)", "baton.millis": "\(record.reconcileMillis ?? 0)",
                "baton.adopted": "\(record.adopted)", "baton.finished": "\(record.finished)", "baton.restarted": "\(record.restarted)",
                "baton.cancelled": "\(record.cancelled)", "baton.windowClosed": "\(record.windowClosed)",
            ])
        var steps: [Step] = [.saveJournal]
        if takeover == .restartAll {
            let current = now
            for job in dispatcher.submissionOrder {
                steps += dispatcher.route(job) { $0.restartAll(reason: "--takeover restart-all: restart on master failover", now: current) }.map(Step.dispatch)
            }
        }
        for job in checkpointing.keys.sorted() {
            if let latest = checkpointing[job]!.latestCompleted { steps.append(.checkpoint(job, .notifyComplete(latest.id))) }
            steps += checkpointing[job]!.triggerSoon().map { .checkpoint(job, $0) }
        }
        return steps
    }

    /// The first checkpoint completed after reconciliation goes into the journal.
    func firstCheckpointAfterFailover(_ checkpoint: CompletedCheckpoint) -> [Step] {
        guard var record = journal, record.reconciledAt != nil, record.nextCheckpointAt == nil else { return [] }
        record.nextCheckpointAt = checkpoint.completedAt
        record.nextCheckpointMillis = Double(checkpoint.completedAt.millis(since: record.electedAt))
        journal = record
        return [.saveJournal]
    }

    func saveJournal() async {
        guard let record = journal else { return }
        await write { try $0.put(.reconciliations, ReconciliationRecord.key(epoch: record.toEpoch), record) }
    }
}
