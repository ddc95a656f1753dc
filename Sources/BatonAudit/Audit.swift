public import BatonCheckpointing
public import BatonCore
public import BatonElection
public import BatonExecutionGraph
public import BatonHAStore
public import BatonJobGraph
public import BatonJobManager
public import BatonStoreRecords
public import BatonOperators

/// Everything the audit reads from a store: the leadership record and the term journal, the
/// reconciliation journal, and per job its change records and checkpoints.
public struct AuditHistory: Sendable {
    public struct Job: Sendable {
        public var id: JobID
        /// What the job's snapshot kept of the change records it replaced (nil: no snapshot).
        public var compacted: ChangeLog?
        /// The change records after the snapshot (all of them without one).
        public var changes: [ChangeRecord]
        public var nextCheckpointID: CheckpointID
        public var retained: [CompletedCheckpoint]
        /// Every checkpoint that completed and every restore, append-only.
        public var history: CheckpointHistory
        public init(
            id: JobID, compacted: ChangeLog? = nil, changes: [ChangeRecord], nextCheckpointID: CheckpointID, retained: [CompletedCheckpoint],
            history: CheckpointHistory = .init()
        ) {
            self.id = id
            self.compacted = compacted
            self.changes = changes
            self.nextCheckpointID = nextCheckpointID
            self.retained = retained
            self.history = history
        }
    }

    public var leadership: LeadershipRecord?
    public var terms: [TermRecord]
    public var failovers: [ReconciliationRecord]
    public var jobs: [Job]

    public init(leadership: LeadershipRecord?, terms: [TermRecord], failovers: [ReconciliationRecord], jobs: [Job]) {
        self.leadership = leadership
        self.terms = terms
        self.failovers = failovers
        self.jobs = jobs
    }

    /// Reads the history in one read transaction (the store is never written).
    public static func read(_ store: HAStore) throws -> AuditHistory {
        try store.readBlocking { try read($0, jobs: true) }
    }

    /// The history in `reader`'s transaction; the jobs' records only with `jobs`.
    public static func read(_ reader: StoreReader, jobs readJobs: Bool) throws -> AuditHistory {
            let leadership = try reader.leadershipRecord()
            let terms = try reader.terms()
            let failovers = try reader.values(ReconciliationRecord.self, .reconciliations)
            guard readJobs else { return AuditHistory(leadership: leadership, terms: terms, failovers: failovers, jobs: []) }
            // The jobs that run, then those whose runs ended (their records stay until they run again).
            var ids = try reader.values(JobRecord.self, .jobs).map(\.graph.id)
            for ended in try JobSummary.latestRuns(reader) where !ids.contains(ended.id) { ids.append(ended.id) }
            let jobs = try ids.map { id in
                let checkpoints = try CheckpointRecords.read(reader, job: id)
                let stored = try StoredChanges.read(of: id, in: reader)
                return Job(
                    id: id, compacted: stored.snapshot?.log, changes: stored.tail, nextCheckpointID: checkpoints.nextID,
                    retained: checkpoints.completed, history: try CheckpointRecords.readHistory(reader, job: id))
            }
            return AuditHistory(leadership: leadership, terms: terms, failovers: failovers, jobs: jobs)
    }
}

/// What `baton audit` prints (the README's `baton audit`, docs/checks.md): every term, every failover with its timeline
/// and counts, checkpoint continuity per job, and the violations of the invariants found.
public struct AuditReport: Codable, Sendable, Hashable {
    public struct Term: Codable, Sendable, Hashable {
        public var epoch: UInt64
        public var holder: String
        public var pid: Int32
        public var startedAt: String
        public var endedAt: String?
        public var endReason: String?
        public var endedBy: String?
    }

    public struct Failover: Codable, Sendable, Hashable {
        public var fromEpoch: UInt64?
        public var toEpoch: UInt64
        public var leader: String
        public var termEndedAt: String?
        public var electedAt: String
        public var reconciledAt: String?
        public var nextCheckpointAt: String?
        /// From the old leader's last renewal to the new term.
        public var detectMillis: Double?
        /// From the new term to reconciliation done, and to the next completed checkpoint.
        public var reconcileMillis: Double?
        public var nextCheckpointMillis: Double?
        public var adopted: Int
        public var finished: Int
        public var restarted: Int
        public var cancelled: Int
        public var windowClosed: Bool
    }

