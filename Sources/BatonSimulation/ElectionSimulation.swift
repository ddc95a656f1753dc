import BatonCore
public import BatonElection

/// A deterministic simulation of a master group's election: candidates running the real
/// `LeaderElection` instances against an in-memory store that applies the real `LeadershipRules`,
/// with member locks, store latency, and faults (kill -9, SIGSTOP/SIGCONT) drawn from a seed.
/// The same seed gives the same history.
///
/// It models what the shells do: each candidate carries out its actions one at a time, awaiting
/// each store operation (ticks and death reports wait meanwhile); a standby's watcher takes the
/// watched member's lock as soon as it is free and keeps it until the candidate has acted on the
/// report; a member restarts only when its lock is free; a paused process does nothing, and on
/// waking first handles what completed while it slept, then a tick.
///
/// Checked after every event (invariant I1 and liveness):
/// - one holder per epoch, epochs 1, 2, 3, ... in the journal;
/// - every accepted renewal or term end carries the current epoch and comes from its holder;
/// - at most one running candidate acts as leader, and it holds the store's current epoch;
/// - when a candidate has been running for long enough, a leader exists within
///   lease + 2 × poll + 4 × the largest store latency + 2 ticks + the watcher's re-check.
public struct ElectionSimulation: Sendable {
    public struct Configuration: Sendable {
        public var seed: UInt64
        public var candidates: Int = 3
        public var duration: Duration = .seconds(60)
        public var election = LeaderElection.Configuration(
            leaseDuration: .seconds(2), renewInterval: .milliseconds(500), pollInterval: .milliseconds(500))
        public var tickInterval: Duration = .milliseconds(10)
        /// Store latency in milliseconds, drawn for applying an operation and again for its reply.
        public var storeLatencyMillis: ClosedRange<Int> = 0...5
        /// Time between faults, in milliseconds.
        public var faultIntervalMillis: ClosedRange<Int> = 300...2_000
        public var restartDelayMillis: ClosedRange<Int> = 50...500
        public var pauseMillis: ClosedRange<Int> = 300...5_000
        /// Chance (percent) that a fault is a kill rather than a pause.
        public var killPercent: Int = 60

        public init(seed: UInt64) { self.seed = seed }
    }

    public struct Report: Sendable {
        public var seed: UInt64
        public var terms: [TermRecord]
        public var violations: [String]
        public var kills = 0
        public var pauses = 0
        /// The longest time without an acting leader while some candidate could have led, in ms.
        public var longestLeaderlessMillis: Double = 0
        /// A line per notable event, for reproducing a failure.
        public var history: [String]
    }

    public let configuration: Configuration
    public init(_ configuration: Configuration) { self.configuration = configuration }

    public func run() -> Report {
        var cluster = ClusterConfiguration(seed: configuration.seed)
        cluster.masters = configuration.candidates
        cluster.duration = configuration.duration
        cluster.election = configuration.election
        cluster.tickInterval = configuration.tickInterval
        cluster.storeLatencyMillis = configuration.storeLatencyMillis
        cluster.faultIntervalMillis = configuration.faultIntervalMillis
        cluster.restartDelayMillis = configuration.restartDelayMillis
        cluster.pauseMillis = configuration.pauseMillis
        cluster.killPercent = configuration.killPercent
        cluster.electionFaults = true
        cluster.leadersRunJobManager = false
        var world = ClusterWorld(cluster)
        world.run()
        return Report(
            seed: configuration.seed, terms: world.store.terms.keys.sorted().map { world.store.terms[$0]! },
            violations: world.violations.map(\.message), kills: world.counts.kills, pauses: world.counts.pauses,
            longestLeaderlessMillis: world.longestLeaderlessMillis, history: world.history)
    }
}
