public import BatonCheckpointing
public import BatonCore
public import BatonHAStore
public import BatonJobGraph
import BatonFiles

/// The checkpoints namespace of the HA store: per job, the id counter and the retained completed
/// checkpoints' metadata. Keys: `job id, 0x00, "counter"` and `job id, 0x00, checkpoint id (8
/// bytes, big-endian)`, so a job's checkpoints scan in id order.
public enum CheckpointRecords {
    static let counterName = StoreKey.text("counter")

    public static func counterKey(_ job: JobID) -> [UInt8] { prefix(job) + counterName }
    public static func checkpointKey(_ job: JobID, _ id: UInt64) -> [UInt8] { prefix(job) + StoreKey.uint64(id) }
    static func prefix(_ job: JobID) -> [UInt8] { StoreKey.text(job.rawValue) + [0] }

    /// Records the next checkpoint id (written before the trigger goes out).
    public static func writeCounter(_ writer: StoreWriter, job: JobID, next: UInt64) throws {
        try writer.put(.checkpoints, counterKey(job), bytes: StoreKey.uint64(next))
    }

    /// Records a completed checkpoint and forgets the subsumed ones, in the caller's transaction.
    public static func writeCompleted(_ writer: StoreWriter, _ checkpoint: CompletedCheckpoint, subsumed: [UInt64]) throws {
        try writer.put(.checkpoints, checkpointKey(checkpoint.job, checkpoint.id), bytes: CompletedCheckpointCodec.encode(checkpoint))
        for id in subsumed { try writer.delete(.checkpoints, checkpointKey(checkpoint.job, id)) }
    }

    /// A job's durable counter (1 when none was written) and its retained checkpoints, oldest first.
    public static func read(_ reader: StoreReader, job: JobID) throws -> (nextID: UInt64, completed: [CompletedCheckpoint]) {
        var next: UInt64 = 1
        var completed: [CompletedCheckpoint] = []
        let start = prefix(job)
        for entry in try reader.entries(.checkpoints, prefix: start) {
            let suffix = Array(entry.key.dropFirst(start.count))
            if suffix == counterName {
                guard let value = StoreKey.readUInt64(entry.value) else {
                    throw HAStoreError(.invalidValue, path: reader.path, "the checkpoint counter of job \(job) is not 8 bytes")
                }
                next = value
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
public enum SavepointFile {
    public static func read(_ path: String) throws -> CompletedCheckpoint {
        let file = path.hasSuffix("/_metadata") ? path : "\(path)/_metadata"
        let bytes: [UInt8]
        do { bytes = try DurableFiles.read(file) } catch { throw SavepointError("cannot read the savepoint: \(error)") }
        do {
            return try CompletedCheckpointCodec.decodeFile(bytes)
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