    public struct JobCheckpoints: Codable, Sendable, Hashable {
        public var job: String
        public var nextID: CheckpointID
        public var retained: [CheckpointID]
        public var restarts: Int
    }

    public struct Violation: Codable, Sendable, Hashable, CustomStringConvertible {
        /// The store: empty-history, overlapping-terms, epoch-not-increasing, stale-write,
        /// restart-by-master-failover, missing-checkpoint, retained-not-latest,
        /// restore-not-latest, reused-checkpoint-id. A sink's output (`OutputAudit`):
        /// no-output, missing-output, duplicate-output, unexpected-output. Chaos adds no-leader,
        /// reconciliation-timeout, job-not-running, job-not-finished, restart-count-unknown,
        /// no-task-failover, fault-not-injected, output-unchecked.
        public var kind: String
        public var message: String
        public var description: String { "\(kind): \(message)" }
        public init(kind: String, message: String) {
            self.kind = kind
            self.message = message
        }
    }

    public var terms: [Term]
    public var failovers: [Failover]
    public var checkpoints: [JobCheckpoints]
    /// A sink's committed output against the model of its job (`--sink`/`--job`), when checked.
    public var outputs: [OutputCheck] = []
    public var violations: [Violation]
}

/// The recovery audit: invariants I1 to I4 checked over a store's history.
public enum Audit {
    /// Clocks of one machine: a term may be recorded as ending this long after its successor began.
    static let clockTolerance: Int64 = 50

    /// The invariant each store-history check guards (docs/checks.md).
    public static let invariants: [String: String] = [
        "empty-history": "-", "overlapping-terms": "I1", "epoch-not-increasing": "I1", "stale-write": "I1",
        "restart-by-master-failover": "I2", "missing-checkpoint": "I3", "retained-not-latest": "I3", "restore-not-latest": "I3",
        "reused-checkpoint-id": "I3",
    ]

