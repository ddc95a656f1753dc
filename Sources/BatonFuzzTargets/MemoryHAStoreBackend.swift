import BatonHAStore

/// An HA store backend in memory, one sorted map per namespace: what the `store-values` target
/// and the seeds open an `HAStore` on, so that the store's own writer seals the values and its
/// own readers verify and decode them, at memory speed and without a file.
///
/// Guarantees (the backend contract's, for one process): a write transaction's changes become
/// visible when its body returns and are dropped when it throws; a read sees the state at its
/// start; scans are in ascending key order. Not guaranteed: durability (nothing outlives the
/// process) or use by more than one process. Not thread-safe, as the contract allows: `HAStore`
/// calls it from its one thread.
final class MemoryHAStoreBackend: HAStoreBackend {
    let path: String
    private var namespaces: [UInt8: [[UInt8]: [UInt8]]] = [:]

    init(path: String) { self.path = path }

    func read<T>(_ body: (any HAStoreBackendReading) throws -> T) throws -> T {
        try body(Transaction(namespaces: namespaces))
    }

    func write<T>(_ body: (any HAStoreBackendWriting) throws -> T) throws -> T {
        let transaction = Transaction(namespaces: namespaces)
        let result = try body(transaction)
        namespaces = transaction.namespaces
        return result
    }

    func clearStaleReaders() throws {}

    func integrityProblems() throws -> [String] { [] }

    func close() {}

    /// One transaction: a copy of the maps, written back by `write` when its body returns.
    private final class Transaction: HAStoreBackendWriting {
        var namespaces: [UInt8: [[UInt8]: [UInt8]]]

        init(namespaces: [UInt8: [[UInt8]: [UInt8]]]) { self.namespaces = namespaces }

        func get(_ namespace: StoreNamespace, _ key: [UInt8]) throws -> [UInt8]? { namespaces[namespace.number]?[key] }

        func scan(_ namespace: StoreNamespace, prefix: [UInt8], after: [UInt8]?, limit: Int) throws -> [StoreEntry] {
            let entries = namespaces[namespace.number] ?? [:]
            let keys = entries.keys.filter { key in
                key.starts(with: prefix) && after.map { $0.lexicographicallyPrecedes(key) } ?? true
            }
            return keys.sorted { $0.lexicographicallyPrecedes($1) }.prefix(max(0, limit)).map { StoreEntry(key: $0, value: entries[$0]!) }
        }

        func put(_ namespace: StoreNamespace, _ key: [UInt8], _ value: [UInt8]) throws {
            namespaces[namespace.number, default: [:]][key] = value
        }

        func delete(_ namespace: StoreNamespace, _ key: [UInt8]) throws {
            namespaces[namespace.number]?[key] = nil
        }
    }
}
