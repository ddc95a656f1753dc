public import BatonCheckpointing
public import BatonCore
import BatonFiles
import Synchronization

/// The checkpoint a deployed task restores from.
public struct TaskRestore: Hashable, Sendable {
    public var checkpoint: CheckpointID
    public var state: StateHandle
    public init(checkpoint: CheckpointID, state: StateHandle) {
        self.checkpoint = checkpoint
        self.state = state
    }
}

/// A task's state cannot be written or read back: names the file and what is wrong.
public struct TaskStateError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One task's snapshot of one checkpoint as a file: a magic, the operators' states in chain order,
/// and a CRC-32C of what precedes it.
public enum TaskStateFile {
    static let magic: [UInt8] = Array("BATONTS1".utf8)

    public static func write(_ parts: [[UInt8]], to path: String) throws -> StateHandle {
        var writer = BinaryWriter(capacity: 32 + parts.reduce(0) { $0 + $1.count + 9 })
        for byte in magic { writer.write(byte) }
        writer.write(UInt64(parts.count))
        for part in parts { writer.write(bytes: part) }
        let checksum = CRC32C.checksum(writer.bytes)
        writer.write(UInt64(checksum))
        let bytes = writer.bytes
        do {
            try DurableFiles.write(bytes, to: path)
        } catch {
            throw TaskStateError("cannot write the checkpoint state: \(error)")
        }
        return StateHandle(path: path, size: UInt64(bytes.count), checksum: checksum)
    }

    public static func read(_ handle: StateHandle) throws -> [[UInt8]] {
        let bytes: [UInt8]
        do { bytes = try DurableFiles.read(handle.path) } catch { throw TaskStateError("cannot read the checkpoint state: \(error)") }
        guard UInt64(bytes.count) == handle.size else {
            throw TaskStateError("the checkpoint state \(handle.path) has \(bytes.count) bytes, \(handle.size) were acknowledged")
        }
        guard bytes.count > magic.count, Array(bytes.prefix(magic.count)) == magic else {
            throw TaskStateError("\(handle.path) is not a Baton task state file")
        }
        do {
            var reader = BinaryReader(bytes)
            for _ in magic { _ = try reader.readByte() }
            let count = try reader.readUInt64()
            guard count <= UInt64(bytes.count) else { throw BinaryDecodingError(offset: magic.count, problem: "\(count) operator states") }
            var parts: [[UInt8]] = []
            for _ in 0..<count { parts.append(try reader.readBytes()) }
            let end = reader.offset
            let checksum = UInt32(truncatingIfNeeded: try reader.readUInt64())
            guard reader.isAtEnd else { throw BinaryDecodingError(offset: reader.offset, problem: "trailing bytes") }
            guard checksum == handle.checksum, CRC32C.checksum(Array(bytes[0..<end])) == checksum else {
                throw TaskStateError("the checkpoint state \(handle.path) does not match its checksum: the file is damaged or not the acknowledged one")
            }
            return parts
        } catch let error as TaskStateError {
            throw error
        } catch {
            throw TaskStateError("the checkpoint state \(handle.path) cannot be read: \(error)")
        }
    }
}

/// Figures a task gathers for benchmarks: the end-to-end latencies its latency markers took.
public final class TaskMetrics: Sendable {
    private let latencies = Mutex<[Duration]>([])
    private let sinkRecords = Atomic<Int>(0)
    private let sourceRecords = Atomic<Int>(0)

    public init() {}

    /// Records that arrived at tasks without outputs (the sinks), counted as they arrive.
    public var recordsIntoSinks: Int { sinkRecords.load(ordering: .relaxed) }

    public func countSinkRecords(_ count: Int) {
        sinkRecords.add(count, ordering: .relaxed)
    }

    /// Records the source tasks' chains emitted into their outputs, counted as each source task ends.
    public var recordsFromSources: Int { sourceRecords.load(ordering: .relaxed) }

    public func countSourceRecords(_ count: Int) {
        sourceRecords.add(count, ordering: .relaxed)
    }

    public func recordLatency(_ latency: Duration) {
        latencies.withLock { $0.append(latency) }
    }

    public var recordedLatencies: [Duration] { latencies.withLock { $0 } }
}
