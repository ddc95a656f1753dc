public import BatonAudit
public import BatonCheckpointing
public import BatonCore
public import BatonElection
public import BatonExecutionGraph
public import BatonJobGraph
public import BatonJobManager
import BatonStoreRecords

/// The HA store of a simulated cluster, in memory: the leadership record and the term journal
/// (changed by the real `LeadershipRules`), and what leaders write (`JobManager.StoreWrite`s,
/// fenced by the real `LeadershipRules.checkFence`). A write is atomic and, once accepted, durable.
/// It gives a new leader its `Takeover` and the audit its `AuditHistory`, as a real store does.
public struct SimulatedStore: Sendable {
    public private(set) var leadership: LeadershipRecord?
    public private(set) var terms: [Epoch: TermRecord] = [:]
    private var jobs: [JobID: JobRecord] = [:]
    private var jobOrder: [JobID] = []
    private var changes: [JobID: [ChangeRecord]] = [:]
    /// Each job's latest snapshot, encoded as the store holds it.
    private var snapshots: [JobID: [UInt8]] = [:]
    private var counters: [JobID: CheckpointID] = [:]
    private var retained: [JobID: [CheckpointID: CompletedCheckpoint]] = [:]
    private var histories: [JobID: CheckpointHistory] = [:]
    private var journal: [Epoch: ReconciliationRecord] = [:]
    private var runHistory: [JobID: [JobSummary]] = [:]
    private var historyOrder: [JobID] = []
    /// Fenced writes refused (a stale leader's), and accepted.
    public private(set) var refusedWrites = 0
    public private(set) var acceptedWrites = 0
    /// Change records accepted, ever (compaction does not lower it).
    public private(set) var changeRecordsWritten = 0
    /// Every accepted transaction with the epoch that wrote it, in order, when kept (to write the
    /// same history into a real store).
    public var keepsAcceptedWrites = false
    public private(set) var acceptedTransactions: [(epoch: Epoch, writes: [JobManager.StoreWrite])] = []

    /// Hands over the accepted transactions kept so far, and forgets them.
    public mutating func takeAcceptedTransactions() -> [(epoch: Epoch, writes: [JobManager.StoreWrite])] {
        defer { acceptedTransactions = [] }
        return acceptedTransactions
    }

    public init() {}

    // MARK: leadership

    public mutating func campaign(
        by identity: LeaderIdentity, expecting expectation: CampaignExpectation, leaseMillis: Int64, now: WallTime
    ) -> LeadershipRules.CampaignOutcome {
        let outcome = LeadershipRules.campaign(
            by: identity, expecting: expectation, current: leadership, openTerm: leadership.flatMap { terms[$0.epoch] }, leaseMillis: leaseMillis,
            now: now)
        if case .won(let victory) = outcome {
            leadership = victory.record
            if let closed = victory.closedTerm { terms[closed.epoch] = closed }
            terms[victory.openedTerm.epoch] = victory.openedTerm
        }
        return outcome
    }

    mutating func renew(epoch: Epoch, now: WallTime) -> Result<LeadershipRecord, FencedWrite> {
        do {
            let renewed = try LeadershipRules.renew(epoch: epoch, current: leadership, now: now)
            leadership = renewed
            return .success(renewed)
        } catch {
            return .failure(error)
        }
    }

    mutating func relinquish(epoch: Epoch, reason: TermEndReason, now: WallTime) -> Bool {
        guard let (vacant, closed) = try? LeadershipRules.relinquish(epoch: epoch, reason: reason, current: leadership, openTerm: terms[epoch], now: now)
        else { return false }
        leadership = vacant
        if let closed { terms[closed.epoch] = closed }
        return true
    }

    // MARK: what leaders write

    /// Applies a leader's writes in one transaction fenced by `epoch`; false (nothing written) when
    /// `epoch` is not the current, held term.
    public mutating func write(_ writes: [JobManager.StoreWrite], fencedBy epoch: Epoch) -> Bool {
        guard (try? LeadershipRules.checkFence(epoch: epoch, current: leadership)) != nil else {
            refusedWrites += 1
            return false
        }
        acceptedWrites += 1
        if keepsAcceptedWrites { acceptedTransactions.append((epoch, writes)) }
        for write in writes {
            switch write {
            case .job(let record):
                let id = record.graph.id
                if jobs.updateValue(record, forKey: id) == nil { jobOrder.append(id) }
            case .change(let job, let sequence, let change):
                changes[job, default: []].append(ChangeRecord(sequence: sequence, epoch: epoch, change: change))
                changeRecordsWritten += 1
            case .snapshot(let job, let snapshot):
                // As a real store: the snapshot read back from bytes, its log from the records.
                guard let (kept, replaced) = try? stored(job).compacted(by: snapshot) else { continue }
                snapshots[job] = kept.encoded()
                let gone = Set(replaced)
                changes[job]?.removeAll { gone.contains($0.sequence) }
            case .restore(let job, let checkpoint, let attempt, let time):
                histories[job, default: .init()].restores.append(.init(checkpoint: checkpoint, at: time, epoch: epoch, attempt: attempt))
            case .checkpointCounter(let job, let next):
                counters[job] = next
            case .checkpointCompleted(let checkpoint, let subsumed, let committedAt):
                retained[checkpoint.job, default: [:]][checkpoint.id] = checkpoint
                for id in subsumed { retained[checkpoint.job]?[id] = nil }
                histories[checkpoint.job, default: .init()].completed.append(.init(id: checkpoint.id, committedAt: committedAt, epoch: epoch))
            case .journal(let record):
                journal[record.toEpoch] = record
            case .runEnded(let summary):
                if runHistory[summary.id] == nil { historyOrder.append(summary.id) }
                runHistory[summary.id, default: []].append(summary)
                jobs[summary.id] = nil
                jobOrder.removeAll { $0 == summary.id }
            case .newRun(let job):
                forgetRecords(of: job)
            case .pruneRun(let job, let run, let records):
                runHistory[job]?.removeAll { $0.run == run }
                if runHistory[job]?.isEmpty == true {
                    runHistory[job] = nil
                    historyOrder.removeAll { $0 == job }
                }
                if records { forgetRecords(of: job) }
            }
        }
        return true
    }

