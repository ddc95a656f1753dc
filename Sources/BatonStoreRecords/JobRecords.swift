public import BatonCore
public import BatonHAStore
public import BatonExecutionGraph
public import BatonJobGraph
import BatonJobMaster
public import BatonJobManager

/// Keys of the job and execution-graph namespaces.
public enum JobKeys {
    public static func job(_ id: JobID) -> [UInt8] { StoreKey.text(id.rawValue) }

    /// `job id, 0x00, sequence`: the change records of a job in order.
    public static func change(_ id: JobID, _ sequence: UInt64) -> [UInt8] {
        StoreKey.text(id.rawValue) + [0] + StoreKey.uint64(sequence)
    }

    public static func changes(_ id: JobID) -> [UInt8] { StoreKey.text(id.rawValue) + [0] }

    /// `job id, 0x01`: the latest snapshot of a job's ExecutionGraph (`ExecutionGraphSnapshot`).
    public static func snapshot(_ id: JobID) -> [UInt8] { StoreKey.text(id.rawValue) + [1] }

    /// Deletes what the store keeps of a job's runs: change records and snapshot, checkpoint
    /// metadata, the counter, the checkpoint history.
    static func deleteRecords(of job: JobID, in writer: StoreWriter) throws {
        for entry in try writer.reader.entries(.executionGraphs, prefix: changes(job)) { try writer.delete(.executionGraphs, entry.key) }
        try writer.delete(.executionGraphs, snapshot(job))
        for entry in try writer.reader.entries(.checkpoints, prefix: StoreKey.text(job.rawValue) + [0]) { try writer.delete(.checkpoints, entry.key) }
        for entry in try writer.reader.entries(.checkpoints, prefix: StoreKey.text(job.rawValue) + [1]) { try writer.delete(.checkpoints, entry.key) }
    }

    /// `job id, 0x00, run`: an ended run in the history.
    public static func run(_ id: JobID, _ run: Int) -> [UInt8] { StoreKey.text(id.rawValue) + [0] + StoreKey.uint64(UInt64(max(0, run))) }
}

/// One change record of a job's ExecutionGraph as the store keeps it: the epoch of the leader
/// that wrote it (8 bytes, big-endian), then the change; the audit checks that the epochs never
/// go back (no write of a stale leader was accepted).
public struct ChangeRecord: Hashable, Sendable {
    public var sequence: UInt64
    public var epoch: Epoch
    public var change: ExecutionGraphChange

    public init(sequence: UInt64, epoch: Epoch, change: ExecutionGraphChange) {
        self.sequence = sequence
        self.epoch = epoch
        self.change = change
    }

    public static func value(epoch: Epoch, _ change: ExecutionGraphChange) -> [UInt8] {
        StoreKey.uint64(epoch.rawValue) + ExecutionGraphCodec.encode(change)
    }

    /// Every change record of `job` the store holds, in order (those after its snapshot, if it has one).
    public static func all(of job: JobID, in reader: StoreReader) throws -> [ChangeRecord] {
        let prefix = JobKeys.changes(job)
        return try reader.entries(.executionGraphs, prefix: prefix).map { entry in
            let sequence = StoreKey.readUInt64(entry.key.dropFirst(prefix.count)) ?? 0
            // Records written before epochs were kept start with the change's format byte (1);
            // an epoch's first byte is 0 (epochs stay far below 2^56).
            let stamped = entry.value.first == 0 && entry.value.count > 8
            let epoch = stamped ? StoreKey.readUInt64(entry.value.prefix(8)) ?? 0 : 0
            do {
                return ChangeRecord(
                    sequence: sequence, epoch: Epoch(epoch), change: try ExecutionGraphCodec.decode(Array(entry.value.dropFirst(stamped ? 8 : 0))))
            } catch {
                throw HAStoreError(.invalidValue, path: reader.path, "change \(sequence) of job \(job) does not decode", underlying: error)
            }
        }
    }
}

/// A job's ExecutionGraph history as the store holds it: the latest snapshot, if one was written,
/// and the change records after it.
public struct StoredChanges: Sendable {
    public var snapshot: ExecutionGraphSnapshot?
    public var tail: [ChangeRecord]

    public init(snapshot: ExecutionGraphSnapshot?, tail: [ChangeRecord]) {
        self.snapshot = snapshot
        self.tail = tail
    }

