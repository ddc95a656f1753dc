public import BatonEtcd
public import BatonCore
public import BatonHAStore
import Foundation

/// The HA store's backend on etcd: every namespace under one key prefix, each read a snapshot at
/// one revision of the cluster, each write an optimistic transaction.
///
/// A write runs its body against a snapshot (reads at the revision of its first read, its own
/// writes seen through an overlay), then commits in one etcd transaction that holds only if
/// nothing it read changed since: every key it read still has the revision it had (0: still
/// absent), and no key of a range it scanned was written after the snapshot. Otherwise the body
/// runs again on a new snapshot (a bounded number of times, then `busy`). A fenced write reads the
/// leadership record inside its body, so a term that ended meanwhile fails the comparison and the
/// retry sees the new term and refuses: the same fencing as the file backends. etcd commits a
/// transaction to a quorum of members, each with fsync, before it answers.
///
/// Called only from the store's thread (like every backend): the etcd requests are made from it
/// and waited for there (on NIO's threads, not Swift's cooperative pool).
public final class EtcdHAStoreBackend: HAStoreBackend {
    public let path: String
    let client: EtcdClient
    let prefix: [UInt8]
    /// What one transaction may carry: etcd refuses larger requests (`--max-request-bytes`,
    /// 1.5 MiB by default) and more operations (`--max-txn-ops`, 128 by default). A write past
    /// either is refused whole, saying which (it is not split: it would no longer be atomic).
    public struct Limits: Sendable {
        public var requestBytes: Int
        public var operations: Int
        public init(requestBytes: Int = 1_500_000, operations: Int = 128) {
            self.requestBytes = requestBytes
            self.operations = operations
        }
    }
    public let limits: Limits
    /// Whether `close` ends the client too (the backend made it).
    let ownsClient: Bool
    static let attempts = 16
    public static let name = "etcd"

    /// `location` names the store in messages (`etcd://endpoints/prefix`); keys live under `prefix`.
    public init(client: EtcdClient, prefix: String, location: String, limits: Limits = Limits(), ownsClient: Bool = false) {
        self.client = client
        self.prefix = Array(prefix.utf8)
        self.limits = limits
        self.ownsClient = ownsClient
        path = location
    }

    /// Opens (creating it for `.readWrite` when the prefix holds none) the HA store under `prefix`
    /// in the etcd cluster at `endpoints`.
    public static func openStore(
        endpoints: [String], prefix: String, access: StoreAccess, options: StoreOptions = StoreOptions(), now: WallTime,
        limits: Limits = Limits(), requestTimeout: Duration = .seconds(2)
    ) throws -> HAStore {
        let location = "etcd://\(endpoints.joined(separator: ","))\(prefix.hasPrefix("/") ? "" : "/")\(prefix)"
        return try HAStore.open(remote: location, backendName: name, access: access, options: options, now: now) {
            EtcdHAStoreBackend(
                client: try EtcdClient(endpoints: endpoints, requestTimeout: requestTimeout), prefix: prefix, location: location, limits: limits,
                ownsClient: true)
        }
    }

    func etcdKey(_ namespace: StoreNamespace, _ key: [UInt8]) -> [UInt8] { prefix + [namespace.number] + key }

    /// Where a store key starts in an etcd key (after the prefix and the namespace byte).
    var keyOffset: Int { prefix.count + 1 }

    /// Makes an etcd request from the store's thread and waits for it there, as a store error.
    func request<T>(_ body: (EtcdClient.Waiting) throws -> T) throws -> T {
        do {
            return try body(client.waiting)
        } catch {
            throw storeError(error)
        }
    }

    func storeError(_ error: any Error) -> any Error {
        guard let error = error as? EtcdError else { return error }
        switch error.code {
        case .outcomeUnknown: return HAStoreError(.outcomeUnknown, path: path, "\(error.message)", underlying: error)
        case .unavailable: return HAStoreError(.io, path: path, "etcd cannot be reached: \(error.message)", underlying: error)
        case .rejected, .malformed: return HAStoreError(.io, path: path, "\(error.message)", underlying: error)
        }
    }

    public func read<T>(_ body: (any HAStoreBackendReading) throws -> T) throws -> T {
        try body(Snapshot(backend: self))
    }

    public func write<T>(_ body: (any HAStoreBackendWriting) throws -> T) throws -> T {
        for _ in 0..<Self.attempts {
            let transaction = Transaction(backend: self)
            let result = try body(transaction)
            if try transaction.commit() { return result }
        }
        throw HAStoreError(.busy, path: path, "a write kept conflicting with other writers \(Self.attempts) times")
    }

    public func clearStaleReaders() throws {}

    /// etcd keeps its own integrity (raft, checksummed storage); here: every member answers.
    public func integrityProblems() throws -> [String] {
        do {
            _ = try request { try $0.status() }
            return []
        } catch {
            return ["\(error)"]
        }
    }

    public func close() {
        if ownsClient { client.closeBlocking() }
    }
}

/// Reads at one revision of the cluster: the revision of the first read.
class Snapshot: HAStoreBackendReading {
    let backend: EtcdHAStoreBackend
    var revision: Int64?
    /// The keys read one by one, each with the mod revision it had (0: absent): a write commits
    /// only if each still has it.
    var readKeys: [[UInt8]: Int64] = [:]
    /// The ranges scanned, from their first key to where the scan stopped (exclusive): a write
    /// commits only if no key in them was written since the snapshot. (A key deleted from a
    /// scanned range meanwhile goes unnoticed: only a stale leader could delete it, and its own
    /// commit is refused by the leadership record it read.)
    var readRanges: [(start: [UInt8], end: [UInt8])] = []

