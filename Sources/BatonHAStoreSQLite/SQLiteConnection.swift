import BatonHAStore
import CSQLite

/// A thin wrapper over one sqlite3 connection and its prepared statements.
///
/// Not thread-safe: used from the HA store's dedicated thread only.
final class SQLiteConnection {
    let path: String
    private var handle: OpaquePointer?
    private var statements: [String: SQLiteStatement] = [:]

    init(path: String, flags: Int32) throws {
        self.path = path
        var db: OpaquePointer?
        let code = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, nil)
        handle = db
        if code != SQLITE_OK {
            let error = SQLiteConnection.error(code: code, db: db, path: path, doing: "open")
            sqlite3_close_v2(db)
            handle = nil
            throw error
        }
    }

    deinit { close() }

    func close() {
        statements.values.forEach { $0.finalize() }
        statements.removeAll()
        if let handle {
            sqlite3_close_v2(handle)
            self.handle = nil
        }
    }

    private var db: OpaquePointer {
        guard let handle else { preconditionFailure("SQLite connection to \(path) used after close") }
        return handle
    }

    func setBusyTimeout(milliseconds: Int32) {
        sqlite3_busy_timeout(db, milliseconds)
    }

    /// Runs SQL without results (pragmas, DDL, transaction control).
    func execute(_ sql: String) throws {
        let code = sqlite3_exec(db, sql, nil, nil, nil)
        guard code == SQLITE_OK else { throw failure(code, doing: sql) }
    }

    /// The rows of a query whose columns are all read as text.
    func textRows(_ sql: String) throws -> [[String]] {
        let statement = try prepareUncached(sql)
        defer { statement.finalize() }
        var rows: [[String]] = []
        while try statement.step() {
            rows.append((0..<statement.columnCount).map { statement.text($0) })
        }
        return rows
    }

    /// A cached prepared statement for `sql`, reset and ready to bind.
    func statement(_ sql: String) throws -> SQLiteStatement {
        if let cached = statements[sql] {
            cached.reset()
            return cached
        }
        let statement = try prepareUncached(sql)
        statements[sql] = statement
        return statement
    }

    private func prepareUncached(_ sql: String) throws -> SQLiteStatement {
        var raw: OpaquePointer?
        let code = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &raw, nil)
        guard code == SQLITE_OK, let raw else { throw failure(code, doing: "prepare \(sql)") }
        return SQLiteStatement(raw, connection: self)
    }

    func failure(_ code: Int32, doing: String) -> HAStoreError {
        SQLiteConnection.error(code: code, db: handle, path: path, doing: doing)
    }

    static func error(code: Int32, db: OpaquePointer?, path: String, doing: String) -> HAStoreError {
        let primary = code & 0xFF
        let detail = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(code))
        let message = "\(doing): \(detail) (SQLite code \(code))"
        switch primary {
        case SQLITE_BUSY, SQLITE_LOCKED:
            return HAStoreError(.busy, path: path, "another writer held the store too long; \(message)")
        case SQLITE_CORRUPT:
            return HAStoreError(.corrupt, path: path, "the SQLite file is corrupt; \(message)")
        case SQLITE_NOTADB:
            return HAStoreError(.notAStore, path: path, "not an SQLite database; \(message)")
        case SQLITE_FULL:
            return HAStoreError(.full, path: path, "the disk is full; \(message)")
        case SQLITE_CANTOPEN:
            return HAStoreError(.io, path: path, "cannot open the file; \(message)")
        default:
            return HAStoreError(.io, path: path, message)
        }
    }
}

/// One prepared statement.
final class SQLiteStatement {
    private let raw: OpaquePointer
    private unowned let connection: SQLiteConnection
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(_ raw: OpaquePointer, connection: SQLiteConnection) {
        self.raw = raw
        self.connection = connection
    }

    func finalize() { sqlite3_finalize(raw) }

    func reset() {
        sqlite3_reset(raw)
        sqlite3_clear_bindings(raw)
    }

    func bind(_ index: Int32, _ value: Int64) {
        sqlite3_bind_int64(raw, index, value)
    }

    func bind(_ index: Int32, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            // A zero-length blob must still be a blob (not NULL): pass a non-nil pointer.
            let pointer = buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!
            _ = sqlite3_bind_blob(raw, index, pointer, Int32(buffer.count), SQLiteStatement.transient)
        }
    }

    /// Steps once: true when a row is available, false when done.
    func step() throws -> Bool {
        let code = sqlite3_step(raw)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let error = connection.failure(code, doing: String(cString: sqlite3_sql(raw)))
            sqlite3_reset(raw)
            throw error
        }
    }

    /// Runs a statement that returns no rows.
    func run() throws {
        while try step() {}
    }

    var columnCount: Int32 { sqlite3_column_count(raw) }

    func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(raw, column))
        guard count > 0, let pointer = sqlite3_column_blob(raw, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    func text(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(raw, column) else { return "" }
        return String(cString: pointer)
    }
}