    /// A store that does not fence (a checker test's fault): the write lands whatever the epoch.
    mutating func writeUnfenced(_ writes: [JobManager.StoreWrite], epoch: Epoch) -> Bool {
        let current = leadership
        leadership = current.map { record in
            var forged = record
            forged.epoch = epoch
            return forged
        }
        let accepted = write(writes, fencedBy: epoch)
        leadership = current
        return accepted
    }

    /// Loses a completed checkpoint's metadata (a checker test's fault: a write that was lost).
    mutating func forget(_ checkpoint: CompletedCheckpoint) { retained[checkpoint.job]?[checkpoint.id] = nil }

    /// The ExecutionGraph the store's snapshot and change records of a job rebuild (whether the
    /// job runs or its run ended), with their log, or why they do not.
    public func rebuild(_ jobGraph: JobGraph) -> Result<(ExecutionGraph, ChangeLog), SimulationFailure> {
        do {
            return .success(try stored(jobGraph.id).rebuild(jobGraph))
        } catch {
            return .failure(SimulationFailure("job \(jobGraph.id): \(error)"))
        }
    }

    /// A job's snapshot (decoded from its bytes, as a real store's) and the records after it.
    private func stored(_ job: JobID) throws -> StoredChanges {
        StoredChanges(snapshot: try snapshots[job].map { try ExecutionGraphSnapshot(decoding: $0) }, tail: changes[job] ?? [])
    }

    /// How many change records of a job the store holds (those after its snapshot).
    public func changeRecordCount(of job: JobID) -> Int { changes[job]?.count ?? 0 }

    /// The record of a job that has not ended.
    public func latestJobRecord(_ id: JobID) -> JobRecord? { jobs[id] }

    public func hasJob(_ id: JobID) -> Bool { jobs[id] != nil || runHistory[id] != nil }

    private mutating func forgetRecords(of job: JobID) {
        changes[job] = nil
        snapshots[job] = nil
        counters[job] = nil
        retained[job] = nil
        histories[job] = nil
    }

    /// What a leader of `epoch` takes over: every job with its graph replayed from its change
    /// records (which must apply: a record that does not is returned as the problem).
    public func takeover(for epoch: Epoch) -> Result<JobManager.Takeover, SimulationFailure> {
        var recovered: [JobManager.RecoveredJob] = []
        for id in jobOrder {
            let record = jobs[id]!
            let graph: ExecutionGraph
            let log: ChangeLog
            switch rebuild(record.graph) {
            case .success(let rebuilt): (graph, log) = rebuilt
            case .failure(let failure): return .failure(failure)
            }
            let completed = (retained[id] ?? [:]).values.sorted { $0.id < $1.id }
            let snapshotEnd = (try? stored(id).snapshot?.log.next) ?? 0
            recovered.append(
                JobManager.RecoveredJob(
                    record: record, graph: graph, changeLog: log, snapshotEnd: snapshotEnd, nextCheckpointID: counters[id] ?? 1, completed: completed))
        }
        let current = terms[epoch]
        let previous = current?.previousEpoch.flatMap { terms[$0] }
        return .success(
            JobManager.Takeover(
                jobs: recovered, endedJobs: historyOrder.flatMap { runHistory[$0] ?? [] }, electedAt: current?.startedAt, previousEpoch: previous?.epoch, previousTermEndedAt: previous?.endedAt,
                previousTermEnd: previous?.endReason))
    }

    /// The store's contents as `baton audit` reads them.
    public var auditHistory: AuditHistory {
        AuditHistory(
            leadership: leadership, terms: terms.keys.sorted().map { terms[$0]! }, failovers: journal.keys.sorted().map { journal[$0]! },
            jobs: (jobOrder + historyOrder.filter { !jobOrder.contains($0) && changes[$0] != nil }).map { id in
                AuditHistory.Job(
                    id: id, compacted: (try? stored(id).snapshot)??.log, changes: changes[id] ?? [], nextCheckpointID: counters[id] ?? 1,
                    retained: (retained[id] ?? [:]).values.sorted { $0.id < $1.id }, history: histories[id] ?? .init())
            })
    }

    /// The latest completed checkpoint of a job the store retains.
    public func latestCheckpoint(of job: JobID) -> CompletedCheckpoint? { retained[job]?.values.max { $0.id < $1.id } }
}

/// A simulation that cannot go on (the store's records do not rebuild a job).
public struct SimulationFailure: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