    /// - Parameters:
    ///   - retain: `checkpoints.retain` of the config (nil: the retained set is only checked to
    ///     hold the latest completed checkpoint).
    public static func check(_ history: AuditHistory, since: Epoch? = nil, retain: Int? = nil) -> AuditReport {
        var violations: [AuditReport.Violation] = []
        func flag(_ kind: String, _ message: String) { violations.append(.init(kind: kind, message: message)) }
        let terms = history.terms.sorted { $0.epoch < $1.epoch }
        if terms.isEmpty {
            flag("empty-history", "the store records no leadership term: there is nothing to audit")
        }
        // What each term's holder itself did last: its last renewal, and the checkpoints it
        // committed and the restores it decided (each stamped by the holder's own clock).
        var lastAct: [Epoch: (at: WallTime, what: String)] = [:]
        func acted(_ epoch: Epoch, _ at: WallTime, _ what: String) {
            if let known = lastAct[epoch], known.at >= at { return }
            lastAct[epoch] = (at, what)
        }
        for term in terms { if let renewed = term.lastRenewedAt { acted(term.epoch, renewed, "renewed its lease") } }
        for job in history.jobs {
            for entry in job.history.completed { acted(entry.epoch, entry.committedAt, "committed checkpoint \(entry.id) of job \(job.id)") }
            for restore in job.history.restores { acted(restore.epoch, restore.at, "restored task \(restore.attempt) of job \(job.id)") }
        }

        // I1: one leader per epoch, epochs strictly increasing, terms do not overlap.
        for (previous, next) in zip(terms, terms.dropFirst()) {
            if next.epoch <= previous.epoch || (next.previousEpoch.map { $0 >= next.epoch } ?? false) {
                flag("epoch-not-increasing", "term \(next.epoch) follows term \(next.previousEpoch.map { "\($0)" } ?? "none")")
            }
            if next.startedAt < previous.startedAt {
                flag("epoch-not-increasing", "term \(next.epoch) began at \(next.startedAt), before term \(previous.epoch) at \(previous.startedAt)")
            }
            guard let ended = previous.endedAt else {
                flag("overlapping-terms", "term \(previous.epoch) (\(previous.holder.member)) never ended, yet term \(next.epoch) (\(next.holder.member)) began")
                continue
            }
            if ended.millis(since: next.startedAt) > clockTolerance {
                flag("overlapping-terms", "term \(previous.epoch) ended at \(ended), after term \(next.epoch) began at \(next.startedAt)")
            }
        }
        for (previous, next) in zip(terms, terms.dropFirst()) {
            guard let last = lastAct[previous.epoch], last.at.millis(since: next.startedAt) > clockTolerance else { continue }
            flag(
                "overlapping-terms",
                "the leader of term \(previous.epoch) (\(previous.holder.member)) \(last.what) at \(last.at), after term \(next.epoch) "
                    + "(\(next.holder.member)) began at \(next.startedAt)")
        }
        if let leadership = history.leadership, let last = terms.last, leadership.epoch < last.epoch {
            flag("epoch-not-increasing", "the leadership record holds epoch \(leadership.epoch), the journal already has term \(last.epoch)")
        }

        var checkpoints: [AuditReport.JobCheckpoints] = []
        for job in history.jobs.sorted(by: { $0.id < $1.id }) {
            // I1 in the store: no write of an older epoch after a newer one's. I2: a new attempt
            // only after a task of the job failed (or a finished task's result was lost and it is
            // produced again) while the replaced attempt lived. Over the records after the job's
            // snapshot, from what the snapshot kept of those it replaced.
            var log = job.compacted ?? ChangeLog()
            var reported = false
            var flagged: Set<Epoch> = []
            // What the records the snapshot replaced showed, then what the records after it show.
            var found = log.findings
            for record in job.changes {
                found += log.fold(sequence: record.sequence, epoch: record.epoch, record.change).map {
                    ChangeLog.RecordedFinding(sequence: record.sequence, epoch: record.epoch, finding: $0)
                }
            }
            for recorded in found {
                let (sequence, epoch) = (recorded.sequence, recorded.epoch)
                switch recorded.finding {
                case .staleWrite(let highest) where !reported:
                    flag("stale-write", "job \(job.id): change \(sequence) was written at epoch \(epoch) after a change of epoch \(highest)")
                    reported = true
                case .restartWithoutFailure(let vertex) where !flagged.contains(epoch) && epoch >= (since ?? .none):
                    flag(
                        "restart-by-master-failover",
                        "job \(job.id): task \(vertex) was restarted at epoch \(epoch) with no task failure since its attempt began")
                    flagged.insert(epoch)
                default:
                    break
                }
            }
            let restarts = Int(log.resets)
            // I3: checkpoint ids strictly increase and none that completed is lost.
            let ids = job.retained.map(\.id)
            if let last = ids.last, job.nextCheckpointID <= last {
                flag("reused-checkpoint-id", "job \(job.id): the counter is at \(job.nextCheckpointID), checkpoint \(last) already completed")
            }
            var latest: (id: CheckpointID, completedAt: WallTime, epoch: UInt64)?
            var seen: [CheckpointID: WallTime] = Dictionary(uniqueKeysWithValues: job.retained.map { ($0.id, $0.completedAt) })
            for failover in history.failovers.sorted(by: { $0.toEpoch < $1.toEpoch }) {
                guard let mark = failover.checkpointsAtTakeover?[job.id.rawValue] else {
                    if let latest {
                        flag("missing-checkpoint", "job \(job.id): the leader of epoch \(failover.toEpoch) found no checkpoint; epoch \(latest.epoch) had \(latest.id)")
                    }
                    continue
                }
                if let known = seen[mark.id], known != mark.completedAt {
                    flag("reused-checkpoint-id", "job \(job.id): checkpoint \(mark.id) completed at \(known) and again at \(mark.completedAt)")
                }
                seen[mark.id] = mark.completedAt
                if let latest, mark.id < latest.id {
                    flag("missing-checkpoint", "job \(job.id): the leader of epoch \(failover.toEpoch) found checkpoint \(mark.id); epoch \(latest.epoch) had \(latest.id)")
                }
                latest = (mark.id, mark.completedAt, failover.toEpoch.rawValue)
            }
            if let latest, (ids.last ?? 0) < latest.id {
                flag("missing-checkpoint", "job \(job.id): checkpoint \(latest.id) completed, the store now keeps \(ids.last.map { "\($0)" } ?? "none") as the latest")
            }
            checkHistory(of: job, retained: ids, retain: retain, flag: flag)
            checkpoints.append(.init(job: job.id.rawValue, nextID: job.nextCheckpointID, retained: ids, restarts: restarts))
        }

        return report(history, terms: terms, checkpoints: checkpoints, violations: violations, since: since)
    }

