public import BatonCore
import BatonFiles
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The file sink: records as text lines (`key,value` or the line) in part files under one folder.
///
/// Exactly-once (the default) is a two-phase commit on checkpoints, as Flink's FileSink does it:
/// - records go to a hidden in-progress file, `.part-<subtask>-<attempt>-<n>.inprogress`;
/// - at checkpoint c the in-progress file is flushed, synced and renamed to the pending
///   `.part-<subtask>-<c>.pending` (with a synced folder), and the checkpoint's state lists the
///   pending files not committed yet;
/// - when checkpoint c is complete, every pending file up to c is renamed to its committed name
///   `part-<subtask>-<c>`. A commit is idempotent: a pending file already renamed is skipped, so
///   a repeated notice changes nothing;
/// - on a restore from checkpoint c, the pending files its state lists are committed and every
///   other in-progress or pending file of this subtask is removed (it holds records after c,
///   which the sources replay);
/// - at the end of the input, what is left is committed as `part-<subtask>-end`.
///
/// Without exactly-once, records go straight to `part-<subtask>-<attempt>` (at least once).
public struct FileSinkOperator: StreamOperator, @unchecked Sendable {
    // @unchecked: the file descriptor is used by the one task that owns the operator.
    /// A pending file and its committed name, as full paths (a job restored from a savepoint
    /// commits them where they were written, even when it writes elsewhere itself).
    struct Staged: Hashable {
        var checkpoint: CheckpointID
        var pendingPath: String
        var committedPath: String
    }

    let directory: String
    let subtask: Int
    let attempt: Int
    let exactlyOnce: Bool
    /// The open file, closed when the operator goes away (a failed or canceled task included).
    private let file = OpenFile()
    private var descriptor: Int32 {
        get { file.descriptor }
        nonmutating set { file.descriptor = newValue }
    }
    private var currentName: String?
    private var fileCount = 0
    private var buffer: [UInt8] = []
    private var staged: [Staged] = []
    private var wroteSinceSync = false
    /// Bytes written since the last early writeback was started.
    private var unsyncedBytes = 0
    private let writeback = EarlyWriteback()
    /// How much written data starts its writeback to disk at once: the sync at a checkpoint then
    /// finds little left to wait for.
    static let writebackBytes = 8 << 20

