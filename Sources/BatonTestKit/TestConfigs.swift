import BatonConfig

/// Configs that tests write into their temporary folders.
public enum TestConfigs {
    /// A group of `masters` masters on `backend`, with a short lease so that tests run fast, every
    /// address on a free loopback port (tests run side by side); with `tls`, RPC and REST over
    /// TLS with the certificates in the config's `tls` folder (`baton certs` writes them).
    public static func group(
        backend: String, masters: Int = 3, lease: String = "1s", renew: String = "200ms", poll: String = "100ms",
        restartDelay: String = "100ms", taskExecutors: Int = 0, slots: Int = 4, heartbeatTimeout: String = "2s", metrics: Bool = false,
        etcdEndpoints: [String] = [], tls: Bool = false
    ) -> String {
        var ports = FreePort.Allocator()
        let store =
            backend == "etcd"
            ? "store: { backend: etcd, endpoints: [\(etcdEndpoints.map { "\"\($0)\"" }.joined(separator: ", "))], prefix: /test/, "
                + "maxTxnOps: 65536, maxRequestBytes: 32MiB }"
            : "store: { backend: \(backend), path: data/ha.\(backend) }"
        var lines = [
            "cluster: test",
            store,
            "election: { lease: \(lease), renew: \(renew), poll: \(poll) }",
            "group: { restartDelay: \(restartDelay) }",
            "rpc: { secret: test-cluster-secret, heartbeat: 200ms, heartbeatTimeout: \(heartbeatTimeout)\(tls ? ", tls: { dir: tls }" : "") }",
            "masters:",
        ]
        for index in 1...masters {
            lines.append("  - { id: m\(index), rpc: \"127.0.0.1:\(ports.next())\", rest: \"127.0.0.1:\(ports.next())\" }")
        }
        if taskExecutors > 0 {
            lines.append("taskexecutors:")
            for index in 1...taskExecutors {
                let metricsAddress = metrics ? ", metrics: \"127.0.0.1:\(ports.next())\"" : ""
                lines.append("  - { id: te\(index), slots: \(slots), data: \"127.0.0.1:\(ports.next())\"\(metricsAddress) }")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
