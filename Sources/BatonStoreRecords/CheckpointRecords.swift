public import BatonCheckpointing
public import BatonCore
public import BatonHAStore
public import BatonJobGraph
import BatonFiles
import Foundation
public import BatonExecutionGraph

/// The checkpoints namespace of the HA store: per job, the id counter and the retained completed
/// checkpoints' metadata. Keys: `job id, 0x00, "counter"` and `job id, 0x00, checkpoint id (8
/// bytes, big-endian)`, so a job's checkpoints scan in id order.
///
/// Beside them, an append-only history for the audit, under `job id, 0x01` (outside the prefix a
/// new leader scans, so it never slows a takeover): `"c", id` for every checkpoint that completed
/// (id, commit time, the epoch that committed it), and `"r", epoch, vertex, subtask, attempt`
/// for every task attempt deployed to restore from a checkpoint (which one, when, at which epoch).
public enum CheckpointRecords {
    static let counterName = StoreKey.text("counter")

    public static func counterKey(_ job: JobID) -> [UInt8] { prefix(job) + counterName }
    public static func checkpointKey(_ job: JobID, _ id: CheckpointID) -> [UInt8] { prefix(job) + StoreKey.uint64(id.rawValue) }
    static func prefix(_ job: JobID) -> [UInt8] { StoreKey.text(job.rawValue) + [0] }

    /// Records the next checkpoint id (written before the trigger goes out).
    public static func writeCounter(_ writer: StoreWriter, job: JobID, next: CheckpointID) throws {
        try writer.put(.checkpoints, counterKey(job), bytes: StoreKey.uint64(next.rawValue))
    }

    /// Records a completed checkpoint, appends it to the job's history with the `epoch` that
    /// commits it and the time of the commit (`committedAt`, taken just before this write), and
    /// forgets the subsumed ones, in the caller's transaction.
    public static func writeCompleted(
        _ writer: StoreWriter, _ checkpoint: CompletedCheckpoint, subsumed: [CheckpointID], epoch: Epoch, committedAt: WallTime
    ) throws {
        try writer.put(.checkpoints, checkpointKey(checkpoint.job, checkpoint.id), bytes: CompletedCheckpointCodec.encode(checkpoint))
        var entry = BinaryWriter(capacity: 32)
        entry.write(checkpoint.id.rawValue)
        entry.write(signed: committedAt.millisecondsSince1970)
        entry.write(epoch.rawValue)
        try writer.put(.checkpoints, historyPrefix(checkpoint.job) + [UInt8(ascii: "c")] + StoreKey.uint64(checkpoint.id.rawValue), bytes: entry.bytes)
        for id in subsumed { try writer.delete(.checkpoints, checkpointKey(checkpoint.job, id)) }
    }

    /// Records that `attempt` is deployed to restore from `checkpoint` (before the deployment goes out).
    public static func writeRestore(
        _ writer: StoreWriter, job: JobID, checkpoint: CheckpointID, attempt: ExecutionAttemptID, epoch: Epoch, at time: WallTime
    ) throws {
        let key = historyPrefix(job) + [UInt8(ascii: "r")] + StoreKey.uint64(epoch.rawValue) + StoreKey.uint64(UInt64(attempt.vertex.jobVertex))
            + StoreKey.uint64(UInt64(attempt.vertex.subtask)) + StoreKey.uint64(UInt64(attempt.attempt))
        var entry = BinaryWriter(capacity: 32)
        entry.write(checkpoint.rawValue)
        entry.write(signed: time.millisecondsSince1970)
        try writer.put(.checkpoints, key, bytes: entry.bytes)
    }

    static func historyPrefix(_ job: JobID) -> [UInt8] { StoreKey.text(job.rawValue) + [1] }

    /// A job's history: every completed checkpoint (id order) and every restore (epoch order).
    public static func readHistory(_ reader: StoreReader, job: JobID) throws -> CheckpointHistory {
        var history = CheckpointHistory()
        let start = historyPrefix(job)
        for entry in try reader.entries(.checkpoints, prefix: start) {
            let suffix = Array(entry.key.dropFirst(start.count))
            do {
                var value = BinaryReader(entry.value)
                switch (suffix.first, suffix.count) {
                case (UInt8(ascii: "c"), 9):
                    history.completed.append(
                        .init(id: CheckpointID(rawValue: try value.readUInt64()), committedAt: WallTime(millisecondsSince1970: try value.readInt64()), epoch: Epoch(try value.readUInt64())))
                case (UInt8(ascii: "r"), 33):
                    let numbers = stride(from: 1, to: 33, by: 8).map { StoreKey.readUInt64(suffix[$0..<($0 + 8)])! }
                    guard numbers[1] <= UInt64(Int32.max), numbers[2] <= UInt64(Int32.max), numbers[3] <= UInt64(Int32.max) else {
                        throw BinaryDecodingError(offset: 0, problem: "a restore key holds a number out of range")
                    }
                    history.restores.append(
                        .init(
                            checkpoint: CheckpointID(rawValue: try value.readUInt64()), at: WallTime(millisecondsSince1970: try value.readInt64()), epoch: Epoch(numbers[0]),
                            attempt: ExecutionAttemptID(
                                vertex: ExecutionVertexID(jobVertex: Int(numbers[1]), subtask: Int(numbers[2])), attempt: Int32(numbers[3]))))
                default:
                    throw BinaryDecodingError(offset: 0, problem: "an unknown history key")
                }
                guard value.isAtEnd else { throw BinaryDecodingError(offset: value.offset, problem: "trailing bytes") }
            } catch {
                throw HAStoreError(.invalidValue, path: reader.path, "the checkpoint history of job \(job) does not decode", underlying: error)
            }
        }
        return history
    }