    init(directory: String, context: OperatorContext, exactlyOnce: Bool) throws {
        guard !directory.isEmpty else { throw OperatorError("operator 'file-sink' needs the parameter 'path'") }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw OperatorError("operator 'file-sink' cannot create '\(directory)': \(error.localizedDescription)")
        }
        self.directory = directory
        self.subtask = context.subtask
        self.attempt = context.attempt
        self.exactlyOnce = exactlyOnce
        buffer.reserveCapacity(80 * 1024)
    }

    var pendingPrefix: String { ".part-\(subtask)-" }

    public mutating func process(_ record: Record, emit: (Record) throws -> Void) throws {
        switch record {
        case .line(let text): buffer.append(contentsOf: text.utf8)
        case .keyed(let key, let value):
            buffer.append(contentsOf: key.utf8)
            buffer.append(0x2C)
            appendDecimal(value)
        }
        buffer.append(0x0A)
        if buffer.count >= 64 * 1024 { try writeBuffer() }
    }

    private mutating func appendDecimal(_ value: Int64) {
        if value < 0 { buffer.append(0x2D) }
        var magnitude = value.magnitude
        let start = buffer.count
        repeat {
            buffer.append(UInt8(truncatingIfNeeded: 0x30 + magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        buffer[start...].reverse()
    }

    private func path(_ name: String) -> String { "\(directory)/\(name)" }

    /// Writes what is buffered to the current file, opening one if none is open.
    private mutating func writeBuffer() throws {
        guard !buffer.isEmpty else { return }
        if descriptor < 0 {
            let name = exactlyOnce ? "\(pendingPrefix)\(attempt)-\(fileCount).inprogress" : "part-\(subtask)-\(attempt)"
            fileCount += 1
            descriptor = open(path(name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666)
            guard descriptor >= 0 else { throw fileError("cannot create", name) }
            currentName = name
            if exactlyOnce { file.inProgressPath = path(name) }
        }
        do { try DurableFiles.writeAll(descriptor, buffer, path: path(currentName ?? "")) } catch {
            throw OperatorError("operator 'file-sink': \(error)")
        }
        unsyncedBytes += buffer.count
        buffer.removeAll(keepingCapacity: true)
        wroteSinceSync = true
        if unsyncedBytes >= Self.writebackBytes {
            writeback.start(descriptor)
            unsyncedBytes = 0
        }
    }

    /// Flushes, syncs and closes the current file; returns its name.
    private mutating func closeCurrent() throws -> String? {
        try writeBuffer()
        guard descriptor >= 0, let name = currentName else { return nil }
        if fsync(descriptor) != 0 { throw fileError("cannot sync", name) }
        close(descriptor)
        descriptor = -1
        file.inProgressPath = nil
        currentName = nil
        wroteSinceSync = false
        unsyncedBytes = 0
        return name
    }

    private func fileError(_ what: String, _ name: String) -> OperatorError {
        OperatorError("operator 'file-sink' \(what) '\(path(name))': \(String(cString: strerror(errno)))")
    }

    private func syncDirectory() throws {
        do { try DurableFiles.syncDirectory(directory) } catch { throw OperatorError("operator 'file-sink': \(error)") }
    }

    private func rename(_ from: String, to: String) throws {
        do { try DurableFiles.rename(from, to: to, sync: false) } catch { throw OperatorError("operator 'file-sink': \(error)") }
    }

    // MARK: checkpoints

    public mutating func snapshotState(checkpoint: CheckpointID) throws -> [UInt8] {
        try snapshotState(checkpoint: checkpoint, savepointDirectory: nil)
    }

    /// A savepoint's state names hard links to the pending files, in the savepoint's folder: the
    /// running job may commit or discard its own names, the savepoint keeps its data.
    public mutating func snapshotState(checkpoint: CheckpointID, savepointDirectory: String?) throws -> [UInt8] {
        guard exactlyOnce else {
            try writeBuffer()
            if descriptor >= 0, wroteSinceSync, fsync(descriptor) != 0 { throw fileError("cannot sync", currentName ?? "") }
            wroteSinceSync = false
            return []
        }
        if let name = try closeCurrent() {
            let entry = Staged(
                checkpoint: checkpoint, pendingPath: path("\(pendingPrefix)\(checkpoint).pending"), committedPath: path("part-\(subtask)-\(checkpoint)"))
            try rename(path(name), to: entry.pendingPath)
            try syncDirectory()
            staged.append(entry)
        }
        var listed = staged
        if let savepointDirectory {
            let folder = "\(savepointDirectory)/file-sink-\(subtask)"
            do {
                try DurableFiles.makeDirectories(folder)
                for index in listed.indices {
                    let copy = "\(folder)/\(DurableFiles.lastComponent(of: listed[index].pendingPath))"
                    try DurableFiles.link(listed[index].pendingPath, to: copy)
                    listed[index].pendingPath = copy
                }
                try DurableFiles.syncDirectory(folder)
            } catch {
                throw OperatorError("operator 'file-sink' cannot keep its pending files in the savepoint: \(error)")
            }
        }
        var writer = BinaryWriter(capacity: 16 + listed.count * 48)
        writer.write(UInt64(listed.count))
        for entry in listed {
            writer.write(entry.checkpoint.rawValue)
            writer.write(entry.pendingPath)
            writer.write(entry.committedPath)
        }
        return writer.bytes
    }

    public mutating func checkpointCompleted(_ id: CheckpointID) throws {
        guard exactlyOnce else { return }
        let due = staged.filter { $0.checkpoint <= id }
        guard !due.isEmpty else { return }
        try commit(due)
        staged.removeAll { $0.checkpoint <= id }
    }

    /// Renames pending files to their committed names; one already committed is skipped.
    private func commit(_ entries: [Staged]) throws {
        var folders: Set<String> = []
        for entry in entries {
            if DurableFiles.exists(entry.pendingPath) {
                try rename(entry.pendingPath, to: entry.committedPath)
                folders.insert(DurableFiles.directory(of: entry.committedPath))
            } else if !DurableFiles.exists(entry.committedPath) {
                throw OperatorError(
                    "operator 'file-sink' cannot commit checkpoint \(entry.checkpoint): neither '\(entry.pendingPath)' nor '\(entry.committedPath)' exists")
            }
        }
        for folder in folders.sorted() {
            do { try DurableFiles.syncDirectory(folder) } catch { throw OperatorError("operator 'file-sink': \(error)") }
        }
    }

    public mutating func restoreState(_ state: [UInt8]?, checkpoint: CheckpointID?) throws {
        guard exactlyOnce else { return }
        var restored: [Staged] = []
        if let state {
            do {
                var reader = BinaryReader(state)
                let count = try reader.readUInt64()
                guard count <= UInt64(state.count) else { throw BinaryDecodingError(offset: 0, problem: "state claims \(count) files") }
                for _ in 0..<count {
                    restored.append(Staged(checkpoint: CheckpointID(rawValue: try reader.readUInt64()), pendingPath: try reader.readString(), committedPath: try reader.readString()))
                }
            } catch {
                throw stateError("file-sink", error)
            }
        }
        try commit(restored)
        // Everything else this subtask left uncommitted holds records after the checkpoint, and so
        // does what it committed after it (at the end of its input, before a restart of a
        // finished task): the sources replay those records.
        let keep = Set(restored.map(\.pendingPath))
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let committedPrefix = "part-\(subtask)-"
        for name in names {
            if name.hasPrefix(pendingPrefix), !keep.contains(path(name)), name.hasSuffix(".inprogress") || name.hasSuffix(".pending") {
                DurableFiles.removeTree(path(name))
            } else if name.hasPrefix(committedPrefix) {
                let suffix = name.dropFirst(committedPrefix.count)
                if suffix == "end" || (UInt64(suffix).map { CheckpointID(rawValue: $0) > (checkpoint ?? 0) } ?? false) { DurableFiles.removeTree(path(name)) }
            }
        }
        try syncDirectory()
    }

    public mutating func finish(emit: (Record) throws -> Void) throws {
        guard exactlyOnce else {
            _ = try closeCurrent()
            return
        }
        try commit(staged)
        staged.removeAll()
        if let name = try closeCurrent() {
            try rename(path(name), to: path("part-\(subtask)-end"))
            try syncDirectory()
        }
    }
}

/// A file descriptor that is closed when its owner goes away.
/// Syncs a file's data written so far on another thread while its task writes on (at most one
/// sync at a time per sink): the data is then on its way to disk before the checkpoint's own sync,
/// which alone is what durability relies on. The sync works on a duplicate of the descriptor, so
/// the task may close its file meanwhile.
final class EarlyWriteback: Sendable {
    private let inFlight = Mutex(false)

    func start(_ descriptor: Int32) {
        guard descriptor >= 0, inFlight.withLock({ busy in
            if busy { return false }
            busy = true
            return true
        }) else { return }
        let copy = dup(descriptor)
        guard copy >= 0 else {
            inFlight.withLock { $0 = false }
            return
        }
        DispatchQueue.global(qos: .utility).async { [self] in
            _ = fdatasync(copy)
            close(copy)
            inFlight.withLock { $0 = false }
        }
    }
}

final class OpenFile: @unchecked Sendable {
    // @unchecked: used by the one task that owns the sink.
    var descriptor: Int32 = -1
    /// The in-progress file open now, when exactly-once: no checkpoint holds it, so when the sink
    /// goes away without closing it (its task failed or was canceled) it is removed. A replaced
    /// attempt that ran on after its successor restored (it was cut off from the leader) leaves
    /// nothing behind.
    var inProgressPath: String?
    deinit {
        if descriptor >= 0 { close(descriptor) }
        if let inProgressPath { unlink(inProgressPath) }
    }
}
