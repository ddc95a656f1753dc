public import BatonHAStore
import BatonCore
import CLMDB
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The HA store on LMDB: one data file (`MDB_NOSUBDIR`) and its `-lock` file, synced on every
/// commit, `MDB_NOTLS` so that read transactions are not tied to threads.
///
/// LMDB's write lock belongs to the thread that took it, so every write transaction begins and
/// commits on one thread: `HAStore` runs every backend call on its dedicated thread. Keys are the
/// namespace number followed by the namespace's key, in LMDB's main database.
///
/// Not guaranteed: LMDB does not checksum its pages; a corrupt inner page can make LMDB fail or
/// misread. Baton checks the meta pages and the file length itself before opening, and every value
/// carries its own checksum, verified on read and, at open, for the whole store.
/// One process must not open the same LMDB store twice (LMDB's rule: closing one environment
/// drops the process's locks of the other); this backend refuses a second open with a clear error.
public final class LMDBHAStoreBackend: HAStoreBackend {
    public let path: String
    private var env: OpaquePointer?
    private var dbi: MDB_dbi = 0
    /// The map size now (it grows), and the most it may grow to.
    private var mapSizeBytes: UInt64
    private let maximumMapSizeBytes: UInt64
    private let registration: OpenStoreRegistry.Registration

    /// The map doubles when a commit leaves it more than this full, up to this many times the
    /// configured `store.mapSize`.
    static let growthThreshold = 0.75
    static let growthLimit: UInt64 = 8

    public static let kind = HAStoreBackendKind(
        name: "lmdb",
        validateFile: { path in try LMDBHeader.validate(path: path) },
        open: { path, access, create, options in
            try LMDBHAStoreBackend(path: path, access: access, create: create, options: options)
        },
        auxiliarySuffixes: ["-lock"])

