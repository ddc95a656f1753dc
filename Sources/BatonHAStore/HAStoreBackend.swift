import BatonCore

/// One key/value pair read from the store.
public struct StoreEntry: Hashable, Sendable {
    public var key: [UInt8]
    public var value: [UInt8]
    public init(key: [UInt8], value: [UInt8]) {
        self.key = key
        self.value = value
    }
}

/// Reads inside one transaction of a backend. Values are raw (the checksum envelope is handled by
/// `StoreReader` / `StoreWriter`).
public protocol HAStoreBackendReading {
    func get(_ namespace: StoreNamespace, _ key: [UInt8]) throws -> [UInt8]?
    /// Entries of `namespace` whose key starts with `prefix`, in ascending key order, starting
    /// after `after` when given, at most `limit`.
    func scan(_ namespace: StoreNamespace, prefix: [UInt8], after: [UInt8]?, limit: Int) throws
        -> [StoreEntry]
}

/// Writes inside one write transaction of a backend.
public protocol HAStoreBackendWriting: HAStoreBackendReading {
    func put(_ namespace: StoreNamespace, _ key: [UInt8], _ value: [UInt8]) throws
    func delete(_ namespace: StoreNamespace, _ key: [UInt8]) throws
}

/// A storage engine under the HA store: SQLite or LMDB today, etcd later.
///
/// Contract:
/// - `read` and `write` run `body` in one transaction. `write` is atomic and durable: when it
///   returns, the transaction is on disk (fsync). When `body` throws, nothing is written.
/// - Writes from several processes are serialized by the backend (they never corrupt the store),
///   but Baton keeps one writer, the leader.
/// - A backend object is not thread-safe: `HAStore` calls it from its one dedicated thread only,
///   which is also what LMDB's write lock needs.
public protocol HAStoreBackend: AnyObject {
    var path: String { get }
    func read<T>(_ body: (any HAStoreBackendReading) throws -> T) throws -> T
    func write<T>(_ body: (any HAStoreBackendWriting) throws -> T) throws -> T
    /// Clears what dead processes left behind (LMDB's stale reader slots). Called at open and at
    /// every takeover.
    func clearStaleReaders() throws
    /// A full integrity check of the backend's own structures.
    func integrityProblems() throws -> [String]
    func close()
}

/// How a backend is opened: the mode of an `HAStore`.
public enum StoreAccess: Sendable, Hashable {
    /// The masters and the benchmarks: may create the store and write.
    case readWrite
    /// Status, audit and dumps: never write, never create.
    case readOnly
}

/// Tuning that a config gives a backend.
public struct StoreOptions: Sendable, Hashable {
    /// SQLite: how long a writer waits for another writer before failing with `busy`. A safety net
    /// only: Baton has one writer.
    public var busyTimeout: Duration
    /// LMDB: the size of the memory map, which bounds the store's size.
    public var mapSizeBytes: UInt64
    /// Run the backend's integrity check when opening (SQLite `quick_check`).
    public var checkIntegrityOnOpen: Bool

    public init(busyTimeout: Duration = .seconds(5), mapSizeBytes: UInt64 = 1 << 30, checkIntegrityOnOpen: Bool = true) {
        self.busyTimeout = busyTimeout
        self.mapSizeBytes = mapSizeBytes
        self.checkIntegrityOnOpen = checkIntegrityOnOpen
    }
}

/// A backend as a kind: how to recognise its files, open one, and which files it keeps beside it.
public struct HAStoreBackendKind: Sendable {
    /// The name used in configs (`store.backend`).
    public var name: String
    /// Checks a file's header and size without opening it through the library, so that a foreign,
    /// truncated or newer file is refused before the library could touch it.
    public var validateFile: @Sendable (_ path: String) throws -> Void
    /// Opens (creating when `create` is true and the file does not exist) the store at `path`.
    public var open:
        @Sendable (_ path: String, _ access: StoreAccess, _ create: Bool, _ options: StoreOptions) throws
            -> any HAStoreBackend
    /// Suffixes of the files the backend keeps beside the main file (`-wal`, `-lock`, ...).
    public var auxiliarySuffixes: [String]
    /// Suffixes of beside-files that hold committed data (SQLite's `-wal`): found without their
    /// store file, they are a deleted store's leftovers, and no new store is created over them.
    public var dataSuffixes: [String]

    public init(
        name: String, validateFile: @escaping @Sendable (String) throws -> Void,
        open: @escaping @Sendable (String, StoreAccess, Bool, StoreOptions) throws -> any HAStoreBackend,
        auxiliarySuffixes: [String], dataSuffixes: [String] = []
    ) {
        self.name = name
        self.validateFile = validateFile
        self.open = open
        self.auxiliarySuffixes = auxiliarySuffixes
        self.dataSuffixes = dataSuffixes
    }
}
