public import BatonConfig
import BatonCore
import BatonElection
import BatonEtcd
import BatonHAStore
import BatonHAStoreSelection
import BatonMemberLocks
import BatonClient
import Foundation

/// A benchmark's own store, made fresh in its folder: a store file, or, for etcd, a one-member
/// etcd started there (on free loopback ports, with the tuned timers of a local cluster) and
/// stopped by `stop()`. Nothing an earlier run left is read.
struct BenchStore {
    let backend: HAConfiguration.StoreConfiguration.Backend
    let directory: String
    let storePath: String
    private let etcd: EtcdLocalCluster?

    static func start(_ backend: HAConfiguration.StoreConfiguration.Backend, in directory: String) async throws -> BenchStore {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let storePath = "\(directory)/ha.\(backend == .lmdb ? "lmdb" : "sqlite")"
        let etcd = backend == .etcd ? try await EtcdLocalCluster(members: 1, directory: "\(directory)/etcd") : nil
        return BenchStore(backend: backend, directory: directory, storePath: storePath, etcd: etcd)
    }

    /// Writes the config of the benchmark's group on this store to `path` and loads it:
    /// `configuration`'s masters and election settings, `taskExecutors` task executors, every
    /// address on a free port.
    @discardableResult
    func writeGroupConfig(_ configuration: HAConfiguration, taskExecutors: Int = 0, to path: String) throws -> HAConfiguration {
        try HAConfiguration.writeIsolated(
            configuration.isolatedCopy(
                directory: directory, backend: backend, storePath: storePath, etcdEndpoints: etcd?.endpoints, taskExecutors: taskExecutors,
                restartDelay: .milliseconds(100)),
            to: path)
    }

    /// This store alone, as a config's `store` (for a benchmark that opens it in-process).
    func storeConfiguration(_ configuration: HAConfiguration) throws -> HAConfiguration.StoreConfiguration {
        let path = "\(directory)/store-only.yaml"
        return try writeGroupConfig(configuration, to: path).store
    }

    func stop() { etcd?.stop() }
}

/// For a benchmark's group: whether every master is up and the leadership record's holder is the
/// live process of its member (one probe of every master per look).
struct LiveLeader {
    let masters: [Identifier]
    let liveness: any MemberLiveness

    init(_ configuration: HAConfiguration) throws {
        masters = configuration.masters.map(\.id.identifier)
        liveness = try HAStoreSelection.liveness(configuration.store, election: configuration.election)
    }

    /// The leadership record when every master is alive and its holder is the live process; nil otherwise.
    func record(in store: HAStore) throws -> LeadershipRecord? {
        let probes = try liveness.probeBlocking(masters)
        guard masters.allSatisfy({ if case .alive = probes[$0] { true } else { false } }),
            let record = try store.readLeadershipBlocking(), let holder = record.holder,
            case .alive(let info) = probes[holder.member.identifier], info?.incarnation == holder.incarnation
        else { return nil }
        return record
    }
}
