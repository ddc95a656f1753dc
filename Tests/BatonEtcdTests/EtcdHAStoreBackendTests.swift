import BatonEtcd
import BatonHAStore
import BatonHAStoreEtcd
import Foundation
import Synchronization
import Testing

/// Runs a backend's calls the way `HAStore` does: from a thread of its own (they wait on etcd).
/// Backends are not Sendable: each test hands its own to that one thread only.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    let thread = DedicatedThread(name: "etcd-backend-test")
    defer { thread.shutdown() }
    return try await thread.run(body)
}

func backend(_ cluster: EtcdLocalCluster, _ client: EtcdClient, prefix: String = "test/", limits: EtcdHAStoreBackend.Limits? = nil) -> EtcdHAStoreBackend {
    EtcdHAStoreBackend(
        client: client, prefix: prefix, location: "etcd://\(cluster.endpoints.joined(separator: ","))/\(prefix)",
        limits: limits ?? .init(requestBytes: EtcdLocalCluster.maxRequestBytes, operations: EtcdLocalCluster.maxTxnOps))
}

@Suite("HA store backend on etcd: snapshots and optimistic transactions", .serialized)
struct EtcdHAStoreBackendTests {
    @Test("writes land together, reads see them, scans go in key order within their namespace and prefix, keys of other prefixes stay apart")
    func keyValues() async throws {
        try await withLocalEtcd { cluster, client in
            nonisolated(unsafe) let store = backend(cluster, client)
            nonisolated(unsafe) let other = backend(cluster, client, prefix: "other/")
            let scanned = try await onThread {
                try store.write { writer in
                    for index: UInt8 in [5, 1, 3] { try writer.put(.checkpoints, [UInt8(ascii: "a"), index], [index]) }
                    try writer.put(.checkpoints, [UInt8(ascii: "b"), 1], [9])
                    try writer.put(.jobs, [UInt8(ascii: "a"), 1], [7])
                }
                try other.write { try $0.put(.checkpoints, [UInt8(ascii: "a"), 2], [2]) }
                return try store.read { reader in
                    (try reader.scan(.checkpoints, prefix: [UInt8(ascii: "a")], after: nil, limit: 10).map(\.value),
                     try reader.scan(.checkpoints, prefix: [UInt8(ascii: "a")], after: [UInt8(ascii: "a"), 1], limit: 1).map(\.value),
                     try reader.get(.jobs, [UInt8(ascii: "a"), 1]))
                }
            }
            #expect(scanned.0 == [[1], [3], [5]])
            #expect(scanned.1 == [[3]])
            #expect(scanned.2 == [7])
            let deleted = try await onThread {
                try store.write { try $0.delete(.checkpoints, [UInt8(ascii: "a"), 3]) }
                return try store.read { try $0.scan(.checkpoints, prefix: [], after: nil, limit: 10).map(\.key) }
            }
            #expect(deleted == [[UInt8(ascii: "a"), 1], [UInt8(ascii: "a"), 5], [UInt8(ascii: "b"), 1]])
        }
    }

    @Test("inside a write, its own writes are seen by gets and scans; a body that throws writes nothing")
    func overlayAndAtomicity() async throws {
        try await withLocalEtcd { cluster, client in
            nonisolated(unsafe) let store = backend(cluster, client)
            let seen = try await onThread {
                try store.write { try $0.put(.jobs, [1], [1]) }
                return try store.write { writer -> ([UInt8]?, [[UInt8]]) in
                    try writer.put(.jobs, [2], [2])
                    try writer.delete(.jobs, [1])
                    // Unbounded, as StoreReader.entries scans by default.
                    return (try writer.get(.jobs, [2]), try writer.scan(.jobs, prefix: [], after: nil, limit: .max).map(\.key))
                }
            }
            #expect(seen.0 == [2])
            #expect(seen.1 == [[2]])
            struct Abandon: Error {}
            let after = try await onThread { () -> [[UInt8]] in
                _ = try? store.write { writer in
                    try writer.put(.jobs, [3], [3])
                    throw Abandon()
                }
                return try store.read { try $0.scan(.jobs, prefix: [], after: nil, limit: 10).map(\.key) }
            }
            #expect(after == [[2]])
        }
    }

