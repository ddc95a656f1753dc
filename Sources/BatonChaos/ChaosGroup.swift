public import BatonConfig
import BatonCore
import BatonEtcd
public import BatonProcessControl
import BatonClient
import Foundation
import Synchronization

/// The master group a chaos run starts inside its report folder: one `baton group` on this
/// machine, or, when the config places members on hosts, hosts of its own (network namespaces),
/// an etcd member on each and a `baton group --host` inside each. `stop()` ends every process and
/// removes the hosts.
final class ChaosGroup: Sendable {
    /// The run's config file and what it holds.
    let configPath: String
    let configuration: HAConfiguration
    /// The hosts, by the config's host names (empty: no hosts).
    let hosts: [Identifier: NetnsHosts.Host]
    private let hostSet: NetnsHosts?
    private let etcd: EtcdLocalCluster?
    private let groups = Mutex<[String: ChildProcess]>([:])
    private let executable: String
    private let groupArguments: [String]
    private let directory: String

    /// Starts the group of `configuration` (an isolated copy of it) in `directory`.
    static func start(
        _ configuration: HAConfiguration, in directory: String, executable: String, groupArguments: [String]
    ) async throws -> ChaosGroup {
        let configPath = "\(directory)/chaos.yaml"
        guard !configuration.hosts.isEmpty else {
            let copy = try HAConfiguration.writeIsolated(configuration.isolatedCopy(directory: directory), to: configPath)
            let group = try ChaosGroup(
                configPath: configPath, configuration: copy, hosts: [:], hostSet: nil, etcd: nil, executable: executable, groupArguments: groupArguments,
                directory: directory)
            try group.startGroup(on: nil)
            return group
        }
        let set = try NetnsHosts.create(count: configuration.hosts.count)
        var etcd: EtcdLocalCluster?
        do {
            etcd = try await EtcdLocalCluster(on: set, directory: "\(directory)/etcd")
            let hosts = Dictionary(uniqueKeysWithValues: zip(configuration.hosts, set.hosts))
            let copy = try HAConfiguration.writeIsolated(
                configuration.isolatedCopy(
                    directory: directory, backend: .etcd, etcdEndpoints: etcd!.endpoints, hostAddresses: hosts.mapValues(\.address)),
                to: configPath)
            let group = try ChaosGroup(
                configPath: configPath, configuration: copy, hosts: hosts, hostSet: set, etcd: etcd, executable: executable, groupArguments: groupArguments,
                directory: directory)
            for name in configuration.hosts { try group.startGroup(on: name) }
            return group
        } catch {
            etcd?.stop()
            set.destroy()
            throw error
        }
    }

    private init(
        configPath: String, configuration: HAConfiguration, hosts: [Identifier: NetnsHosts.Host], hostSet: NetnsHosts?, etcd: EtcdLocalCluster?, executable: String,
        groupArguments: [String], directory: String
    ) throws {
        self.configPath = configPath
        self.configuration = configuration
        self.hosts = hosts
        self.hostSet = hostSet
        self.etcd = etcd
        self.executable = executable
        self.groupArguments = groupArguments
        self.directory = directory
    }

    /// Where the group logs are (one per host on hosts).
    var logs: String { hosts.isEmpty ? "\(directory)/group.log" : "\(directory)/group-*.log" }

    /// Starts (again) the group of `host` (nil: the one group).
    func startGroup(on host: Identifier?) throws {
        let arguments = ["group", "--config", configPath, "--log-level", "info"] + groupArguments
        let process: ChildProcess
        if let host, let hostSet, let place = hosts[host] {
            process = try ChildProcess(
                executable: "/usr/bin/env", arguments: hostSet.exec(place, [executable] + arguments + ["--host", host.rawValue]),
                logPath: "\(directory)/group-\(host)-\(UInt32.random(in: 0...UInt32.max)).log")
        } else {
            process = try ChildProcess(executable: executable, arguments: arguments, logPath: "\(directory)/group.log")
        }
        let previous = groups.withLock { $0.updateValue(process, forKey: host?.rawValue ?? "") }
        previous?.kill()
    }

    /// The host of the master `id`, when members are on hosts.
    func host(ofMaster id: String) -> Identifier? { configuration.masters.first { $0.id.rawValue == id }?.host }

    /// Sends `signal` to every process of `host`.
    func signalAll(on host: Identifier, _ signal: Int32) {
        guard let hostSet, let place = hosts[host] else { return }
        hostSet.signalAll(on: place, signal)
    }

    /// Cuts (or restores) both links of `host`.
    func setLinks(of host: Identifier, up: Bool) throws {
        guard let hostSet, let place = hosts[host] else { return }
        if up { try hostSet.restore(place) } else { try hostSet.cut(place) }
    }

    /// A host whose every process was killed starts again: its etcd member on its data, its group.
    func restartHost(_ host: Identifier) throws {
        guard let etcd, let index = configuration.hosts.firstIndex(of: host) else { return }
        try etcd.restart("etcd\(index + 1)")
        try startGroup(on: host)
    }

    /// Ends every process and removes the hosts.
    func stop() {
        for process in groups.withLock({ Array($0.values) }) { process.stop(timeout: .seconds(15)) }
        etcd?.stop()
        hostSet?.destroy()
    }
}
