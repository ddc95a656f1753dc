public import BatonConfig
import BatonCore
import BatonElection
import BatonExecutionGraph
import BatonHAStore
import BatonHAStoreSelection
public import BatonJobMaster
import BatonJobGraph
import BatonJobManager
import BatonStoreRecords
import BatonResourceManager
import BatonSimulation
import BatonOperators
import BatonProcessControl
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Master failover with a running job: its own group (the config's masters and election
/// settings, two task executors, a fresh store, free ports) runs a streaming keyed count with
/// checkpoints; the leader is killed with SIGKILL N times. Per kill: the time from the kill to a
/// new leader in the store, to reconciliation done (its journal entry), and to the next completed
/// checkpoint. At the end the job is stopped (its input ended, drained), and the figures are its
/// task restarts and the records its sources emitted twice: from each source attempt's recorded
/// range (`SourceRanges`), what overlapping attempts covered again. With `--takeover
/// restart-all` (a new leader restarts every task, as Flink does) both are above 0.
public struct FailoverBenchmark: Sendable {
    public struct Result: Codable, Sendable, Hashable {
        public var backend: String
        public var kills: Int
        public var electedMillis: LatencySummary
        public var reconciledMillis: LatencySummary
        public var nextCheckpointMillis: LatencySummary
        public var taskRestarts: Int
        public var reprocessedRecords: Int
        /// Kills after which the job was not reconciled within the timeout.
        public var failedKills: Int
        /// The takeover policy of the run's masters.
        public var takeover: String
    }

    public var configuration: HAConfiguration
    public var backend: HAConfiguration.StoreConfiguration.Backend
    public var kills: Int
    public var takeover: TakeoverPolicy
    public var executable: String
    public var progress: @Sendable (String) -> Void
    /// Ended runs (and change records per run) written into the store before the group starts:
    /// the history of a cluster that has run for a while.
    public var endedJobs = 0
    public var changesPerEndedJob = 0
    /// Change records the streaming job wrote before the first kill: a job that has run for
    /// long, its tasks failing and restarting (its snapshots and compaction as the leader made them).
    public var runningJobChanges = 0

    /// What `bench recovery` prints beside the failover figures.
    public struct Measures: Sendable {
        /// `baton status` (a process, with the leader's live view) before each kill, end to end.
        public var statusMillis: [Double] = []
        /// The leader's resident memory before each kill.
        public var leaderRssBytes: [Int] = []
        /// The store's files at the end (0 on etcd, which keeps no file here).
        public var storeBytes = 0
        /// The change records the store held for the streaming job before the first kill (those
        /// after its snapshot), and how many its history wrote.
        public var storedChangeRecords = 0
        public var writtenChangeRecords = 0
    }

    public init(
        configuration: HAConfiguration, backend: HAConfiguration.StoreConfiguration.Backend, kills: Int, takeover: TakeoverPolicy = .reconcile,
        executable: String, progress: @escaping @Sendable (String) -> Void
    ) {
        self.configuration = configuration
        self.backend = backend
        self.kills = kills
        self.takeover = takeover
        self.executable = executable
        self.progress = progress
    }

    static let job: JobID = "failover-bench"

    public func run() async throws -> Result { try await runMeasured().0 }

    public func runMeasured() async throws -> (Result, Measures) {
        var measures = Measures()
        let time = SystemTimeSource()
        let workspace = try TemporaryDirectory("baton-bench-failover")
        defer { workspace.remove() }
        let directory = workspace.path
        let benchStore = try await BenchStore.start(backend, in: directory)
        defer { benchStore.stop() }
        let configPath = "\(directory)/bench.yaml"
        let bench = try benchStore.writeGroupConfig(configuration, taskExecutors: 2, to: configPath)
        let storePath = bench.store.path
        if endedJobs > 0 { try await Self.writeHistory(bench.store, endedJobs: endedJobs, changesPerJob: changesPerEndedJob) }
        let spec = "\(directory)/failover-bench.yaml"
        try jobSpec(output: "\(directory)/out").write(toFile: spec, atomically: true, encoding: .utf8)
        if runningJobChanges > 0 {
            let started = ContinuousClock.now
            measures.writtenChangeRecords = try await Self.writeRunningJob(
                bench, graph: try JobSpec.load(path: spec), changeRecords: runningJobChanges)
            let held = try HAStoreSelection.open(bench.store, access: .readOnly, time: time)
            measures.storedChangeRecords = try held.readBlocking { try StoredChanges.read(of: Self.job, in: $0).tail.count }
            progress(
                String(
                    format: "the running job's history: %d change records written, %d left after its snapshot (%.1f s)", measures.writtenChangeRecords,
                    measures.storedChangeRecords, (ContinuousClock.now - started).milliseconds / 1000))
        }
        // A job the history left running is taken over, not submitted again.
        let group = try ChildProcess(
            executable: executable,
            arguments: ["group", "--config", configPath, "--log-level", "warning"] + (runningJobChanges > 0 ? [] : ["--submit", spec])
                + (takeover == .reconcile ? [] : ["--takeover", takeover.rawValue]),
            logPath: "\(directory)/group.log")
        defer { group.stop(timeout: .seconds(10)) }
        let liveLeader = try LiveLeader(bench)
        var store: HAStore?
        var elected: [Double] = []
        var reconciled: [Double] = []
        var nextCheckpoint: [Double] = []
        var failed = 0
        var lastEpoch: UInt64 = 0
        for kill in 1...max(kills, 1) {
            // Every master up; the job running with a checkpoint completed under the current leader.
            let ready = await waitUntil(timeout: .seconds(60)) {
                if store == nil { store = try? HAStoreSelection.open(bench.store, access: .readOnly, time: time) }
                guard let store, let record = try liveLeader.record(in: store), record.epoch.rawValue >= lastEpoch else { return false }
                if lastEpoch == 0 {
                    return try !store.readBlocking { try CheckpointRecords.read($0, job: Self.job) }.completed.isEmpty
                }
                let key = ReconciliationRecord.key(epoch: record.epoch)
                return try store.readBlocking { try $0.value(ReconciliationRecord.self, .reconciliations, key) }?.nextCheckpointAt != nil
            }
            guard ready, let store, let before = try store.readLeadershipBlocking(), let holder = before.holder else {
                throw BenchmarkFailure(message: "the group was not ready within 60 s; see \(directory)/group.log")
            }
            // `baton status` as a user runs it, end to end (a process of its own: this one holds
            // the store open, and an LMDB store opens once per process).
            let asked = ContinuousClock.now
            let status = try ChildProcess(
                executable: executable, arguments: ["status", "--config", configPath, "--json"], logPath: "\(directory)/status.log")
            if status.wait(timeout: .seconds(30)), status.exitStatus == 0 {
                measures.statusMillis.append((ContinuousClock.now - asked).milliseconds)
            } else {
                status.stop()
            }
            if let rss = Self.residentBytes(holder.pid) { measures.leaderRssBytes.append(rss) }
            let start = time.monotonicNow()
            Glibc.kill(holder.pid, SIGKILL)
            var electedAt: MonotonicInstant?
            var reconciledAt: MonotonicInstant?
            var checkpointAt: MonotonicInstant?
            var epoch = before.epoch
            while time.monotonicNow().since(start) < .seconds(20), checkpointAt == nil {
                if electedAt == nil, let record = try? store.readLeadershipBlocking(), record.epoch > before.epoch, record.holder != nil {
                    electedAt = time.monotonicNow()
                    epoch = record.epoch
                }
                if electedAt != nil {
                    let key = ReconciliationRecord.key(epoch: epoch)
                    let entry = try? store.readBlocking { try $0.value(ReconciliationRecord.self, .reconciliations, key) }
                    if reconciledAt == nil, entry?.reconciledAt != nil { reconciledAt = time.monotonicNow() }
                    if entry?.nextCheckpointAt != nil { checkpointAt = time.monotonicNow() }
                }
                usleep(electedAt == nil ? 200 : 1000)
            }
            lastEpoch = epoch.rawValue
            guard let electedAt, let reconciledAt, let checkpointAt else {
                failed += 1
                progress("kill \(kill)/\(kills): not reconciled with a new checkpoint within 20 s")
                continue
            }
            elected.append(electedAt.since(start).milliseconds)
            reconciled.append(reconciledAt.since(start).milliseconds)
            nextCheckpoint.append(checkpointAt.since(start).milliseconds)
            progress(
                String(
                    format: "kill %d/%d: %@ (epoch %llu) -> elected %.1f ms, reconciled %.1f ms, next checkpoint %.1f ms", kill, kills,
                    holder.member.rawValue, before.epoch.rawValue, elected.last!, reconciled.last!, nextCheckpoint.last!))
        }
        // End the input: every source attempt records its range.
        let stop = try ChildProcess(
            executable: executable, arguments: ["stop", "--config", configPath, Self.job.rawValue, "--wait"], logPath: "\(directory)/stop.log")
        let stopped = await waitUntil(timeout: .seconds(60)) { !stop.isRunning }
        guard stopped, stop.exitStatus == 0 else {
            stop.stop()
            throw BenchmarkFailure(message: "the job did not finish after its input ended; see \(directory)/stop.log and \(directory)/group.log")
        }
        guard let restarts = try? store?.readBlocking({ try JobKeys.restarts(of: Self.job, in: $0) }) else {
            throw BenchmarkFailure(message: "the job's restart count could not be read from \(storePath)")
        }
        measures.storeBytes = ["", "-wal", "-shm", "-lock"].reduce(0) { total, suffix in
            total + ((try? FileManager.default.attributesOfItem(atPath: storePath + suffix)[.size] as? Int) ?? 0)
        }
        let graph = try JobSpec.load(path: spec)
        let ranges = try SourceRanges.read(SourceRanges.directory(checkpoints: bench.checkpoints.directory, job: Self.job.rawValue))
        let result = Result(
            backend: backend.rawValue, kills: kills, electedMillis: LatencySummary(elected), reconciledMillis: LatencySummary(reconciled),
            nextCheckpointMillis: LatencySummary(nextCheckpoint), taskRestarts: restarts,
            reprocessedRecords: try SourceRanges.reemittedRecords(ranges, graph: graph), failedKills: failed, takeover: takeover.rawValue)
        return (result, measures)
    }

    /// Writes `endedJobs` ended runs into a fresh store, as the leader leaves them: each run's
    /// summary in the history and its change records (a one-task job's states).
    static func writeHistory(_ store: HAConfiguration.StoreConfiguration, endedJobs: Int, changesPerJob: Int) async throws {
        let handle = try HAStoreSelection.open(store, access: .readWrite)
        let now = SystemTimeSource().wallNow()
        let states: [ExecutionState] = [.scheduled, .deploying, .initializing, .running, .finished]
        for first in stride(from: 0, to: endedJobs, by: 500) {
            let last = min(endedJobs, first + 500)
            try await handle.unfencedWrite { writer in
                for index in first..<last {
                    let id = JobID(rawValue: "ended-\(index)")!
                    let summary = JobSummary(
                        id: id, run: 1, name: "ended \(index)", state: .finished, submittedAt: now, endedAt: now, restarts: 0, failure: nil,
                        lastCheckpoint: nil)
                    try writer.put(.jobHistory, JobKeys.run(id, 1), summary)
                    let attempt = ExecutionAttemptID(vertex: ExecutionVertexID(jobVertex: 0, subtask: 0), attempt: 0)
                    for sequence in 0..<changesPerJob {
                        let change = ExecutionGraphChange.state(attempt, states[sequence % states.count], nil)
                        try writer.put(.executionGraphs, JobKeys.change(id, UInt64(sequence)), bytes: ChangeRecord.value(epoch: Epoch(1), change))
                    }
                }
            }
        }
    }

    /// Writes the history of the streaming job into a fresh store: what the leader wrote while it
    /// ran the job on the config's task executors, its tasks failing and restarting, until
    /// `changeRecords` change records were written (`LongRunningHistory`). Checkpoint records
    /// are left out (their folders do not exist here); the job is left RUNNING, to be taken over.
    static func writeRunningJob(_ configuration: HAConfiguration, graph: JobGraph, changeRecords: Int) async throws -> Int {
        let handle = try HAStoreSelection.open(configuration.store, access: .readWrite)
        let executors = configuration.taskExecutors.map { TaskExecutorResources(id: $0.id, total: $0.resources, defaultSlots: $0.slots) }
        var chunks: [[(epoch: Epoch, writes: [JobManager.StoreWrite])]] = []
        let made = try LongRunningHistory.write(
            job: graph, taskExecutors: executors, changeRecords: changeRecords, snapshotEvery: configuration.jobSnapshotEvery
        ) { chunk in chunks.append(chunk) }
        for chunk in chunks {
            try await handle.unfencedWrite { writer in
                for (epoch, writes) in chunk {
                    for write in writes {
                        switch write {
                        case .checkpointCounter, .checkpointCompleted, .restore: continue
                        default: try write.apply(to: writer, epoch: epoch)
                        }
                    }
                }
            }
        }
        return made.changeRecords
    }

    /// VmRSS of a process, from /proc.
    static func residentBytes(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return nil }
        return kib * 1024
    }

    private func jobSpec(output: String) -> String {
        """
        id: failover-bench
        scheduling: eager
        failover: region
        restart: { strategy: failure-rate, failures: 100, interval: 10s, delay: 100ms }
        checkpoints: { interval: 200ms }
        vertices:
          - id: source
            parallelism: 2
            operators:
              - sequence: { from: 0, keys: 64, rate: 5000 }
          - id: count
            parallelism: 2
            operators:
              - count
              - file-sink: { path: "\(output)", exactly-once: true }
        edges:
          - { from: source, to: count, pattern: hash, key: key, result: pipelined }
        """
    }

    private func waitUntil(timeout: Duration, _ condition: () async throws -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if (try? await condition()) == true { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }
}
