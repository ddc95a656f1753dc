public import BatonCore
import BatonElection

/// The HA store: leadership, the term journal, jobs, execution graphs, checkpoints and the
/// reconciliation journal, in one file of a real storage engine (SQLite or LMDB).
///
/// Guarantees:
/// - Every `write` is one atomic transaction, durable (fsync) when it returns (invariant I5).
/// - `write(fencedBy:)` checks, inside the same transaction, that the epoch is the current held
///   term, and refuses the whole transaction with `.fenced` otherwise (invariant I1).
/// - Every value carries a checksum, verified on every read.
/// - A file that is not a store of this backend, is truncated or corrupt, or was written by a newer
///   format version is refused at open with an error naming the file, and is not modified.
/// - The store is created atomically: a crash while creating leaves no half-made store at `path`.
///
/// Not guaranteed: fairness between writing processes (SQLite's busy handler is not fair); Baton
/// keeps one writer, the leader.
///
/// All backend calls run on one dedicated thread per `HAStore`.
public final class HAStore: Sendable {
    /// The current format version of the store. A store with a higher version is refused.
    public static let formatVersion = 1
    /// The value of the `format` meta entry.
    public static let formatName = "baton-ha-store"

    public let path: String
    public let backendName: String
    public let access: StoreAccess
    private let thread: DedicatedThread
    // Touched on `thread` only (SQLite connections and LMDB write transactions are per thread).
    private nonisolated(unsafe) let backend: any HAStoreBackend
    // Touched on `thread` only: the last leadership record decoded, by its stored bytes, so that
    // the fencing check of every write does not decode the same record again.
    private nonisolated(unsafe) var leadershipCache: (bytes: [UInt8], record: LeadershipRecord)?

    private init(path: String, backendName: String, access: StoreAccess, thread: DedicatedThread, backend: any HAStoreBackend) {
        self.path = path
        self.backendName = backendName
        self.access = access
        self.thread = thread
        self.backend = backend
    }

    /// The store's thread as an executor: an actor that mostly talks to the store can run on it
    /// (`nonisolated var unownedExecutor`), and a task can prefer it (`withTaskExecutorPreference`),
    /// so that store calls run inline instead of hopping threads.
    public var executor: DedicatedThread { thread }

    deinit {
        let backend = self.backend
        nonisolated(unsafe) let unsafeBackend = backend
        if thread.isCurrent {
            unsafeBackend.close()
        } else {
            _ = try? thread.runBlocking { unsafeBackend.close() }
        }
        thread.shutdown()
    }

    /// Opens the store at `path`, creating it when `access` is `.readWrite` and nothing is there.
    ///
    /// - Throws: `HAStoreError` with `.notFound` (read-only and no file), `.notAStore`,
    ///   `.foreignFormat`, `.newerVersion`, `.truncated`, `.corrupt`, or `.io`.
    public static func open(
        path: String, kind: HAStoreBackendKind, access: StoreAccess, options: StoreOptions = StoreOptions(),
        now: WallTime
    ) throws -> HAStore {
        let thread = DedicatedThread(name: "baton-store-\(kind.name)")
        do {
            nonisolated(unsafe) var opened: (any HAStoreBackend)?
            try thread.runBlocking {
                opened = try openOnThread(path: path, kind: kind, access: access, options: options, now: now)
            }
            return HAStore(path: path, backendName: kind.name, access: access, thread: thread, backend: opened!)
        } catch {
            thread.shutdown()
            throw error
        }
    }

    /// Opens a store that is not a file (etcd): `makeBackend` connects to it, `location` names it
    /// in messages. The store is there when its format entry is; a `.readWrite` open of an empty
    /// place creates it, in one transaction that holds only while no format entry exists (a
    /// concurrent creator may win: then its store is used). The format, version and backend are
    /// checked as for a file.
    public static func open(
        remote location: String, backendName: String, access: StoreAccess, options: StoreOptions = StoreOptions(), now: WallTime,
        makeBackend: @escaping @Sendable () throws -> any HAStoreBackend
    ) throws -> HAStore {
        let thread = DedicatedThread(name: "baton-store-\(backendName)")
        do {
            nonisolated(unsafe) var opened: (any HAStoreBackend)?
            try thread.runBlocking {
                let backend = try makeBackend()
                do {
                    let exists = try backend.read { try $0.get(.meta, StoreKey.text("format")) != nil }
                    if !exists {
                        guard access == .readWrite else {
                            throw HAStoreError(.notFound, path: location, "no store exists here (has a master of this group run yet?)")
                        }
                        try backend.write { transaction in
                            guard try transaction.get(.meta, StoreKey.text("format")) == nil else { return }
                            try writeMeta(StoreWriter(backend: transaction, path: location), backendName: backendName, now: now)
                        }
                    }
                    try verifyMeta(backend, backendName: backendName)
                    if options.checkIntegrityOnOpen { try verifyChecksums(backend) }
                } catch {
                    backend.close()
                    throw error
                }
                opened = backend
            }
            return HAStore(path: location, backendName: backendName, access: access, thread: thread, backend: opened!)
        } catch {
            thread.shutdown()
            throw error
        }
    }

