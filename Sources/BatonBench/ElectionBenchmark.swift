public import BatonConfig
import BatonCore
import BatonElection
import BatonHAStore
import BatonHAStoreSelection
import BatonProcessControl
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `baton bench election`: crash failover time and durable fenced commit latency on one backend.
///
/// - Commits: in a fresh store, the benchmark wins a term and makes `commits` fenced write
///   transactions of one small record each (the shape of a checkpoint-metadata or execution-state
///   write), timing each from begin to durable commit.
/// - Failover: it runs `baton group` on a copy of the config's masters and election settings with a
///   fresh store, and `kills` times: waits until every master is up, kills the leader with SIGKILL,
///   and polls the store until a new leader with a higher epoch is readable, timing kill to readable.
public struct ElectionBenchmark: Sendable {
    public struct Result: Codable, Sendable, Hashable {
        public var backend: String
        public var kills: Int
        public var failoverMillis: LatencySummary
        public var commitMicros: LatencySummary
        public var commitsPerSecond: Double
        public var commits: Int
        public var leaseMillis: Double
        /// Kills after which no new leader appeared within the timeout.
        public var failedKills: Int
    }

    public var configuration: HAConfiguration
    public var backend: HAConfiguration.StoreConfiguration.Backend
    public var kills: Int
    public var commits: Int
    /// The `baton` binary that runs the group.
    public var executable: String
    public var progress: @Sendable (String) -> Void

    public init(
        configuration: HAConfiguration, backend: HAConfiguration.StoreConfiguration.Backend, kills: Int, commits: Int,
        executable: String, progress: @escaping @Sendable (String) -> Void
    ) {
        self.configuration = configuration
        self.backend = backend
        self.kills = kills
        self.commits = commits
        self.executable = executable
        self.progress = progress
    }

    public func run() async throws -> Result {
        let workspace = try TemporaryDirectory("baton-bench-election")
        defer { workspace.remove() }
        let time = SystemTimeSource()
        let (commitSamples, commitSeconds) = try await measureCommits(in: workspace.path + "/commits", time: time)
        progress("commits: \(commits) in \(String(format: "%.2f", commitSeconds)) s")
        let (failovers, failed) = try await measureFailovers(in: workspace.path + "/failover", time: time)
        return Result(
            backend: backend.rawValue, kills: kills, failoverMillis: LatencySummary(failovers),
            commitMicros: LatencySummary(commitSamples),
            commitsPerSecond: commitSeconds > 0 ? Double(commitSamples.count) / commitSeconds : 0, commits: commitSamples.count,
            leaseMillis: configuration.election.leaseDuration.milliseconds, failedKills: failed)
    }

    // MARK: commits

    private func measureCommits(in directory: String, time: SystemTimeSource) async throws -> ([Double], Double) {
        let benchStore = try await BenchStore.start(backend, in: directory)
        defer { benchStore.stop() }
        let store = try HAStoreSelection.open(try benchStore.storeConfiguration(configuration), access: .readWrite, time: time)
        var random = SystemRandomNumberGenerator()
        let identity = LeaderIdentity(member: "bench", incarnation: .random(using: &random), address: "-", pid: getpid())
        guard
            case .won(let victory) = try await store.campaign(
                as: identity, expecting: .vacant(epoch: .none), leaseMillis: 60_000, now: time.wallNow())
        else { throw HAStoreError(.io, path: store.path, "the benchmark could not win a term in its own fresh store") }
        let epoch = victory.record.epoch
        // The loop runs on the store's thread, as the master's loop does.
        return try await withTaskExecutorPreference(store.executor) {
            try await timeCommits(store: store, epoch: epoch, time: time)
        }
    }

    private func timeCommits(store: HAStore, epoch: Epoch, time: SystemTimeSource) async throws -> ([Double], Double) {
        let payload = [UInt8](repeating: 0x5A, count: 64)
        func commit(_ index: Int, _ prefix: String = "bench/") async throws {
            try await store.write(fencedBy: epoch) { writer in
                try writer.put(.checkpoints, StoreKey.text(prefix) + StoreKey.uint64(UInt64(index)), bytes: payload)
            }
        }
        for index in 0..<min(100, commits) { try await commit(index, "warm-up/") }
        var samples: [Double] = []
        samples.reserveCapacity(commits)
        let start = time.monotonicNow()
        for index in 0..<commits {
            let begin = time.monotonicNow()
            try await commit(index)
            samples.append(time.monotonicNow().since(begin).microseconds)
        }
        let seconds = time.monotonicNow().since(start).milliseconds / 1000
        try await store.relinquish(epoch: epoch, reason: .resigned, now: time.wallNow())
        return (samples, seconds)
    }

    // MARK: failovers

    private func measureFailovers(in directory: String, time: SystemTimeSource) async throws -> ([Double], Int) {
        let benchStore = try await BenchStore.start(backend, in: directory)
        defer { benchStore.stop() }
        let configPath = "\(directory)/bench.yaml"
        let benchConfiguration = try benchStore.writeGroupConfig(configuration, to: configPath)
        let storePath = benchConfiguration.store.path
        let group = try ChildProcess(
            executable: executable, arguments: ["group", "--config", configPath, "--log-level", "warning"],
            logPath: "\(directory)/group.log")
        defer { group.stop(timeout: .seconds(10)) }
        let liveLeader = try LiveLeader(benchConfiguration)

        var samples: [Double] = []
        var failed = 0
        var store: HAStore?
        for kill in 1...max(kills, 0) {
            // Every master up, and a live leader.
            let ready = try await waitUntil(timeout: .seconds(30), time: time) {
                if store == nil { store = try? HAStoreSelection.open(benchConfiguration.store, access: .readOnly, time: time) }
                guard let store else { return false }
                return try liveLeader.record(in: store) != nil
            }
            guard ready, let store, let before = try store.readLeadershipBlocking(), let holder = before.holder else {
                throw HAStoreError(.io, path: storePath, "the group did not elect a leader within 30 s; see \(directory)/group.log")
            }
            let start = time.monotonicNow()
            Glibc.kill(holder.pid, SIGKILL)
            var elected: MonotonicInstant?
            while time.monotonicNow().since(start) < .seconds(10) {
                if let record = try? store.readLeadershipBlocking(), record.epoch > before.epoch, record.holder != nil {
                    elected = time.monotonicNow()
                    break
                }
                usleep(200)
            }
            if let elected {
                let millis = elected.since(start).milliseconds
                samples.append(millis)
                progress("kill \(kill)/\(kills): \(holder.member) (pid \(holder.pid), epoch \(before.epoch)) -> new leader in \(String(format: "%.1f", millis)) ms")
            } else {
                failed += 1
                progress("kill \(kill)/\(kills): no new leader within 10 s")
            }
        }
        return (samples, failed)
    }

    private func waitUntil(timeout: Duration, time: SystemTimeSource, _ condition: () throws -> Bool) async throws -> Bool {
        let start = time.monotonicNow()
        while time.monotonicNow().since(start) < timeout {
            if try condition() { return true }
            try await Task.sleep(for: .milliseconds(5))
        }
        return false
    }
}