    @Test("a write whose read changed before it committed runs again on the new value: no update is lost")
    func conflictsRetry() async throws {
        try await withLocalEtcd { cluster, client in
            nonisolated(unsafe) let store = backend(cluster, client)
            nonisolated(unsafe) let interloper = backend(cluster, client)
            let runs = Mutex(0)
            let final = try await onThread { () -> [UInt8]? in
                try store.write { try $0.put(.jobs, [0], [10]) }
                try store.write { writer in
                    let value = try writer.get(.jobs, [0])!
                    // Another writer changes the key between this read and this commit, once.
                    if runs.withLock({ $0 += 1; return $0 }) == 1 {
                        try interloper.write { try $0.put(.jobs, [0], [value[0] + 5]) }
                    }
                    try writer.put(.jobs, [0], [value[0] + 1])
                }
                return try store.read { try $0.get(.jobs, [0]) }
            }
            #expect(runs.withLock { $0 } == 2)
            #expect(final == [16])
        }
    }

    @Test("a read sees one revision of the cluster, whatever is written between its reads")
    func snapshots() async throws {
        try await withLocalEtcd { cluster, client in
            nonisolated(unsafe) let store = backend(cluster, client)
            nonisolated(unsafe) let writer = backend(cluster, client)
            let seen = try await onThread { () -> ([UInt8]?, [UInt8]?) in
                try store.write { try $0.put(.jobs, [1], [1]) }
                return try store.read { reader in
                    let first = try reader.get(.jobs, [1])
                    try writer.write { try $0.put(.jobs, [1], [2]) }
                    return (first, try reader.get(.jobs, [1]))
                }
            }
            #expect(seen.0 == [1])
            #expect(seen.1 == [1])
        }
    }

    @Test("a write larger than etcd takes, in bytes or operations, is refused whole, saying which limit")
    func limits() async throws {
        try await withLocalEtcd { cluster, client in
            nonisolated(unsafe) let store = backend(cluster, client, limits: .init(requestBytes: 10_000, operations: 4))
            let tooLarge = await #expect(throws: HAStoreError.self) {
                try await onThread { try store.write { try $0.put(.jobs, [1], [UInt8](repeating: 7, count: 20_000)) } }
            }
            #expect(tooLarge?.code == .full)
            #expect(tooLarge?.message.contains("--max-request-bytes") == true)
            let tooMany = await #expect(throws: HAStoreError.self) {
                try await onThread { try store.write { writer in for key: UInt8 in 0..<5 { try writer.put(.jobs, [key], [key]) } } }
            }
            #expect(tooMany?.message.contains("--max-txn-ops") == true)
            let stored = try await onThread { try store.read { try $0.scan(.jobs, prefix: [], after: nil, limit: 10).count } }
            #expect(stored == 0)
        }
    }

    @Test("a write etcd received and never answered is an HA store outcomeUnknown; a read that reaches no member is an I/O error naming etcd")
    func unansweredWrites() async throws {
        let silent = SilentListener()
        nonisolated(unsafe) let store = EtcdHAStoreBackend(
            client: try EtcdClient(endpoints: ["http://127.0.0.1:\(silent.port)"], requestTimeout: .milliseconds(300)), prefix: "t/",
            location: "etcd://silent/t/")
        let write = await #expect(throws: HAStoreError.self) {
            try await onThread {
                try store.write { writer in
                    _ = try writer.get(.jobs, [1])
                    try writer.put(.jobs, [1], [1])
                }
            }
        }
        // The body's read went unanswered first: a read moves on to the next member, and there is none.
        #expect(write?.code == .io)
        #expect(write?.message.contains("etcd cannot be reached") == true)
        let blind = await #expect(throws: HAStoreError.self) {
            try await onThread { try store.write { try $0.delete(.jobs, [1]) } }
        }
        // A write that reads nothing: its transaction was sent and not answered.
        #expect(blind?.code == .outcomeUnknown)
    }
}
