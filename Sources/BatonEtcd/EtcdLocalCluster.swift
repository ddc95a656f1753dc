public import BatonProcessControl
import BatonConfig
import Foundation
import Synchronization

/// A local etcd of one or three members on free loopback ports, each a real `etcd` process with
/// its data in `directory`, for development and tests. Timers are tuned for fast failover
/// (heartbeat 50 ms, election timeout 500 ms: a lease of 1 s is then safe), and its transactions
/// may carry `maxTxnOps` operations and `maxRequestBytes` bytes. `stop()` ends every member by
/// pid; the owner removes `directory`.
public final class EtcdLocalCluster: Sendable {
    public struct Member: Sendable {
        public var name: String
        public var clientURL: String
        public var peerURL: String
        public var process: ChildProcess
    }

    public let directory: String
    private let running: Mutex<[Member]>
    public var members: [Member] { running.withLock { $0 } }
    public var endpoints: [String] { members.map(\.clientURL) }

    /// The etcd executable: `BATON_ETCD` when set, else `etcd` on the PATH.
    public static var executable: String? {
        if let given = ProcessInfo.processInfo.environment["BATON_ETCD"], !given.isEmpty { return given }
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        return paths.map { "\($0)/etcd" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Where one member runs: its addresses, and the command it is started under (empty: run
    /// directly; `ip netns exec NS`: inside a host of its own).
    public struct Placement: Sendable {
        public var clientURL: String
        public var peerURL: String
        public var launcher: [String]
        public init(clientURL: String, peerURL: String, launcher: [String] = []) {
            self.clientURL = clientURL
            self.peerURL = peerURL
            self.launcher = launcher
        }
    }

    /// What one transaction may carry in the clusters this starts.
    public static let maxTxnOps = 65_536
    public static let maxRequestBytes = 32 << 20

    /// Local clusters of one process start two at a time: many etcd members electing and syncing
    /// at once on a small machine (tests run side by side) can keep each other from ever
    /// answering within a request's timeout.
    private static let starting = StartGate(width: 2)

    /// Starts `count` members (1 or 3) on free loopback ports and waits until every one answers
    /// as healthy.
    public convenience init(
        members count: Int, directory: String, heartbeatMillis: Int = 50, electionMillis: Int = 500, startTimeout: Duration = .seconds(60)
    ) async throws {
        guard count == 1 || count == 3 else { throw EtcdError(.unavailable, "a local etcd has 1 or 3 members, not \(count)") }
        try await self.init(
            placements: { Self.loopbackPlacements(count) }, directory: directory, heartbeatMillis: heartbeatMillis, electionMillis: electionMillis,
            startTimeout: startTimeout)
    }

    /// Starts one member inside each host of `hosts`, on the host's store address (client port
    /// 2379, peer port 2380), and waits until every one answers as healthy.
    public convenience init(on hosts: NetnsHosts, directory: String) async throws {
        try await self.init(
            placements: {
                hosts.hosts.map {
                    Placement(clientURL: "http://\($0.storeAddress):2379", peerURL: "http://\($0.storeAddress):2380", launcher: hosts.exec($0, []))
                }
            }, directory: directory)
    }

    /// Starts one member per placement (`placements` is asked again when a start must be retried
    /// because a port was taken) and waits until every one answers as healthy.
    public init(
        placements: () -> [Placement], directory: String, heartbeatMillis: Int = 50, electionMillis: Int = 500,
        startTimeout: Duration = .seconds(60)
    ) async throws {
        guard let executable = Self.executable else {
            throw EtcdError(.unavailable, "no etcd executable: install etcd-server (apt-get install etcd-server) or set BATON_ETCD")
        }
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let arguments = ["--heartbeat-interval", "\(heartbeatMillis)", "--election-timeout", "\(electionMillis)"]
        await Self.starting.enter()
        var attempt = 1
        while true {
            // A port found free may be taken by another process before etcd binds it: then the
            // members start again on new ports (a few times).
            let started = try Self.launch(placements(), executable: executable, directory: directory, extraArguments: arguments)
            do {
                try await Self.waitUntilHealthy(started, timeout: startTimeout)
                running = Mutex(started)
                break
            } catch {
                for member in started { member.process.kill() }
                let portTaken = started.contains { $0.process.log.contains("address already in use") }
                guard portTaken, attempt < 3 else {
                    await Self.starting.leave()
                    throw error
                }
                for member in started { try? FileManager.default.removeItem(atPath: "\(directory)/\(member.name).data") }
                attempt += 1
            }
        }
        await Self.starting.leave()
    }

    static func loopbackPlacements(_ count: Int) -> [Placement] {
        var ports = FreePort.Allocator()
        return (1...count).map { _ in Placement(clientURL: "http://127.0.0.1:\(ports.next())", peerURL: "http://127.0.0.1:\(ports.next())") }
    }

    /// Starts one member per placement, named `etcd1`, `etcd2`, ...
    private static func launch(_ placements: [Placement], executable: String, directory: String, extraArguments: [String]) throws -> [Member] {
        let addresses = placements.enumerated().map { ("etcd\($0.offset + 1)", $0.element.clientURL, $0.element.peerURL, $0.element.launcher) }
        let initialCluster = addresses.map { "\($0.0)=\($0.2)" }.joined(separator: ",")
        let token = "baton-\(UUID().uuidString.prefix(8))"
        var started: [Member] = []
        do {
            for (name, client, peer, launcher) in addresses {
                // Under a launcher (`ip netns exec NS`), etcd is its last argument before etcd's own.
                let (program, prefix) = launcher.isEmpty ? (executable, []) : ("/usr/bin/env", launcher + [executable])
                let process = try ChildProcess(
                    executable: program,
                    arguments: prefix + [
                        "--name", name, "--data-dir", "\(directory)/\(name).data",
                        "--listen-client-urls", client, "--advertise-client-urls", client,
                        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                        "--initial-cluster", initialCluster, "--initial-cluster-state", "new", "--initial-cluster-token", token,
                        "--max-txn-ops", "\(maxTxnOps)", "--max-request-bytes", "\(maxRequestBytes)",
                        "--logger", "zap", "--log-outputs", "stderr",
                    ] + extraArguments,
                    logPath: "\(directory)/\(name).log")
                started.append(Member(name: name, clientURL: client, peerURL: peer, process: process))
            }
        } catch {
            for member in started { member.process.kill() }
            throw error
        }
        return started
    }

    /// Waits until every member answers a status request and they agree on a raft leader.
    public func waitUntilHealthy(timeout: Duration) async throws {
        try await Self.waitUntilHealthy(members, timeout: timeout)
    }

    private static func waitUntilHealthy(_ members: [Member], timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        let clients = try members.map { try EtcdClient(endpoints: [$0.clientURL], requestTimeout: .seconds(2)) }
        var last = "no answer yet"
        while ContinuousClock.now < deadline {
            var leaders: Set<UInt64> = []
            var answered = 0
            for (member, client) in zip(members, clients) where member.process.isRunning {
                do {
                    let status = try await client.status()
                    answered += 1
                    if status.leader != 0 { leaders.insert(status.leader) }
                } catch {
                    last = "\(member.name): \(error)"
                }
            }
            if answered == members.count, leaders.count == 1 { return }
            if let dead = members.first(where: { !$0.process.isRunning }) {
                // Its fatal line says why (a port taken, a data folder in use); else the log's end.
                let log = dead.process.log
                let reason = log.split(separator: "\n").last { $0.contains("\"level\":\"fatal\"") }.map(String.init) ?? String(log.suffix(800))
                throw EtcdError(.unavailable, "etcd member \(dead.name) exited: \(reason)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw EtcdError(.unavailable, "the local etcd did not become healthy within \(timeout): \(last)")
    }

    /// Starts the member `name` again on its data, after its process ended (it rejoins the
    /// cluster as it was).
    public func restart(_ name: String) throws {
        try running.withLock { members in
            guard let index = members.firstIndex(where: { $0.name == name }) else {
                throw EtcdError(.unavailable, "no member \(name) in the local etcd")
            }
            members[index].process.kill()
            members[index].process = try members[index].process.relaunched(logPath: "\(directory)/\(name)-\(UInt32.random(in: 0...UInt32.max)).log")
        }
    }

    /// Ends every member (SIGTERM, then SIGKILL).
    public func stop() {
        for member in members { member.process.stop(timeout: .seconds(5)) }
    }
}

/// At most `width` holders at a time; the others wait in order.
actor StartGate {
    private let width: Int
    private var holders = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(width: Int) { self.width = width }

    func enter() async {
        if holders < width {
            holders += 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func leave() {
        if waiting.isEmpty {
            holders -= 1
        } else {
            waiting.removeFirst().resume()
        }
    }
}
