import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The memory a task executor gives blocking (batch) results, and the folder they spill to past
/// it: a subpartition keeps its batches in memory while the budget lasts, then writes every
/// further batch to a file of its own in `directory` (so its batches stay in order: memory first,
/// then the file). Released results give their bytes back and remove their files.
public final class BlockingResultMemory: Sendable {
    public let budgetBytes: Int
    /// `<blockingResults.dir>/<task executor id>`: only this task executor's spill files.
    public let directory: String
    private let state = LockedState()

    private final class LockedState: @unchecked Sendable {
        // @unchecked: every access holds `lock`.
        let lock = NSLock()
        var usedBytes = 0
        var nextFile: UInt64 = 0
    }

    /// A budget of `budgetBytes` and a spill folder, emptied now: files a killed process left
    /// belong to results nobody can read any more.
    public init(budgetBytes: Int, directory: String) throws {
        self.budgetBytes = max(0, budgetBytes)
        self.directory = directory
        let files = FileManager.default
        if files.fileExists(atPath: directory) { try files.removeItem(atPath: directory) }
        try files.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    /// Bytes of blocking results held in memory now.
    public var usedBytes: Int { state.lock.withLock { state.usedBytes } }

    /// Takes `bytes` from the budget if they fit.
    func reserve(_ bytes: Int) -> Bool {
        state.lock.withLock {
            guard state.usedBytes + bytes <= budgetBytes else { return false }
            state.usedBytes += bytes
            return true
        }
    }

    func giveBack(_ bytes: Int) { state.lock.withLock { state.usedBytes -= bytes } }

    /// A new spill file's path.
    func newSpillPath(_ name: String) -> String {
        let number = state.lock.withLock {
            state.nextFile += 1
            return state.nextFile
        }
        return "\(directory)/\(number)-\(name).spill"
    }
}

/// A blocking subpartition's batches past the memory budget: a file of length-prefixed batches
/// (4 bytes big-endian, then the batch), appended by the producer, read from the start by each
/// consumer attempt once the producer finished.
struct SpillFile: Sendable {
    let path: String
    private let descriptor: Int32

    init(path: String) throws {
        self.path = path
        descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw SpillError("cannot create the spill file \(path): \(String(cString: strerror(errno)))") }
    }

    func append(_ batch: EncodedBatch) throws {
        let count = UInt32(batch.count)
        let header: [UInt8] = [UInt8(count >> 24), UInt8((count >> 16) & 0xFF), UInt8((count >> 8) & 0xFF), UInt8(count & 0xFF)]
        try writeAll(header)
        try writeAll(batch)
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, bytes.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                throw SpillError("cannot write the spill file \(path): \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    /// Closes the writing end (the producer finished).
    func close() { _ = Glibc.close(descriptor) }

    func remove() { unlink(path) }
}

/// Reads a spill file's batches in order.
final class SpillFileReader: @unchecked Sendable {
    // @unchecked: used by the one task that reads.
    private let handle: FileHandle
    private let path: String

    init(path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw SpillError("cannot open the spill file \(path)") }
        self.handle = handle
        self.path = path
    }

    deinit { try? handle.close() }

    /// The next batch; nil at the end of the file.
    func next() throws -> EncodedBatch? {
        guard let header = try handle.read(upToCount: 4), !header.isEmpty else { return nil }
        guard header.count == 4 else { throw SpillError("the spill file \(path) ends inside a batch header") }
        let length = header.reduce(0) { ($0 << 8) | Int($1) }
        guard let body = try handle.read(upToCount: length), body.count == length else {
            throw SpillError("the spill file \(path) ends inside a batch")
        }
        return [UInt8](body)
    }
}

public struct SpillError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}
