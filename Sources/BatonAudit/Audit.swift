public import BatonCheckpointing
public import BatonCore
public import BatonElection
public import BatonExecutionGraph
public import BatonHAStore
public import BatonJobGraph
public import BatonMasterService

/// Everything the audit reads from a store: the leadership record and the term journal, the
/// reconciliation journal, and per job its change records and checkpoints.
public struct AuditHistory: Sendable {
    public struct Job: Sendable {
        public var id: JobID
        public var changes: [ChangeRecord]
        public var nextCheckpointID: UInt64
        public var retained: [CompletedCheckpoint]
        public init(id: JobID, changes: [ChangeRecord], nextCheckpointID: UInt64, retained: [CompletedCheckpoint]) {
            self.id = id
            self.changes = changes
            self.nextCheckpointID = nextCheckpointID
            self.retained = retained
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
        try store.readBlocking { reader in
            let leadership = try reader.leadershipRecord()
            let terms = try reader.terms()
            let failovers = try reader.values(ReconciliationRecord.self, .reconciliations)
            let jobs = try reader.values(JobRecord.self, .jobs).map { record in
                let id = record.graph.id
                let checkpoints = try CheckpointRecords.read(reader, job: id)
                return Job(
                    id: id, changes: try ChangeRecord.all(of: id, in: reader), nextCheckpointID: checkpoints.nextID,
                    retained: checkpoints.completed)
            }
            return AuditHistory(leadership: leadership, terms: terms, failovers: failovers, jobs: jobs)
        }
    }
}

/// What `baton audit` prints (DESIGN section 7): every term, every failover with its timeline
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
        public var nextID: UInt64
        public var retained: [UInt64]
        public var restarts: Int
    }

    public struct Violation: Codable, Sendable, Hashable, CustomStringConvertible {
        /// overlapping-terms, epoch-not-increasing, stale-write, restart-by-master-failover,
        /// missing-checkpoint, reused-checkpoint-id.
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
    public var violations: [Violation]
}

/// The recovery audit: invariants I1 to I4 checked over a store's history.
public enum Audit {
    /// Clocks of one machine: a term may be recorded as ending this long after its successor began.
    static let clockTolerance: Int64 = 50

    public static func check(_ history: AuditHistory, since: Epoch? = nil) -> AuditReport {
        var violations: [AuditReport.Violation] = []
        func flag(_ kind: String, _ message: String) { violations.append(.init(kind: kind, message: message)) }
        let terms = history.terms.sorted { $0.epoch < $1.epoch }

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
        if let leadership = history.leadership, let last = terms.last, leadership.epoch < last.epoch {
            flag("epoch-not-increasing", "the leadership record holds epoch \(leadership.epoch), the journal already has term \(last.epoch)")
        }

        var checkpoints: [AuditReport.JobCheckpoints] = []
        for job in history.jobs.sorted(by: { $0.id < $1.id }) {
            // I1 in the store: no write of an older epoch after a newer one's.
            var highest = Epoch.none
            var reported = false
            for record in job.changes {
                if record.epoch < highest, !reported {
                    flag("stale-write", "job \(job.id): change \(record.sequence) was written at epoch \(record.epoch) after a change of epoch \(highest)")
                    reported = true
                }
                highest = max(highest, record.epoch)
            }
            // I2: a new attempt only after a task of the job failed (or a finished task's
            // result was lost and it is produced again) while the replaced attempt lived.
            var began: [ExecutionVertexID: Int] = [:]
            var lastState: [ExecutionVertexID: ExecutionState] = [:]
            var lastFailure = -1
            var restarts = 0
            var flagged: Set<Epoch> = []
            for (index, record) in job.changes.enumerated() {
                switch record.change {
                case .state(let attempt, let state, _):
                    if state == .failed { lastFailure = index }
                    if began[attempt.vertex] == nil { began[attempt.vertex] = index }
                    lastState[attempt.vertex] = state
                case .reset(let vertex, _):
                    restarts += 1
                    if lastState[vertex] == .finished {
                        lastFailure = index  // a lost result: its consumers restart too
                    } else if lastFailure < began[vertex, default: 0], !flagged.contains(record.epoch), record.epoch >= (since ?? .none) {
                        flag(
                            "restart-by-master-failover",
                            "job \(job.id): task \(vertex) was restarted at epoch \(record.epoch) with no task failure since its attempt began")
                        flagged.insert(record.epoch)
                    }
                    began[vertex] = index
                    lastState[vertex] = .created
                }
            }
            // I3: checkpoint ids strictly increase and none that completed is lost.
            let ids = job.retained.map(\.id)
            if let last = ids.last, job.nextCheckpointID <= last {
                flag("reused-checkpoint-id", "job \(job.id): the counter is at \(job.nextCheckpointID), checkpoint \(last) already completed")
            }
            var latest: (id: UInt64, completedAt: WallTime, epoch: UInt64)?
            var seen: [UInt64: WallTime] = Dictionary(uniqueKeysWithValues: job.retained.map { ($0.id, $0.completedAt) })
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
                latest = (mark.id, mark.completedAt, failover.toEpoch)
            }
            if let latest, (ids.last ?? 0) < latest.id {
                flag("missing-checkpoint", "job \(job.id): checkpoint \(latest.id) completed, the store now keeps \(ids.last.map { "\($0)" } ?? "none") as the latest")
            }
            checkpoints.append(.init(job: job.id.rawValue, nextID: job.nextCheckpointID, retained: ids, restarts: restarts))
        }

        let termsByEpoch = Dictionary(terms.map { ($0.epoch.rawValue, $0) }, uniquingKeysWith: { first, _ in first })
        let shownTerms = terms.filter { $0.epoch >= (since ?? .none) }
        let failovers = history.failovers.filter { $0.toEpoch >= (since?.rawValue ?? 0) }.sorted { $0.toEpoch < $1.toEpoch }.map { record in
            let previous = record.fromEpoch.flatMap { termsByEpoch[$0] }
            return AuditReport.Failover(
                fromEpoch: record.fromEpoch, toEpoch: record.toEpoch, leader: record.leader, termEndedAt: record.previousTermEndedAt?.iso8601,
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