    /// A job's durable counter (1 when none was written) and its retained checkpoints, oldest first.
    public static func read(_ reader: StoreReader, job: JobID) throws -> (nextID: CheckpointID, completed: [CompletedCheckpoint]) {
        var next: CheckpointID = 1
        var completed: [CompletedCheckpoint] = []
        let start = prefix(job)
        for entry in try reader.entries(.checkpoints, prefix: start) {
            let suffix = Array(entry.key.dropFirst(start.count))
            if suffix == counterName {
                guard let value = StoreKey.readUInt64(entry.value) else {
                    throw HAStoreError(.invalidValue, path: reader.path, "the checkpoint counter of job \(job) is not 8 bytes")
                }
                next = CheckpointID(rawValue: value)
            } else if suffix.count == 8 {
                do {
                    completed.append(try CompletedCheckpointCodec.decode(entry.value))
                } catch {
                    throw HAStoreError(.invalidValue, path: reader.path, "checkpoint metadata of job \(job) does not decode", underlying: error)
                }
            }
        }
        return (next, completed.sorted { $0.id < $1.id })
    }
}

/// A savepoint's `_metadata` file, named by its folder or by the file itself.
/// A job's checkpoint folders on disk (`<checkpoints.dir>/<job>/chk-<id>`).
public enum CheckpointFolders {
    /// Removes the folders of the checkpoints with `above` < id < `below` (ones a previous leader
    /// triggered and never completed), listing the folder once, whatever the number of ids.
    public static func removeLeftovers(in directory: String, above: CheckpointID, below: CheckpointID) {
        for name in DurableFiles.names(in: directory) where name.hasPrefix("chk-") {
            guard let number = UInt64(name.dropFirst(4)) else { continue }
            let id = CheckpointID(rawValue: number)
            if id > above && id < below { DurableFiles.removeTree("\(directory)/\(name)") }
        }
    }
}

extension CheckpointFolders {
    /// A new run of a job: removes what earlier runs with its id left in its checkpoint folder
    /// (checkpoints, source ranges), all but `keeping` (the savepoint it starts from, if it lies
    /// there).
    public static func removeJobFiles(in directory: String, keeping: String?) {
        let kept = keeping.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        for name in DurableFiles.names(in: directory) {
            let path = URL(fileURLWithPath: "\(directory)/\(name)").standardizedFileURL.path
            if let kept, kept == path || kept.hasPrefix(path + "/") { continue }
            DurableFiles.removeTree("\(directory)/\(name)")
        }
    }
}

public enum SavepointFile {
    /// The savepoint at `path` (its folder or `_metadata` file), verified under the cluster's
    /// `key` before any of it is used.
    public static func read(_ path: String, key: [UInt8]) throws -> CompletedCheckpoint {
        let file = path.hasSuffix("/_metadata") ? path : "\(path)/_metadata"
        let bytes: [UInt8]
        do { bytes = try DurableFiles.read(file) } catch { throw SavepointError("cannot read the savepoint: \(error)") }
        do {
            return try CompletedCheckpointCodec.decodeFile(bytes, key: key)
        } catch {
            throw SavepointError("\(file) is not a valid savepoint: \(error)")
        }
    }
}

public struct SavepointError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A job's append-only checkpoint history (for the audit).
public struct CheckpointHistory: Sendable, Hashable {
    public struct Completed: Sendable, Hashable {
        public var id: CheckpointID
        /// When the leader of `epoch` committed its metadata.
        public var committedAt: WallTime
        public var epoch: Epoch
        public init(id: CheckpointID, committedAt: WallTime, epoch: Epoch) {
            self.id = id
            self.committedAt = committedAt
            self.epoch = epoch
        }
    }

    public struct Restore: Sendable, Hashable {
        public var checkpoint: CheckpointID
        public var at: WallTime
        public var epoch: Epoch
        public var attempt: ExecutionAttemptID
        public init(checkpoint: CheckpointID, at: WallTime, epoch: Epoch, attempt: ExecutionAttemptID) {
            self.checkpoint = checkpoint
            self.at = at
            self.epoch = epoch
            self.attempt = attempt
        }
    }

    public var completed: [Completed] = []
    public var restores: [Restore] = []
    public init(completed: [Completed] = [], restores: [Restore] = []) {
        self.completed = completed
        self.restores = restores
    }
}