    public static func read(of job: JobID, in reader: StoreReader) throws -> StoredChanges {
        var snapshot: ExecutionGraphSnapshot?
        if let bytes = try reader.bytes(.executionGraphs, JobKeys.snapshot(job)) {
            do {
                snapshot = try ExecutionGraphSnapshot(decoding: bytes)
            } catch {
                throw HAStoreError(.invalidValue, path: reader.path, "the snapshot of job \(job) does not decode", underlying: error)
            }
        }
        let start = snapshot?.log.next ?? 0
        return StoredChanges(snapshot: snapshot, tail: try ChangeRecord.all(of: job, in: reader).filter { $0.sequence >= start })
    }

    /// What the store keeps when a leader writes `snapshot`: the snapshot with the log the
    /// store's own records give (its previous snapshot's, with every record the new one replaces
    /// folded in: the store's evidence, not the leader's word), and the records it replaces.
    public func compacted(by snapshot: ExecutionGraphSnapshot) -> (kept: ExecutionGraphSnapshot, replaced: [UInt64]) {
        var log = self.snapshot?.log ?? ChangeLog()
        var replaced: [UInt64] = []
        for record in tail where record.sequence < snapshot.log.next {
            log.fold(sequence: record.sequence, epoch: record.epoch, record.change)
            replaced.append(record.sequence)
        }
        log.skip(to: snapshot.log.next)
        var kept = snapshot
        kept.log = log
        return (kept, replaced)
    }

    /// The snapshot's log with every record of the tail folded in.
    public var log: ChangeLog {
        var log = snapshot?.log ?? ChangeLog()
        for record in tail { log.fold(sequence: record.sequence, epoch: record.epoch, record.change) }
        return log
    }

    /// The graph of `jobGraph` these records rebuild, with their log; throws naming the record (or
    /// the snapshot) that does not rebuild it, and a gap in the sequence.
    public func rebuild(_ jobGraph: JobGraph) throws -> (ExecutionGraph, ChangeLog) {
        let id = jobGraph.id
        var graph: ExecutionGraph
        do {
            graph = try snapshot?.restore(jobGraph) ?? ExecutionGraph(jobGraph: jobGraph)
        } catch {
            throw ExecutionGraphError(message: "its snapshot does not match its job graph: \(error)")
        }
        var log = snapshot?.log ?? ChangeLog()
        for record in tail {
            guard record.sequence == log.next else {
                throw ExecutionGraphError(message: "change \(record.sequence) of job \(id) follows change \(Int64(log.next) - 1) (a gap)")
            }
            do {
                try graph.apply(record.change)
            } catch {
                throw ExecutionGraphError(message: "change \(record.sequence) of job \(id) does not apply: \(error)")
            }
            log.fold(sequence: record.sequence, epoch: record.epoch, record.change)
        }
        return (graph, log)
    }
}

extension JobKeys {
    /// How many task attempts of `job` were restarted (all causes): the new attempts its change
    /// records (and the snapshot that replaced earlier ones) count.
    public static func restarts(of job: JobID, in reader: StoreReader) throws -> Int {
        Int(try StoredChanges.read(of: job, in: reader).log.resets)
    }
}

extension ReconciliationRecord {
    /// The journal key of a term: its epoch, then a sequence (0), 8 bytes big-endian each.
    public static func key(epoch: Epoch) -> [UInt8] { StoreKey.uint64(epoch.rawValue) + StoreKey.uint64(0) }
}

extension JobManager.StoreWrite {
    /// Writes this change in the caller's transaction, stamped with the writing term's `epoch`.
    public func apply(to writer: StoreWriter, epoch: Epoch) throws {
        switch self {
        case .job(let record):
            try writer.put(.jobs, JobKeys.job(record.graph.id), record)
        case .change(let job, let sequence, let change):
            try writer.put(.executionGraphs, JobKeys.change(job, sequence), bytes: ChangeRecord.value(epoch: epoch, change))
        case .snapshot(let job, let snapshot):
            let (kept, replaced) = try StoredChanges.read(of: job, in: writer.reader).compacted(by: snapshot)
            try writer.put(.executionGraphs, JobKeys.snapshot(job), bytes: kept.encoded())
            for sequence in replaced { try writer.delete(.executionGraphs, JobKeys.change(job, sequence)) }
        case .restore(let job, let checkpoint, let attempt, let time):
            try CheckpointRecords.writeRestore(writer, job: job, checkpoint: checkpoint, attempt: attempt, epoch: epoch, at: time)
        case .checkpointCounter(let job, let next):
            try CheckpointRecords.writeCounter(writer, job: job, next: next)
        case .checkpointCompleted(let checkpoint, let subsumed, let committedAt):
            try CheckpointRecords.writeCompleted(writer, checkpoint, subsumed: subsumed, epoch: epoch, committedAt: committedAt)
        case .journal(let record):
            try writer.put(.reconciliations, ReconciliationRecord.key(epoch: record.toEpoch), record)
        case .runEnded(let summary):
            try writer.put(.jobHistory, JobKeys.run(summary.id, summary.run), summary)
            try writer.delete(.jobs, JobKeys.job(summary.id))
        case .newRun(let job):
            try JobKeys.deleteRecords(of: job, in: writer)
        case .pruneRun(let job, let run, let records):
            try writer.delete(.jobHistory, JobKeys.run(job, run))
            if records { try JobKeys.deleteRecords(of: job, in: writer) }
        }
    }
}

