public import BatonConfig
public import BatonTLS
public import Foundation
import BatonCore

extension ClusterCertificates {
    /// Who needs a certificate in a group's config: every master (its RPC and REST hosts), every
    /// task executor (its data and metrics hosts), and the clients (`client`).
    public static func holders(of configuration: HAConfiguration) -> [Member] {
        configuration.masters.map { Member(id: $0.id.rawValue, role: "master", hosts: [$0.rpc.host, $0.rest.host]) }
            + configuration.taskExecutors.map {
                Member(id: $0.id.rawValue, role: "task-executor", hosts: [$0.data.host] + ($0.metrics.map { [$0.host] } ?? []))
            }
            + [Member(id: HAConfiguration.clientIdentity, role: "client", hosts: [])]
    }

    /// A new set for every holder of the config, written into `directory` (see `write(to:)`).
    /// - Returns: the ids issued to.
    @discardableResult
    public static func issue(
        for configuration: HAConfiguration, into directory: String, now: Date = Date(), validity: TimeInterval = 365 * 86_400
    ) throws -> [String] {
        let holders = holders(of: configuration)
        try make(cluster: configuration.cluster.rawValue, members: holders, now: now, validity: validity).write(to: directory)
        return holders.map(\.id)
    }
}

extension HAConfiguration {
    /// Writes a run's own config (`isolatedCopy`'s text) to `path`, loads it, and, when it names
    /// a TLS folder that holds no certificates yet, issues a set of the run's own into it.
    public static func writeIsolated(_ text: String, to path: String) throws -> HAConfiguration {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let configuration = try HAConfiguration.load(path: path)
        if let directory = configuration.rpc.tlsDirectory, !FileManager.default.fileExists(atPath: directory + "/" + ClusterCertificates.authorityFile) {
            try ClusterCertificates.issue(for: configuration, into: directory)
        }
        return configuration
    }
}