    init(path: String, access: StoreAccess, create: Bool, options: StoreOptions) throws {
        self.path = path
        mapSizeBytes = options.mapSizeBytes
        maximumMapSizeBytes = options.mapSizeBytes * Self.growthLimit
        registration = try OpenStoreRegistry.shared.register(path: path)
        do {
            var environment: OpaquePointer?
            try LMDBHAStoreBackend.check(mdb_env_create(&environment), path: path, doing: "create the environment")
            env = environment
            try LMDBHAStoreBackend.check(
                mdb_env_set_mapsize(environment, Int(options.mapSizeBytes)), path: path, doing: "set the map size")
            var flags = UInt32(MDB_NOSUBDIR | MDB_NOTLS)
            if access == .readOnly { flags |= UInt32(MDB_RDONLY) }
            try LMDBHAStoreBackend.check(mdb_env_open(environment, path, flags, 0o666), path: path, doing: "open")
            var transaction: OpaquePointer?
            try LMDBHAStoreBackend.check(
                mdb_txn_begin(environment, nil, UInt32(MDB_RDONLY), &transaction), path: path, doing: "begin")
            let code = mdb_dbi_open(transaction, nil, 0, &dbi)
            mdb_txn_abort(transaction)
            try LMDBHAStoreBackend.check(code, path: path, doing: "open the main database")
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    public func close() {
        if let env {
            mdb_env_close(env)
            self.env = nil
        }
        registration.release()
    }

    private var environment: OpaquePointer {
        guard let env else { preconditionFailure("LMDB store \(path) used after close") }
        return env
    }

    public func clearStaleReaders() throws {
        var dead: Int32 = 0
        try LMDBHAStoreBackend.check(mdb_reader_check(environment, &dead), path: path, doing: "check readers")
    }

    public func integrityProblems() throws -> [String] {
        // LMDB has no integrity check of its own: walking every entry makes it read every leaf and
        // branch page, which reports the structural damage it can see (MDB_CORRUPTED, MDB_PAGE_NOTFOUND).
        try read { transaction in
            for namespace in StoreNamespace.allCases {
                _ = try transaction.scan(namespace, prefix: [], after: nil, limit: .max)
            }
        }
        return []
    }

    /// Begins a transaction; when another process grew the map, adopts its size first.
    private func begin(_ flags: UInt32, doing: String) throws -> OpaquePointer {
        var transaction: OpaquePointer?
        var code = mdb_txn_begin(environment, nil, flags, &transaction)
        if code == MDB_MAP_RESIZED {
            try LMDBHAStoreBackend.check(mdb_env_set_mapsize(environment, 0), path: path, doing: "adopt the grown map")
            adoptMapSize()
            code = mdb_txn_begin(environment, nil, flags, &transaction)
        }
        try LMDBHAStoreBackend.check(code, path: path, doing: doing)
        return transaction!
    }

    private func adoptMapSize() {
        var info = MDB_envinfo()
        if mdb_env_info(environment, &info) == 0 { mapSizeBytes = UInt64(info.me_mapsize) }
    }

    /// Doubles the map (within the limit) when it is more than `growthThreshold` full, or when
    /// a write did not fit (`force`); false when it may not grow any more.
    @discardableResult
    private func growIfNeeded(force: Bool) throws -> Bool {
        var info = MDB_envinfo()
        var stat = MDB_stat()
        guard mdb_env_info(environment, &info) == 0, mdb_env_stat(environment, &stat) == 0 else { return false }
        let used = Double(info.me_last_pgno + 1) * Double(stat.ms_psize)
        guard force || used > Double(info.me_mapsize) * Self.growthThreshold else { return true }
        let grown = min(UInt64(info.me_mapsize) * 2, maximumMapSizeBytes)
        guard grown > UInt64(info.me_mapsize) else { return false }
        try LMDBHAStoreBackend.check(mdb_env_set_mapsize(environment, Int(grown)), path: path, doing: "grow the map")
        mapSizeBytes = grown
        return true
    }

    public func read<T>(_ body: (any HAStoreBackendReading) throws -> T) throws -> T {
        let transaction = try begin(UInt32(MDB_RDONLY), doing: "begin a read")
        defer { mdb_txn_abort(transaction) }
        return try body(LMDBTransaction(transaction: transaction, dbi: dbi, path: path, mapSizeBytes: mapSizeBytes))
    }

    public func write<T>(_ body: (any HAStoreBackendWriting) throws -> T) throws -> T {
        do {
            return try writeOnce(body)
        } catch let error as HAStoreError where error.code == .full {
            // The map grows before it is full; a write that still did not fit grows it and runs again.
            guard try growIfNeeded(force: true) else { throw error }
            return try writeOnce(body)
        }
    }

    private func writeOnce<T>(_ body: (any HAStoreBackendWriting) throws -> T) throws -> T {
        let transaction = try begin(0, doing: "begin a write")
        let result: T
        do {
            result = try body(LMDBTransaction(transaction: transaction, dbi: dbi, path: path, mapSizeBytes: mapSizeBytes))
        } catch {
            mdb_txn_abort(transaction)
            throw error
        }
        let code = mdb_txn_commit(transaction)
        guard code != 0 else {
            // Committed: growing the map for the next writes is best effort here (a write that
            // does not fit grows it anyway).
            _ = try? growIfNeeded(force: false)
            return result
        }
        var error = LMDBHAStoreBackend.error(code, path: path, doing: "commit", mapSizeBytes: mapSizeBytes)
        if error.code == .io {
            error.code = .outcomeUnknown
            error.message = "the commit failed and may or may not have landed: read back before retrying; " + error.message
        }
        throw error
    }

    static func check(_ code: Int32, path: String, doing: String, mapSizeBytes: UInt64 = 0) throws {
        guard code == 0 else { throw error(code, path: path, doing: doing, mapSizeBytes: mapSizeBytes) }
    }

    static func error(_ code: Int32, path: String, doing: String, mapSizeBytes: UInt64) -> HAStoreError {
        let text = String(cString: mdb_strerror(code))
        switch code {
        case MDB_MAP_FULL:
            return HAStoreError(
                .full, path: path,
                "the LMDB store is full: its map grew to \(ByteSizeText.format(mapSizeBytes)), \(growthLimit) times store.mapSize; raise store.mapSize in the config")
        case MDB_PANIC:
            return HAStoreError(.unusable, path: path, "\(doing): LMDB refuses this process every further transaction after a failed write: \(text); the process must end")
        case MDB_INVALID, MDB_VERSION_MISMATCH:
            return HAStoreError(.notAStore, path: path, "\(doing): not a usable LMDB file: \(text)")
        case MDB_CORRUPTED, MDB_PAGE_NOTFOUND:
            return HAStoreError(.corrupt, path: path, "\(doing): the LMDB file is corrupt: \(text)")
        case MDB_BAD_VALSIZE:
            return HAStoreError(.io, path: path, "\(doing): a key is too long for LMDB: \(text)")
        default:
            return HAStoreError(.io, path: path, "\(doing): \(text) (LMDB code \(code))")
        }
    }
}

/// Reads and writes of one LMDB transaction.
struct LMDBTransaction: HAStoreBackendWriting {
    let transaction: OpaquePointer
    let dbi: MDB_dbi
    let path: String
    let mapSizeBytes: UInt64

    private func fail(_ code: Int32, _ doing: String) -> HAStoreError {
        LMDBHAStoreBackend.error(code, path: path, doing: doing, mapSizeBytes: mapSizeBytes)
    }

    func get(_ namespace: StoreNamespace, _ key: [UInt8]) throws -> [UInt8]? {
        var full = [namespace.number] + key
        return try full.withUnsafeMutableBytes { keyBytes in
            var mdbKey = MDB_val(mv_size: keyBytes.count, mv_data: keyBytes.baseAddress)
            var mdbValue = MDB_val()
            let code = mdb_get(transaction, dbi, &mdbKey, &mdbValue)
            if code == MDB_NOTFOUND { return nil }
            guard code == 0 else { throw fail(code, "read \(namespace)") }
            return Array(UnsafeRawBufferPointer(start: mdbValue.mv_data, count: mdbValue.mv_size))
        }
    }

    func scan(_ namespace: StoreNamespace, prefix: [UInt8], after: [UInt8]?, limit: Int) throws -> [StoreEntry] {
        var cursor: OpaquePointer?
        let openCode = mdb_cursor_open(transaction, dbi, &cursor)
        guard openCode == 0 else { throw fail(openCode, "scan \(namespace)") }
        defer { mdb_cursor_close(cursor) }
        let fullPrefix = [namespace.number] + prefix
        let startAfter = after.flatMap { $0.lexicographicallyPrecedes(prefix) ? nil : [namespace.number] + $0 }
        var start = startAfter ?? fullPrefix
        var entries: [StoreEntry] = []
        var mdbKey = MDB_val()
        var mdbValue = MDB_val()
        var code = start.withUnsafeMutableBytes { bytes -> Int32 in
            mdbKey = MDB_val(mv_size: bytes.count, mv_data: bytes.baseAddress)
            return mdb_cursor_get(cursor, &mdbKey, &mdbValue, MDB_SET_RANGE)
        }
        while code == 0 && entries.count < limit {
            let key = Array(UnsafeRawBufferPointer(start: mdbKey.mv_data, count: mdbKey.mv_size))
            guard key.starts(with: fullPrefix) else { break }
            if key != startAfter {
                let value = Array(UnsafeRawBufferPointer(start: mdbValue.mv_data, count: mdbValue.mv_size))
                entries.append(StoreEntry(key: Array(key.dropFirst()), value: value))
            }
            code = mdb_cursor_get(cursor, &mdbKey, &mdbValue, MDB_NEXT)
        }
        guard code == 0 || code == MDB_NOTFOUND else { throw fail(code, "scan \(namespace)") }
        return entries
    }

    func put(_ namespace: StoreNamespace, _ key: [UInt8], _ value: [UInt8]) throws {
        var fullKey = [namespace.number] + key
        var value = value
        let code = fullKey.withUnsafeMutableBytes { keyBytes in
            value.withUnsafeMutableBytes { valueBytes in
                var mdbKey = MDB_val(mv_size: keyBytes.count, mv_data: keyBytes.baseAddress)
                var mdbValue = MDB_val(
                    mv_size: valueBytes.count, mv_data: valueBytes.baseAddress ?? UnsafeMutableRawPointer(bitPattern: 1))
                return mdb_put(transaction, dbi, &mdbKey, &mdbValue, 0)
            }
        }
        guard code == 0 else { throw fail(code, "write \(namespace)") }
    }

    func delete(_ namespace: StoreNamespace, _ key: [UInt8]) throws {
        var fullKey = [namespace.number] + key
        let code = fullKey.withUnsafeMutableBytes { keyBytes in
            var mdbKey = MDB_val(mv_size: keyBytes.count, mv_data: keyBytes.baseAddress)
            return mdb_del(transaction, dbi, &mdbKey, nil)
        }
        guard code == 0 || code == MDB_NOTFOUND else { throw fail(code, "delete from \(namespace)") }
    }
}

/// The LMDB stores open in this process, by device and inode, so that a second open of the same
/// file is refused instead of silently breaking LMDB's locks.
final class OpenStoreRegistry: @unchecked Sendable {
    // @unchecked: `open` is guarded by `lock`.
    static let shared = OpenStoreRegistry()
    private let lock = NSLock()
    private var open: Set<String> = []

    final class Registration: @unchecked Sendable {
        // @unchecked: `identity` is written once under the registry lock on release.
        private let registry: OpenStoreRegistry
        private var identity: String?
        init(registry: OpenStoreRegistry, identity: String?) {
            self.registry = registry
            self.identity = identity
        }
        func release() {
            registry.lock.lock()
            if let identity { registry.open.remove(identity) }
            identity = nil
            registry.lock.unlock()
        }
    }

    func register(path: String) throws -> Registration {
        var info = stat()
        let identity = stat(path, &info) == 0 ? "\(info.st_dev):\(info.st_ino)" : "path:\(path)"
        lock.lock()
        defer { lock.unlock() }
        guard !open.contains(identity) else {
            throw HAStoreError(
                .io, path: path, "this LMDB store is already open in this process; share that HAStore instead")
        }
        open.insert(identity)
        return Registration(registry: self, identity: identity)
    }
}