extension JobSummary {
    /// The latest ended run of every job id the history keeps.
    public static func latestRuns(_ reader: StoreReader) throws -> [JobSummary] {
        var latest: [JobID: JobSummary] = [:]
        for summary in try reader.values(JobSummary.self, .jobHistory) where summary.run >= latest[summary.id]?.run ?? 0 {
            latest[summary.id] = summary
        }
        return latest.keys.sorted().map { latest[$0]! }
    }
}

extension JobManager.RecoveredJob {
    /// Every job of the store, with its graph rebuilt from its snapshot and the change records
    /// after it (the savepoint a job started from is not read here: it is a file).
    public static func loadAll(_ reader: StoreReader) throws -> [JobManager.RecoveredJob] { try load(reader).jobs }

    /// Every job of the store as `loadAll`, and the job records that do not decode at all (by
    /// job id, with why): those runs fail, the others go on.
    public static func load(_ reader: StoreReader) throws -> (jobs: [JobManager.RecoveredJob], undecodable: [JobID: String]) {
        var jobs: [JobManager.RecoveredJob] = []
        let (records, refused) = try reader.valuesAndRefusals(JobRecord.self, .jobs)
        var undecodable: [JobID: String] = [:]
        for (key, reason) in refused {
            // A key that is no job id cannot be named in the history; it stays for the audit.
            if let id = String(validating: key, as: UTF8.self).flatMap(JobID.init(rawValue:)) { undecodable[id] = reason }
        }
        for record in records {
            let id = record.graph.id
            // Only a valid graph can be expanded into an ExecutionGraph: a record whose graph is
            // not (an edge naming no vertex, a cycle) is refused like one that does not decode.
            do {
                try record.graph.validate()
            } catch {
                undecodable[id] = "its job graph is not valid: \(error)"
                continue
            }
            if record.state.isTerminal {
                // An ended run that is still among the jobs: it moves to the history; its graph is
                // not needed.
                let checkpoints = try? CheckpointRecords.read(reader, job: id)
                jobs.append(
                    .init(
                        record: record, graph: ExecutionGraph(jobGraph: record.graph), changeLog: ChangeLog(), nextCheckpointID: 1,
                        completed: checkpoints?.completed ?? []))
                continue
            }
            do {
                let stored = try StoredChanges.read(of: id, in: reader)
                let (graph, log) = try stored.rebuild(record.graph)
                let checkpoints = try CheckpointRecords.read(reader, job: id)
                jobs.append(
                    JobManager.RecoveredJob(
                        record: record, graph: graph, changeLog: log, snapshotEnd: stored.snapshot?.log.next ?? 0, nextCheckpointID: checkpoints.nextID,
                        completed: checkpoints.completed))
            } catch {
                // This one job cannot be rebuilt: it fails, with the reason; the others go on.
                // Its next change record goes after every one it has, readable or not.
                let prefix = JobKeys.changes(id)
                let last = try reader.entries(.executionGraphs, prefix: prefix).last.flatMap { StoreKey.readUInt64($0.key.dropFirst(prefix.count)) }
                jobs.append(
                    JobManager.RecoveredJob(
                        record: record, graph: ExecutionGraph(jobGraph: record.graph), changeLog: ChangeLog(next: last.map { $0 + 1 } ?? 0),
                        nextCheckpointID: 1, completed: [], unreadable: "\(error)"))
            }
        }
        return (jobs, undecodable)
    }
}