    private static func openOnThread(
        path: String, kind: HAStoreBackendKind, access: StoreAccess, options: StoreOptions, now: WallTime
    ) throws -> any HAStoreBackend {
        switch try StoreFiles.kind(of: path) {
        case .missing:
            guard access == .readWrite else {
                throw HAStoreError(.notFound, path: path, "no store exists here (has a master of this group run yet?)")
            }
            for suffix in kind.dataSuffixes where try StoreFiles.kind(of: path + suffix) != .missing {
                throw HAStoreError(
                    .notAStore, path: path,
                    "\(path + suffix) exists but the store file does not: it holds a deleted store's data; "
                        + "restore the store file or remove \(path + suffix) before starting a new store")
            }
            try create(path: path, kind: kind, options: options, now: now)
            return try verified(path: path, kind: kind, access: access, options: options)
        case .directory:
            throw HAStoreError(.notAStore, path: path, "is a directory, not a \(kind.name) store file")
        case .other:
            throw HAStoreError(.notAStore, path: path, "is not a regular file, so not a \(kind.name) store")
        case .regular:
            break
        }
        try kind.validateFile(path)
        if access == .readWrite {
            // Every check runs on a read-only connection first: a connection that can write may
            // change the file when it closes (SQLite checkpoints its WAL), and a refused file must
            // be left exactly as it was.
            let checked = try verified(path: path, kind: kind, access: .readOnly, options: options)
            checked.close()
            var options = options
            options.checkIntegrityOnOpen = false
            return try verified(path: path, kind: kind, access: .readWrite, options: options, checks: false)
        }
        return try verified(path: path, kind: kind, access: access, options: options)
    }

    /// Opens the backend and checks the format, version and (when asked) every checksum.
    private static func verified(
        path: String, kind: HAStoreBackendKind, access: StoreAccess, options: StoreOptions, checks: Bool = true
    ) throws -> any HAStoreBackend {
        let backend = try kind.open(path, access, false, options)
        do {
            try verifyMeta(backend, backendName: kind.name)
            if checks && options.checkIntegrityOnOpen { try verifyChecksums(backend) }
            if access == .readWrite { try backend.clearStaleReaders() }
            return backend
        } catch {
            backend.close()
            throw error
        }
    }

    /// Builds a new store beside `path`, syncs it, and links it into place only if `path` is still
    /// absent (a concurrent creator may have won: then its store is used).
    private static func create(path: String, kind: HAStoreBackendKind, options: StoreOptions, now: WallTime) throws {
        let directory = StoreFiles.directory(of: path)
        try StoreFiles.makeDirectories(directory)
        var random = SystemRandomNumberGenerator()
        let temporary = "\(path).creating-\(String(random.next(), radix: 16))"
        defer {
            StoreFiles.remove(temporary)
            for suffix in kind.auxiliarySuffixes { StoreFiles.remove(temporary + suffix) }
        }
        let backend = try kind.open(temporary, .readWrite, true, options)
        do {
            try backend.write { try writeMeta(StoreWriter(backend: $0, path: path), backendName: kind.name, now: now) }
        } catch {
            backend.close()
            throw error
        }
        backend.close()
        _ = try StoreFiles.linkIfAbsent(temporary, to: path)
        try StoreFiles.syncDirectory(directory)
    }

    /// The entries that make a store: its format, version, backend and creation time.
    private static func writeMeta(_ writer: StoreWriter, backendName: String, now: WallTime) throws {
        try writer.put(.meta, StoreKey.text("format"), bytes: StoreKey.text(formatName))
        try writer.put(.meta, StoreKey.text("version"), bytes: StoreKey.text(String(formatVersion)))
        try writer.put(.meta, StoreKey.text("backend"), bytes: StoreKey.text(backendName))
        try writer.put(.meta, StoreKey.text("createdAt"), bytes: StoreKey.text(now.iso8601))
    }

    /// Verifies the checksum of every value (O(store size); stores hold metadata, not data).
    private static func verifyChecksums(_ backend: any HAStoreBackend) throws {
        try backend.read { transaction in
            for namespace in StoreNamespace.allCases {
                var after: [UInt8]?
                while true {
                    let batch = try transaction.scan(namespace, prefix: [], after: after, limit: 1024)
                    for entry in batch { _ = try ValueEnvelope.open(namespace, entry.key, entry.value, path: backend.path) }
                    guard batch.count == 1024, let last = batch.last else { break }
                    after = last.key
                }
            }
        }
    }

