import BatonAudit
import BatonCore
import BatonCheckpointing
import BatonElection
import BatonExecutionGraph
import BatonJobGraph
public import BatonJobMaster
import BatonJobManager
import BatonResourceManager
import BatonStoreRecords

/// `baton simulate`: a whole HA cluster under faults drawn from one seed. Three masters elect a
/// leader over a simulated store; the leader's JobManager runs a streaming job with an
/// exactly-once sink on three task executors, taking checkpoints; the faults (leader crash,
/// leader pause past its lease, standby crash, task executor crash, store stall, slow links
/// whose messages overtake others, a broken connection) come one after another, then the
/// cluster runs quietly until the job must be running again with a fresh checkpoint.
///
/// Checked on every run: I1 (one acting leader holding the store's epoch, after every event;
/// the audit's term and write checks), I2 (the audit's restart-by-master-failover), I3 (the
/// audit's checkpoint checks), I4 (every sink commit follows exactly what was committed before:
/// no record twice, none skipped), and liveness (a leader, the job running, a checkpoint after
/// the last fault). I5 (durability of a commit) is a property of the real stores, tested on them.
public enum HASimulation {
    public struct Run: Sendable, Hashable {
        public var seed: UInt64
        public var faults: Int
        public var faultsByKind: [FaultKind: Int]
        public var failovers: Int
        /// Commits the sinks made, and checkpoints completed (evidence that the run did work).
        public var sinkCommits: Int
        public var checkpoints: Int
        public var violations: [SimulationViolation]
        /// Virtual time the run covered.
        public var simulatedMillis: Int64
        /// A line per notable event (kept when asked).
        public var history: [String]
    }

    /// The cluster and the job a seed draws, with `faults` faults to come.
    public static func configuration(seed: UInt64, faults: Int, takeover: TakeoverPolicy = .reconcile) -> ClusterConfiguration {
        var random = SeededRandom(seed: seed ^ 0x9E37_79B9_7F4A_7C15)
        var configuration = ClusterConfiguration(seed: seed)
        configuration.masters = 3
        configuration.takeover = takeover
        configuration.randomFaults = faults
        configuration.faultIntervalMillis = 700...1_500
        configuration.checkpointInterval = .milliseconds(Int.random(in: 100...300, using: &random))
        // Snapshots and compaction every few records, so that takeovers read snapshot and tail.
        configuration.snapshotEvery = Int.random(in: 3...40, using: &random)
        configuration.taskExecutors = (1...3).map { index in
            let slots = Int.random(in: 2...4, using: &random)
            return TaskExecutorResources(
                id: ResourceID(rawValue: "te\(index)")!, total: ResourceProfile(cpuMillis: Int64(slots) * 1000, taskHeapBytes: Int64(slots) << 30),
                defaultSlots: slots)
        }
        let parallelism = Int.random(in: 2...3, using: &random)
        let keyed = Bool.random(using: &random)
        var builder = JobGraphBuilder(
            id: "sim", configuration: JobConfiguration(scheduling: .eager, failover: .region, restart: .fixedDelay(attempts: 1_000, delay: .milliseconds(50))))
        builder.addVertex("source", operators: [.sequence()], parallelism: parallelism)
        builder.addVertex("sink", operators: [.fileSink("sim/out")], parallelism: parallelism)
        if keyed {
            builder.connect("source", to: "sink", .hash, key: "key")
        } else {
            builder.connect("source", to: "sink", .forward)
        }
        configuration.jobs = [(try! builder.build(), at: .milliseconds(100))]
        // The faults come from 2 s on; then the cluster runs quietly for long enough to reconcile,
        // restart what was lost and complete checkpoints.
        let faultWindow = 2_000 + faults * configuration.faultIntervalMillis.upperBound
        let quiet = Int(configuration.reconciliationWindow.milliseconds) + 6_000
        configuration.duration = .milliseconds(faultWindow + quiet)
        configuration.keepsHistory = false
        return configuration
    }

    /// Runs one seed.
    public static func run(seed: UInt64, faults: Int, takeover: TakeoverPolicy = .reconcile, keepHistory: Bool = false) -> Run {
        var configuration = configuration(seed: seed, faults: faults, takeover: takeover)
        configuration.keepsHistory = keepHistory
        return run(configuration)
    }

