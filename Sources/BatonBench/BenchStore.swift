public import BatonConfig
import BatonCore
import BatonEtcd
import BatonHAStoreSelection
import BatonMemberLocks
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

    /// The config of the benchmark's group on this store: `configuration`'s masters and election
    /// settings, `taskExecutors` task executors, every address on a free port.
    func groupConfig(_ configuration: HAConfiguration, taskExecutors: Int = 0) throws -> String {
        try configuration.isolatedCopy(
            directory: directory, backend: backend, storePath: storePath, etcdEndpoints: etcd?.endpoints, taskExecutors: taskExecutors,
            restartDelay: .milliseconds(100))
    }

    /// This store alone, as a config's `store` (for a benchmark that opens it in-process).
    func storeConfiguration(_ configuration: HAConfiguration) throws -> HAConfiguration.StoreConfiguration {
        let path = "\(directory)/store-only.yaml"
        try groupConfig(configuration).write(toFile: path, atomically: true, encoding: .utf8)
        return try HAConfiguration.load(path: path).store
    }

    func stop() { etcd?.stop() }

    /// Whether every one of `members` is alive, and the leader's live process is the record's holder.
    static func alive(_ members: [Identifier], in configuration: HAConfiguration) -> Bool {
        guard let liveness = try? HAStoreSelection.liveness(configuration.store, election: configuration.election),
            let probes = try? liveness.probeBlocking(members)
        else { return false }
        return members.allSatisfy { if case .alive = probes[$0] { true } else { false } }
    }

    /// Whether `holder`'s process is the live one of its member.
    static func holderAlive(_ member: Identifier, incarnation: Incarnation, in configuration: HAConfiguration) -> Bool {
        guard let liveness = try? HAStoreSelection.liveness(configuration.store, election: configuration.election),
            case .alive(let info) = try? liveness.probeBlocking([member])[member]
        else { return false }
        return info?.incarnation == incarnation
    }
}