    /// I3 over the append-only history: the retained checkpoints are the latest completed ones,
    /// no completed checkpoint vanished, ids were not reused, and every restore used the latest
    /// checkpoint committed before it.
    private static func checkHistory(of job: AuditHistory.Job, retained: [CheckpointID], retain: Int?, flag: (String, String) -> Void) {
        let completed = job.history.completed.sorted { $0.id < $1.id }
        guard let newest = completed.last else { return }
        if job.nextCheckpointID <= newest.id {
            flag("reused-checkpoint-id", "job \(job.id): the counter is at \(job.nextCheckpointID), checkpoint \(newest.id) already completed")
        }
        let expected = Array(completed.suffix(retain ?? 1).map(\.id))
        let kept = Set(retained)
        for entry in completed where expected.contains(entry.id) && !kept.contains(entry.id) {
            flag(
                "missing-checkpoint",
                "job \(job.id): checkpoint \(entry.id), committed at epoch \(entry.epoch) at \(entry.committedAt), is no longer in the store")
        }
        if retain != nil {
            let stale = retained.filter { !expected.contains($0) }
            if !stale.isEmpty {
                flag(
                    "retained-not-latest",
                    "job \(job.id): the store retains \(stale.map(String.init).joined(separator: ", ")), but the latest \(expected.count) completed are "
                        + expected.map(String.init).joined(separator: ", "))
            }
        }
        let known = Set(completed.map(\.id))
        for restore in job.history.restores {
            // Before the job's first checkpoint a restore comes from where the job started (a
            // savepoint, whose id is below the job's first checkpoint id): nothing to compare.
            guard let latest = completed.filter({ $0.committedAt < restore.at }).last?.id else { continue }
            if restore.checkpoint < latest || (restore.checkpoint > latest && !known.contains(restore.checkpoint)) {
                flag(
                    "restore-not-latest",
                    "job \(job.id): task \(restore.attempt) restored at epoch \(restore.epoch) from checkpoint \(restore.checkpoint); "
                        + "the latest completed then was \(latest)")
            }
        }
    }

    private static func report(
        _ history: AuditHistory, terms: [TermRecord], checkpoints: [AuditReport.JobCheckpoints], violations: [AuditReport.Violation], since: Epoch?
    ) -> AuditReport {
        let termsByEpoch = Dictionary(terms.map { ($0.epoch.rawValue, $0) }, uniquingKeysWith: { first, _ in first })
        let shownTerms = terms.filter { $0.epoch >= (since ?? .none) }
        let failovers = history.failovers.filter { $0.toEpoch >= (since ?? .none) }.sorted { $0.toEpoch < $1.toEpoch }.map { record in
            let previous = record.fromEpoch.flatMap { termsByEpoch[$0.rawValue] }
            return AuditReport.Failover(
                fromEpoch: record.fromEpoch?.rawValue, toEpoch: record.toEpoch.rawValue, leader: record.leader.rawValue, termEndedAt: record.previousTermEndedAt?.iso8601,
                electedAt: record.electedAt.iso8601, reconciledAt: record.reconciledAt?.iso8601, nextCheckpointAt: record.nextCheckpointAt?.iso8601,
                detectMillis: previous?.lastRenewedAt.map { Double(record.electedAt.millis(since: $0)) }, reconcileMillis: record.reconcileMillis,
                nextCheckpointMillis: record.nextCheckpointMillis, adopted: record.adopted, finished: record.finished, restarted: record.restarted,
                cancelled: record.cancelled, windowClosed: record.windowClosed)
        }
        return AuditReport(
            terms: shownTerms.map { term in
                AuditReport.Term(
                    epoch: term.epoch.rawValue, holder: term.holder.member.rawValue, pid: term.holder.pid, startedAt: term.startedAt.iso8601,
                    endedAt: term.endedAt?.iso8601, endReason: term.endReason.map { "\($0)" }, endedBy: term.endedBy?.rawValue)
            },
            failovers: failovers, checkpoints: checkpoints, violations: violations)
    }
}
