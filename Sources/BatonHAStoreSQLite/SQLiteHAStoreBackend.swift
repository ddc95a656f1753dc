public import BatonHAStore
import BatonCore
import CSQLite

/// The HA store on SQLite: one file in WAL mode with `synchronous=FULL` (one fdatasync per commit),
/// write transactions begun with `BEGIN IMMEDIATE`, statements prepared once.
///
/// Layout: `baton_kv(ns, key, value)` holds every namespace; the SQLite header's `application_id`
/// is 'BATN' and its `user_version` the store's format version, so that a foreign or newer file
/// is refused from its first 100 bytes, before SQLite opens it.
public final class SQLiteHAStoreBackend: HAStoreBackend {
    public let path: String
    private let connection: SQLiteConnection
    private let readOnly: Bool

    /// 'BATN', the SQLite header's application_id of a Baton HA store.
    static let applicationID: UInt32 = 0x4241_544E

    public static let kind = HAStoreBackendKind(
        name: "sqlite",
        validateFile: { path in try SQLiteHeader.validate(path: path) },
        open: { path, access, create, options in
            try SQLiteHAStoreBackend(path: path, access: access, create: create, options: options)
        },
        auxiliarySuffixes: ["-wal", "-shm", "-journal"], dataSuffixes: ["-wal", "-journal"])

    init(path: String, access: StoreAccess, create: Bool, options: StoreOptions) throws {
        self.path = path
        readOnly = access == .readOnly
        var flags = readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE
        if create { flags |= SQLITE_OPEN_CREATE }
        connection = try SQLiteConnection(path: path, flags: flags)
        do {
            connection.setBusyTimeout(milliseconds: Int32(clamping: options.busyTimeout.nanosecondsClamped / 1_000_000))
            if create {
                try connection.execute("PRAGMA page_size = 4096")
                let mode = try connection.textRows("PRAGMA journal_mode = WAL").first?.first
                guard mode == "wal" else {
                    throw HAStoreError(.io, path: path, "cannot switch SQLite to WAL mode (got \(mode ?? "nothing"))")
                }
                try connection.execute("PRAGMA application_id = \(Int32(bitPattern: SQLiteHAStoreBackend.applicationID))")
                try connection.execute("PRAGMA user_version = \(HAStore.formatVersion)")
                try connection.execute(
                    "CREATE TABLE baton_kv (ns INTEGER NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID"
                )
            } else if options.checkIntegrityOnOpen {
                let problems = try integrityRows("PRAGMA quick_check")
                guard problems.isEmpty else {
                    throw HAStoreError(
                        .corrupt, path: path,
                        "SQLite's integrity check failed: \(problems.prefix(3).joined(separator: "; "))")
                }
            }
            if readOnly {
                try connection.execute("PRAGMA query_only = 1")
            } else {
                try connection.execute("PRAGMA synchronous = FULL")
                let mode = try connection.textRows("PRAGMA journal_mode").first?.first
                guard mode == "wal" else {
                    throw HAStoreError(.corrupt, path: path, "the store is not in WAL mode (journal_mode \(mode ?? "?"))")
                }
            }
            let tables = try connection.textRows("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'baton_kv'")
            guard !tables.isEmpty else {
                throw HAStoreError(
                    .foreignFormat, path: path, "is an SQLite database but has no baton_kv table: not a Baton HA store")
            }
        } catch {
            connection.close()
            throw error
        }
    }

    public func close() { connection.close() }

    private func integrityRows(_ pragma: String) throws -> [String] {
        try connection.textRows(pragma).compactMap { $0.first }.filter { $0 != "ok" }
    }

    public func integrityProblems() throws -> [String] {
        try integrityRows("PRAGMA integrity_check")
    }

    public func clearStaleReaders() throws {}

    public func read<T>(_ body: (any HAStoreBackendReading) throws -> T) throws -> T {
        try connection.statement("BEGIN DEFERRED").run()
        do {
            let result = try body(SQLiteTransaction(connection: connection))
            try connection.statement("COMMIT").run()
            return result
        } catch {
            try? connection.statement("ROLLBACK").run()
            throw error
        }
    }

    public func write<T>(_ body: (any HAStoreBackendWriting) throws -> T) throws -> T {
        try connection.statement("BEGIN IMMEDIATE").run()
        let result: T
        do {
            result = try body(SQLiteTransaction(connection: connection))
        } catch {
            try? connection.statement("ROLLBACK").run()
            throw error
        }
        do {
            try connection.statement("COMMIT").run()
        } catch var error as HAStoreError {
            try? connection.statement("ROLLBACK").run()
            if error.code == .io || error.code == .full {
                error.code = .outcomeUnknown
                error.message = "the commit failed and may or may not have landed: read back before retrying; "
                    + error.message
            }
            throw error
        }
        return result
    }
}

/// Reads and writes of one SQLite transaction.
struct SQLiteTransaction: HAStoreBackendWriting {
    let connection: SQLiteConnection

    func get(_ namespace: StoreNamespace, _ key: [UInt8]) throws -> [UInt8]? {
        let statement = try connection.statement("SELECT value FROM baton_kv WHERE ns = ?1 AND key = ?2")
        statement.bind(1, Int64(namespace.number))
        statement.bind(2, key)
        guard try statement.step() else { return nil }
        let value = statement.blob(0)
        statement.reset()
        return value
    }

    func scan(_ namespace: StoreNamespace, prefix: [UInt8], after: [UInt8]?, limit: Int) throws -> [StoreEntry] {
        let upper = StoreKey.prefixUpperBound(prefix)
        let lowerIsAfter = after.map { $0.lexicographicallyPrecedes(prefix) == false } ?? false
        let lower = lowerIsAfter ? after! : prefix
        var sql = "SELECT key, value FROM baton_kv WHERE ns = ?1 AND key \(lowerIsAfter ? ">" : ">=") ?2"
        if upper != nil { sql += " AND key < ?3" }
        sql += " ORDER BY key LIMIT ?4"
        let statement = try connection.statement(sql)
        statement.bind(1, Int64(namespace.number))
        statement.bind(2, lower)
        if let upper { statement.bind(3, upper) }
        statement.bind(4, Int64(min(limit, Int(Int64.max))))
        var entries: [StoreEntry] = []
        while try statement.step() {
            entries.append(StoreEntry(key: statement.blob(0), value: statement.blob(1)))
        }
        return entries
    }

    func put(_ namespace: StoreNamespace, _ key: [UInt8], _ value: [UInt8]) throws {
        let statement = try connection.statement("INSERT OR REPLACE INTO baton_kv (ns, key, value) VALUES (?1, ?2, ?3)")
        statement.bind(1, Int64(namespace.number))
        statement.bind(2, key)
        statement.bind(3, value)
        try statement.run()
    }

    func delete(_ namespace: StoreNamespace, _ key: [UInt8]) throws {
        let statement = try connection.statement("DELETE FROM baton_kv WHERE ns = ?1 AND key = ?2")
        statement.bind(1, Int64(namespace.number))
        statement.bind(2, key)
        try statement.run()
    }
}