    init(backend: EtcdHAStoreBackend) { self.backend = backend }

    func range(_ key: [UInt8], end: [UInt8]?, limit: Int64) throws -> EtcdRange {
        let found = try backend.request { try $0.range(key, rangeEnd: end, revision: revision, limit: limit) }
        if self.revision == nil { self.revision = found.revision }
        return found
    }

    func get(_ namespace: StoreNamespace, _ key: [UInt8]) throws -> [UInt8]? {
        let etcdKey = backend.etcdKey(namespace, key)
        let value = try range(etcdKey, end: nil, limit: 1).keyValues.first
        readKeys[etcdKey] = value?.modRevision ?? 0
        return value?.value
    }

    func scan(_ namespace: StoreNamespace, prefix: [UInt8], after: [UInt8]?, limit: Int) throws -> [StoreEntry] {
        let start = after.map { backend.etcdKey(namespace, $0) + [0] } ?? backend.etcdKey(namespace, prefix)
        let end = StoreKey.prefixUpperBound(backend.etcdKey(namespace, prefix)) ?? backend.etcdKey(namespace, [0xFF])
        let found = try range(start, end: end, limit: limit >= Int(Int32.max) ? 0 : Int64(limit))
        // What this scan saw: to its end, or to its last key when the limit cut it short.
        readRanges.append((start, found.more ? (found.keyValues.last!.key + [0]) : end))
        return found.keyValues.map { StoreEntry(key: Array($0.key[backend.keyOffset...]), value: $0.value) }
    }
}

/// A write's body runs against a snapshot, its writes kept in an overlay until the commit.
final class Transaction: Snapshot, HAStoreBackendWriting {
    /// Each written key's new value (nil: deleted), in the order of the first write to it.
    var overlay: [[UInt8]: [UInt8]?] = [:]
    var order: [[UInt8]] = []

    override func get(_ namespace: StoreNamespace, _ key: [UInt8]) throws -> [UInt8]? {
        let etcdKey = backend.etcdKey(namespace, key)
        if let written = overlay[etcdKey] { return written }
        return try super.get(namespace, key)
    }

    override func scan(_ namespace: StoreNamespace, prefix: [UInt8], after: [UInt8]?, limit: Int) throws -> [StoreEntry] {
        // The stored entries (enough of them to make up for this transaction's deletions), with
        // this transaction's writes over them, in key order.
        let deletions = overlay.values.filter { $0 == nil }.count
        let stored = try super.scan(namespace, prefix: prefix, after: after, limit: limit > Int.max - deletions ? Int.max : limit + deletions)
        var entries = Dictionary(stored.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
        let offset = backend.keyOffset
        for (etcdKey, value) in overlay where etcdKey.count >= offset && etcdKey[offset - 1] == namespace.number {
            let key = Array(etcdKey[offset...])
            guard key.starts(with: prefix) else { continue }
            if let after, !after.lexicographicallyPrecedes(key) { continue }
            entries[key] = value
        }
        return entries.map { StoreEntry(key: $0.key, value: $0.value) }.sorted { $0.key.lexicographicallyPrecedes($1.key) }
            .prefix(limit).map { $0 }
    }

    func put(_ namespace: StoreNamespace, _ key: [UInt8], _ value: [UInt8]) throws {
        let etcdKey = backend.etcdKey(namespace, key)
        if overlay.updateValue(value, forKey: etcdKey) == nil { order.append(etcdKey) }
    }

    func delete(_ namespace: StoreNamespace, _ key: [UInt8]) throws {
        let etcdKey = backend.etcdKey(namespace, key)
        if overlay.updateValue(nil, forKey: etcdKey) == nil { order.append(etcdKey) }
    }

    /// Commits the overlay if nothing read changed; false when something did (run the body again).
    func commit() throws -> Bool {
        guard !order.isEmpty else { return true }
        let size = order.reduce(0) { $0 + $1.count + ((overlay[$1] ?? nil)?.count ?? 0) + 16 }
        let limits = backend.limits
        guard size <= limits.requestBytes else {
            throw HAStoreError(
                .full, path: backend.path,
                "a transaction of about \(size) bytes is larger than etcd takes in one request (\(limits.requestBytes), its --max-request-bytes); nothing was written")
        }
        var compares = readKeys.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map {
            EtcdCompare.revision($0.key, .mod, .equal, $0.value)
        }
        if let revision {
            compares += readRanges.map { EtcdCompare.revision($0.start, .mod, .less, revision + 1, rangeEnd: $0.end) }
        }
        guard order.count <= limits.operations, compares.count <= limits.operations else {
            throw HAStoreError(
                .full, path: backend.path,
                "a transaction of \(order.count) writes and \(compares.count) comparisons is more than etcd takes in one (\(limits.operations), its --max-txn-ops); nothing was written")
        }
        let operations: [EtcdOperation] = order.map { key in
            if let value = overlay[key] ?? nil { .put(key: key, value: value, lease: nil) } else { .delete(key: key, rangeEnd: nil) }
        }
        return try backend.request { try $0.txn(compare: compares, success: operations).succeeded }
    }
}