    /// Runs a configured cluster and checks it.
    public static func run(_ configuration: ClusterConfiguration) -> Run {
        var world = ClusterWorld(configuration)
        world.run()
        var violations = world.violations
        let audit = Audit.check(world.store.auditHistory, retain: configuration.retainedCheckpoints)
        for violation in audit.violations {
            violations.append(SimulationViolation(invariant: Audit.invariants[violation.kind] ?? "-", kind: violation.kind, message: violation.message))
        }
        violations += world.livenessViolations()
        return Run(
            seed: configuration.seed, faults: world.counts.total, faultsByKind: world.counts.byKind, failovers: world.failovers,
            sinkCommits: world.sinks.commits, checkpoints: world.store.auditHistory.jobs.map(\.history.completed.count).reduce(0, +),
            violations: violations, simulatedMillis: Int64(configuration.duration.milliseconds), history: world.history)
    }
}

extension ClusterWorld {
    /// At the end of a run, after the quiet period: a leader, every job running, and a checkpoint
    /// of every checkpointing job completed after the last fault.
    func livenessViolations() -> [SimulationViolation] {
        var found: [SimulationViolation] = []
        func flag(_ kind: String, _ message: String) {
            found.append(SimulationViolation(invariant: "liveness", kind: kind, message: "at the end (\(millis) ms): \(message)"))
        }
        guard let index = readyLeader, let manager = masters[index].leader?.manager else {
            flag("no-leader", "no leader has taken over the jobs")
            return found
        }
        for (graph, _) in configuration.jobs {
            guard let master = manager.dispatcher.job(graph.id) else {
                flag("job-not-running", "job \(graph.id) is not in the leader's Dispatcher")
                continue
            }
            let running = master.graph.allVertices.allSatisfy { master.graph.execution($0).state == .running }
            if !running || master.state != .running {
                flag("job-not-running", "job \(graph.id) is \(master.state), its tasks \(master.graph.stateCounts)")
            }
            let latest = store.latestCheckpoint(of: graph.id)
            if let latest, UInt64(max(0, latest.completedAt.millisecondsSince1970)) * 1_000_000 < lastFaultAt {
                flag("no-checkpoint-after-faults", "job \(graph.id)'s latest checkpoint \(latest.id) completed before the last fault")
            } else if latest == nil {
                flag("no-checkpoint-after-faults", "job \(graph.id) has no completed checkpoint")
            }
        }
        return found
    }
}

extension HASimulation {
    /// What `baton simulate --json` prints: the same seeds give the same bytes (`seconds` is the
    /// virtual time simulated, not the time the run took).
    public struct Summary: Codable, Sendable, Hashable {
        public struct Violation: Codable, Sendable, Hashable {
            public var seed: UInt64
            public var invariant: String
            public var kind: String
            public var message: String
            /// The command that replays the run.
            public var replay: String
        }

        public var runs: Int
        public var faults: Int
        public var faultsByKind: [String: Int]
        public var failovers: Int
        public var checkpoints: Int
        public var sinkCommits: Int
        public var violations: [Violation]
        public var seconds: Double
    }

    /// The command that replays one seed.
    public static func replayCommand(seed: UInt64, faults: Int, takeover: TakeoverPolicy) -> String {
        "baton simulate --seed \(seed) --faults \(faults)" + (takeover == .reconcile ? "" : " --takeover \(takeover.rawValue)")
    }

    /// Runs every seed (in parallel, `width` at a time) and sums them up in seed order.
    public static func sweep(seeds: [UInt64], faults: Int, takeover: TakeoverPolicy, width: Int) async -> (Summary, [Run]) {
        var runs: [Run] = []
        await withTaskGroup(of: [Run].self) { group in
            let lanes = max(1, width)
            for lane in 0..<lanes {
                let mine = seeds.enumerated().filter { $0.offset % lanes == lane }.map(\.element)
                group.addTask { mine.map { run(seed: $0, faults: faults, takeover: takeover) } }
            }
            for await part in group { runs += part }
        }
        runs.sort { $0.seed < $1.seed }
        var byKind: [String: Int] = [:]
        for run in runs { for (kind, count) in run.faultsByKind { byKind[kind.rawValue, default: 0] += count } }
        let summary = Summary(
            runs: runs.count, faults: runs.map(\.faults).reduce(0, +), faultsByKind: byKind, failovers: runs.map(\.failovers).reduce(0, +),
            checkpoints: runs.map(\.checkpoints).reduce(0, +), sinkCommits: runs.map(\.sinkCommits).reduce(0, +),
            violations: runs.flatMap { run in
                run.violations.map {
                    Summary.Violation(
                        seed: run.seed, invariant: $0.invariant, kind: $0.kind, message: $0.message,
                        replay: replayCommand(seed: run.seed, faults: faults, takeover: takeover))
                }
            },
            seconds: Double(runs.map(\.simulatedMillis).reduce(0, +)) / 1000)
        return (summary, runs)
    }
}
