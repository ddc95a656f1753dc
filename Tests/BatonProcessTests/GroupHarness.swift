import BatonClient
import BatonConfig
import BatonCore
import BatonElection
import BatonEtcd
import BatonHAStore
import BatonHAStoreSelection
import BatonMemberLocks
import BatonStatus
import BatonProcessControl
import BatonTestKit
import BatonTLS
import Foundation

/// A master group of real `baton` processes in a temporary folder, for one test. `stop()` (call
/// it in `defer`) kills every process it started, by pid, and removes the folder.
final class GroupHarness: @unchecked Sendable {
    // @unchecked: used by one test at a time.
    let backend: String
    let directory: TemporaryDirectory
    let configPath: String
    let configuration: HAConfiguration
    private(set) var processes: [BatonProcess] = []
    /// For the etcd backend: the group's own etcd, in the folder (one member, or one per host).
    private let etcd: EtcdLocalCluster?
    /// When the group spans hosts: the network namespaces it runs in (a master and a task
    /// executor on each, an etcd member on each).
    let hosts: NetnsHosts?

    /// A group on a file backend (sqlite, lmdb).
    convenience init(
        backend: String, masters: Int = 3, lease: String = "1s", taskExecutors: Int = 0, slots: Int = 4, metrics: Bool = false,
        filesMode: String? = nil, tls: Bool = false
    ) throws {
        precondition(backend != "etcd", "a group on etcd is made with GroupHarness.make")
        let directory = try TemporaryDirectory("baton-group-test")
        try self.init(
            directory: directory, etcd: nil, hosts: nil, backend: backend,
            config: TestConfigs.group(
                backend: backend, masters: masters, lease: lease, taskExecutors: taskExecutors, slots: slots, metrics: metrics, tls: tls)
                + (filesMode.map { "files: { mode: \"\($0)\" }\n" } ?? ""))
    }

    /// A group across `count` hosts of this machine (network namespaces; needs root): on each an
    /// etcd member, a master and a task executor with `slots` slots; `startGroup()` runs
    /// `baton group --host` inside each.
    static func makeOnHosts(_ count: Int = 3, lease: String = "2s", slots: Int = 2) async throws -> GroupHarness {
        let directory = try TemporaryDirectory("baton-hosts-test")
        var hosts: NetnsHosts?
        var etcd: EtcdLocalCluster?
        do {
            let set = try NetnsHosts.create(count: count)
            hosts = set
            etcd = try await EtcdLocalCluster(on: set, directory: directory.file("etcd"))
            try SecretFile.create(at: directory.file("cluster.secret"))
            let config = MultiHostConfig.text(
                cluster: "test", hosts: set.hosts.map { .init(name: $0.name, address: $0.address) }, etcdEndpoints: etcd!.endpoints,
                prefix: "/test/", directory: directory.path, secretFile: directory.file("cluster.secret"), tlsDirectory: directory.file("tls"), lease: lease, renew: "200ms", heartbeatTimeout: "2s",
                slots: slots, restartDelay: "100ms")
            let group = try GroupHarness(directory: directory, etcd: etcd, hosts: set, backend: "etcd", config: config)
            try ClusterCertificates.issue(for: group.configuration, into: directory.file("tls"))
            return group
        } catch {
            etcd?.stop()
            hosts?.destroy()
            directory.remove()
            throw error
        }
    }

    /// A group on any backend; for etcd, a one-member etcd of its own is started in the folder.
    static func make(
        backend: String, masters: Int = 3, lease: String = "1s", taskExecutors: Int = 0, slots: Int = 4, metrics: Bool = false
    ) async throws -> GroupHarness {
        let directory = try TemporaryDirectory("baton-group-test")
        var etcd: EtcdLocalCluster?
        do {
            if backend == "etcd" { etcd = try await EtcdLocalCluster(members: 1, directory: directory.file("etcd")) }
            return try GroupHarness(
                directory: directory, etcd: etcd, hosts: nil, backend: backend,
                config: TestConfigs.group(
                    backend: backend, masters: masters, lease: lease, taskExecutors: taskExecutors, slots: slots, metrics: metrics,
                    etcdEndpoints: etcd?.endpoints ?? []))
        } catch {
            etcd?.stop()
            directory.remove()
            throw error
        }
    }