    private static func verifyMeta(_ backend: any HAStoreBackend, backendName kindName: String) throws {
        let path = backend.path
        try backend.read { transaction in
            let reader = StoreReader(backend: transaction, path: path)
            func text(_ name: String) throws -> String? {
                try reader.bytes(.meta, StoreKey.text(name)).map { String(decoding: $0, as: UTF8.self) }
            }
            guard let format = try text("format") else {
                throw HAStoreError(
                    .foreignFormat, path: path,
                    "is a \(kindName) database but not a Baton HA store (it has no format entry); point store.path elsewhere")
            }
            guard format == formatName else {
                throw HAStoreError(.foreignFormat, path: path, "holds format '\(format)', not '\(formatName)'")
            }
            guard let versionText = try text("version"), let version = Int(versionText) else {
                throw HAStoreError(.corrupt, path: path, "has no readable format version")
            }
            guard version <= formatVersion else {
                throw HAStoreError(
                    .newerVersion, path: path,
                    "was written by format version \(version); this baton reads up to version \(formatVersion): upgrade baton")
            }
            if let backendName = try text("backend"), backendName != kindName {
                throw HAStoreError(
                    .foreignFormat, path: path, "is a \(backendName) store opened as \(kindName): check store.backend")
            }
        }
    }

    // MARK: transactions

    /// Runs `body` in one read transaction.
    public func read<T: Sendable>(_ body: @escaping @Sendable (StoreReader) throws -> T) async throws -> T {
        nonisolated(unsafe) let backend = self.backend
        let path = self.path
        return try await thread.run {
            try backend.read { try body(StoreReader(backend: $0, path: path)) }
        }
    }

    /// `read` for synchronous callers (tools); blocks the calling thread.
    public func readBlocking<T: Sendable>(_ body: @escaping @Sendable (StoreReader) throws -> T) throws -> T {
        nonisolated(unsafe) let backend = self.backend
        let path = self.path
        return try thread.runBlocking {
            try backend.read { try body(StoreReader(backend: $0, path: path)) }
        }
    }

    /// Runs `body` in one write transaction, after checking inside it that `epoch` is the current,
    /// held term. Throws `.fenced` (and writes nothing) when it is not.
    public func write<T: Sendable>(fencedBy epoch: Epoch, _ body: @escaping @Sendable (StoreWriter) throws -> T)
        async throws -> T
    {
        let path = self.path
        return try await unfencedWrite { writer in
            do {
                try LeadershipRules.checkFence(epoch: epoch, current: try self.cachedLeadership(writer.reader))
            } catch let fence as FencedWrite {
                throw HAStoreError.fenced(fence, path: path)
            }
            return try body(writer)
        }
    }

    /// The leadership record as `reader` sees it, decoded once per distinct stored value.
    private func cachedLeadership(_ reader: StoreReader) throws -> LeadershipRecord? {
        guard let bytes = try reader.bytes(.leadership, HAStore.leadershipKey) else { return nil }
        if let cached = leadershipCache, cached.bytes == bytes { return cached.record }
        let record = try reader.value(LeadershipRecord.self, .leadership, HAStore.leadershipKey)!
        leadershipCache = (bytes, record)
        return record
    }

    /// A write transaction with no fencing check, for the election itself (whose campaign is a
    /// compare-and-set) and for tools that build stores in tests. Leaders use `write(fencedBy:)`.
    public func unfencedWrite<T: Sendable>(_ body: @escaping @Sendable (StoreWriter) throws -> T) async throws -> T {
        guard access == .readWrite else {
            throw HAStoreError(.io, path: path, "opened read-only: writes are not allowed")
        }
        nonisolated(unsafe) let backend = self.backend
        let path = self.path
        return try await thread.run {
            try backend.write { try body(StoreWriter(backend: $0, path: path)) }
        }
    }

    /// Clears stale reader slots of dead processes (LMDB); a no-op for SQLite.
    public func clearStaleReaders() async throws {
        nonisolated(unsafe) let backend = self.backend
        try await thread.run { try backend.clearStaleReaders() }
    }

    /// The backend's own integrity check plus a checksum check of every value.
    public func integrityProblems() async throws -> [String] {
        nonisolated(unsafe) let backend = self.backend
        let path = self.path
        return try await thread.run {
            var problems = try backend.integrityProblems()
            try backend.read { transaction in
                for namespace in StoreNamespace.allCases {
                    for entry in try transaction.scan(namespace, prefix: [], after: nil, limit: .max) {
                        do {
                            _ = try ValueEnvelope.open(namespace, entry.key, entry.value, path: path)
                        } catch let error as HAStoreError {
                            problems.append(error.message)
                        }
                    }
                }
            }
            return problems
        }
    }
}
