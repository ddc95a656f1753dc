/// The config of a group whose members run on several hosts: on each host one master and one task
/// executor, all on the host's address, over an etcd with a member per host. What
/// `tools/netns-hosts create --config-out` writes, and what the multi-host tests run.
public enum MultiHostConfig {
    public struct Host: Sendable {
        public var name: String
        /// The address the host's members listen on.
        public var address: String
        public init(name: String, address: String) {
            self.name = name
            self.address = address
        }
    }

    /// The YAML text. `directory` holds the checkpoints (storage every host sees: here the one
    /// machine's file system; on real machines a shared mount); `secretFile` is the cluster's
    /// secret file (every host needs a copy, mode 0600); `tlsDirectory` the TLS folder (`baton
    /// certs` writes it; each host needs `ca.pem` and its members' files).
    public static func text(
        cluster: String = "hosts", hosts: [Host], etcdEndpoints: [String], prefix: String = "/baton/hosts/", directory: String,
        secretFile: String, tlsDirectory: String, lease: String = "2s", renew: String = "500ms", poll: String = "100ms", heartbeatTimeout: String = "5s",
        slots: Int = 2, restartDelay: String = "1s"
    ) -> String {
        var lines = [
            "cluster: \(cluster)",
            "store: { backend: etcd, endpoints: [\(etcdEndpoints.map { "\"\($0)\"" }.joined(separator: ", "))], prefix: \(prefix), "
                + "maxTxnOps: 65536, maxRequestBytes: 32MiB }",
            "election: { lease: \(lease), renew: \(renew), poll: \(poll) }",
            "group: { restartDelay: \(restartDelay) }",
            "rpc: { secretFile: \"\(secretFile)\", tls: { dir: \"\(tlsDirectory)\" }, heartbeat: 500ms, heartbeatTimeout: \(heartbeatTimeout) }",
            "checkpoints: { dir: \"\(directory)/checkpoints\", interval: 1s, retain: 3 }",
            "blockingResults: { dir: \"\(directory)/spill\" }",
            "masters:",
        ]
        for (index, host) in hosts.enumerated() {
            lines.append("  - { id: m\(index + 1), host: \(host.name), rpc: \"\(host.address):6123\", rest: \"\(host.address):8081\" }")
        }
        lines.append("taskexecutors:")
        for (index, host) in hosts.enumerated() {
            lines.append("  - { id: te\(index + 1), host: \(host.name), slots: \(slots), data: \"\(host.address):6200\" }")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