    private init(directory: TemporaryDirectory, etcd: EtcdLocalCluster?, hosts: NetnsHosts?, backend: String, config: String) throws {
        self.backend = backend
        self.directory = directory
        self.etcd = etcd
        self.hosts = hosts
        // Every test group has a REST token, as `baton init` makes it.
        try SecretFile.create(at: directory.file("rest.token"))
        configPath = try directory.write(config + "rest: { tokenFile: rest.token }\n", to: "ha.yaml")
        configuration = try HAConfiguration.load(path: configPath)
    }

    /// The REST token requests that change the cluster carry.
    var restToken: String { String(decoding: configuration.rest.token ?? [], as: UTF8.self) }

    /// Starts `baton group` on the config (on hosts: one inside each host, for its members).
    @discardableResult
    func startGroup(restart: Bool = true) throws -> BatonProcess {
        var arguments = ["group", "--config", configPath]
        if !restart { arguments.append("--no-restart") }
        guard let hosts else { return try start(arguments, log: "group.log") }
        var last: BatonProcess?
        for host in hosts.hosts { last = try startGroup(on: host, restart: restart) }
        return last!
    }

    /// Starts `baton group --host` inside `host`.
    @discardableResult
    func startGroup(on host: NetnsHosts.Host, restart: Bool = true) throws -> BatonProcess {
        var arguments = ["group", "--config", configPath, "--host", host.name]
        if !restart { arguments.append("--no-restart") }
        return try start(
            hosts!.exec(host, [BatonProcess.executable("baton")] + arguments), log: "group-\(host.name)-\(processes.count).log",
            executable: "/usr/bin/env")
    }

    /// The host the master `id` runs on.
    func host(ofMaster id: String) -> NetnsHosts.Host? {
        configuration.masters.first { $0.id.rawValue == id }?.host.flatMap { hosts?.host($0.rawValue) }
    }

    /// Starts one `baton master`.
    @discardableResult
    func startMaster(_ id: String) throws -> BatonProcess {
        try start(["master", "--config", configPath, "--id", id], log: "\(id)-\(processes.count).log")
    }

    @discardableResult
    func start(_ arguments: [String], log: String, executable: String = BatonProcess.executable("baton")) throws -> BatonProcess {
        let process = try BatonProcess(executable: executable, arguments: arguments, logPath: directory.file(log))
        processes.append(process)
        return process
    }

    /// Kills every member process (by the pids in the member locks) and every process started here.
    func stop() {
        for process in processes { process.stop(timeout: .seconds(5)) }
        let members = configuration.masters.map(\.id.identifier) + configuration.taskExecutors.map(\.id.identifier)
        let probes = (try? HAStoreSelection.liveness(configuration.store, election: configuration.election).probeBlocking(members)) ?? [:]
        for case .alive(let info) in probes.values {
            if let pid = info?.pid, info?.host == nil || info?.host == MemberProcessInfo.thisHost {
                kill(pid, SIGCONT)
                kill(pid, SIGKILL)
            }
        }
        etcd?.stop()
        hosts?.destroy()
        directory.remove()
    }

    func status() throws -> GroupStatus { try GroupStatus.read(configuration) }

    /// The status with the leader's live view (task executors, jobs).
    func liveStatus() async throws -> GroupStatus { try await GroupStatus.readLive(configuration) }

    /// Waits until `condition` holds for the live status.
    func waitLive(timeout: Duration = .seconds(30), _ condition: (GroupStatus) -> Bool) async -> GroupStatus? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = try? await liveStatus(), condition(status) { return status }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    /// Writes a job spec into the test folder and returns its path.
    func jobSpec(_ text: String, name: String) throws -> String { try directory.write(text, to: name) }

    /// The status once every master is up and a live leader is named, or nil after `timeout`.
    func waitForStableLeader(timeout: Duration = .seconds(30), newerThan epoch: UInt64 = 0) -> GroupStatus? {
        var result: GroupStatus?
        _ = eventually(timeout: timeout) {
            guard let status = try? status(), let leader = status.leader, leader.alive, leader.epoch > epoch,
                status.masters.allSatisfy({ $0.role != "down" }), status.masters.filter({ $0.role == "leader" }).count == 1
            else { return false }
            result = status
            return true
        }
        return result
    }

    /// The leadership record and the term journal, read with a read-only store.
    func journal() throws -> (LeadershipRecord?, [TermRecord]) {
        let store = try HAStoreSelection.open(configuration.store, access: .readOnly)
        return try (store.readLeadershipBlocking(), store.readBlocking { try $0.terms() })
    }

    /// The log lines of every process started here.
    var logs: String { processes.map(\.log).joined(separator: "\n") }
}
