public import BatonCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

extension HAConfiguration {
    /// The config of a run of its own (chaos, benchmarks): this config's masters, task
    /// executors, election, checkpoint, reconciliation, RPC and group settings, but a fresh store
    /// at `storePath`, checkpoints under `directory`, a fresh secret file and every address on
    /// a free loopback port, so that the run reads nothing an earlier one left and runs beside a
    /// group of this same config. `restartDelay` overrides `group.restartDelay`; `taskExecutors` replaces the config's task executors with that
    /// many (`te1`, `te2`, ... with `slotsPerTaskExecutor` slots each). On etcd the fresh store is
    /// a fresh random key prefix, on `etcdEndpoints` (default: the config's endpoints). With
    /// `hostAddresses` (host name -> address), members keep their hosts and listen on their
    /// host's address (a run across hosts of its own); without, every address is on loopback.
    ///
    /// Writes a fresh secret file, `directory/cluster.secret` (mode 0600), and returns the YAML
    /// text; write it to a file in `directory` and load it from there (`writeIsolated` does,
    /// and issues the run's own certificates when the copy has TLS).
    public func isolatedCopy(
        directory: String, backend: StoreConfiguration.Backend? = nil, storePath: String? = nil, etcdEndpoints: [String]? = nil,
        hostAddresses: [Identifier: String]? = nil, taskExecutors: Int? = nil, slotsPerTaskExecutor: Int = 2, restartDelay: Duration? = nil
    ) throws -> String {
        func placed(_ host: Identifier?) -> (address: String, key: String) {
            guard let hostAddresses, let host, let address = hostAddresses[host] else { return ("127.0.0.1", "") }
            return (address, "host: \(host), ")
        }
        let backend = backend ?? store.backend
        let storePath = storePath ?? "\(directory)/ha.\(backend == .lmdb ? "lmdb" : "sqlite")"
        var random = SystemRandomNumberGenerator()
        let secretFile = "\(directory)/cluster.secret"
        try SecretFile.create(at: secretFile)
        func duration(_ value: Duration) -> String { DurationText.format(value) }
        var ports = FreePort.Allocator()
        let storeLine: String
        switch backend {
        case .sqlite: storeLine = "store: { backend: sqlite, path: \"\(storePath)\", busyTimeout: \(duration(store.busyTimeout)) }"
        case .lmdb: storeLine = "store: { backend: lmdb, path: \"\(storePath)\", mapSize: \(store.mapSizeBytes) }"
        case .etcd:
            let endpoints = (etcdEndpoints ?? store.endpoints).map { "\"\($0)\"" }.joined(separator: ", ")
            let prefix = "/\(cluster)-run-\(String(random.next() as UInt64, radix: 16))/"
            // From another backend: the limits a local etcd of the benchmarks and tests runs with.
            let (operations, bytes) = store.backend == .etcd ? (store.maxTxnOps, store.maxRequestBytes) : (65_536, 32 << 20)
            storeLine = "store: { backend: etcd, endpoints: [\(endpoints)], prefix: \"\(prefix)\", maxTxnOps: \(operations), "
                + "maxRequestBytes: \(bytes) }"
        }
        // TLS as the original has it, and always across hosts: certificates of the run's own in
        // `<directory>/tls` (`HAConfiguration.writeIsolated` issues them).
        let tls = rpc.tlsDirectory != nil || hostAddresses != nil ? ", tls: { dir: \"\(directory)/tls\" }" : ""
        var lines = [
            "cluster: \(cluster)",
            storeLine,
            "election: { lease: \(duration(election.leaseDuration)), renew: \(duration(election.renewInterval)), poll: \(duration(election.pollInterval)) }",
            "group: { restartDelay: \(duration(restartDelay ?? group.restartDelay)) }",
            "rpc: { secretFile: \"\(secretFile)\", heartbeat: \(duration(rpc.heartbeatInterval)), heartbeatTimeout: \(duration(rpc.heartbeatTimeout)), "
                + "maxFrame: \(rpc.maxFrameBytes)\(tls) }",
            "reconciliation: { window: \(duration(reconciliationWindow)) }",
            "files: { mode: \"\(fileMode)\" }",
            "jobs: { history: { retain: \(jobHistoryRetain), maxAge: \(duration(jobHistoryMaxAge)) }, snapshotEvery: \(jobSnapshotEvery) }",
            "blockingResults: { memory: \(blockingResultMemoryBytes), dir: \"\(directory)/spill\" }",
            "checkpoints: { dir: \"\(directory)/checkpoints\", interval: \(duration(checkpoints.interval)), retain: \(checkpoints.retain), "
                + "timeout: \(duration(checkpoints.timeout)) }",
            "masters:",
        ]
        for master in masters {
            let (address, host) = placed(master.host)
            lines.append("  - { id: \(master.id), \(host)rpc: \"\(address):\(ports.next())\", rest: \"\(address):\(ports.next())\" }")
        }
        let executors: [(id: String, slots: Int, resources: ResourceProfile?, host: Identifier?)] =
            taskExecutors.map { count in (0..<count).map { ("te\($0 + 1)", slotsPerTaskExecutor, nil, nil) } }
            ?? self.taskExecutors.map { executor in
                let custom = executor.resources != TaskExecutorConfiguration.defaultResources(slots: executor.slots)
                return (executor.id.rawValue, executor.slots, custom ? executor.resources : nil, executor.host)
            }
        if !executors.isEmpty { lines.append("taskexecutors:") }
        for executor in executors {
            let resources = executor.resources.map { ", resources: \(Self.yaml($0))" } ?? ""
            let (address, host) = placed(executor.host)
            lines.append("  - { id: \(executor.id), \(host)slots: \(executor.slots), data: \"\(address):\(ports.next())\"\(resources) }")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A resource profile as the config's `resources` mapping.
    static func yaml(_ profile: ResourceProfile) -> String {
        var parts = [
            "cpu: \(Double(profile.cpuMillis) / 1000)", "taskHeap: \(ByteSizeText.format(UInt64(profile.taskHeapBytes)))",
            "managed: \(ByteSizeText.format(UInt64(profile.managedMemoryBytes)))",
            "network: \(ByteSizeText.format(UInt64(profile.networkMemoryBytes)))",
        ]
        if !profile.extended.isEmpty {
            parts.append("extended: { " + profile.extended.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + " }")
        }
        return "{ " + parts.joined(separator: ", ") + " }"
    }
}

/// Free TCP ports on loopback.
public enum FreePort {
    /// A TCP port on loopback that nothing listens on now (the kernel's choice of an ephemeral
    /// port). The port is free when this returns; a process that binds it later may still race
    /// another for it.
    public static func next() -> Int {
        while true {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            precondition(fd >= 0, "cannot open a socket to find a free port: errno \(errno)")
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let named = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
            let port = Int(UInt16(bigEndian: address.sin_port))
            if bound == 0, named == 0, port != 0 { return port }
        }
    }

    /// Free ports, none given twice (for the addresses of one config).
    public struct Allocator {
        private var given: Set<Int> = []
        public init() {}
        public mutating func next() -> Int {
            while true {
                let port = FreePort.next()
                if given.insert(port).inserted { return port }
            }
        }
    }
}
