public import BatonConfig
import BatonCore
import BatonJobMaster

/// Failover on a cluster that has run for a while: for each size of history (ended runs, each
/// with its change records, written into the store as the leader leaves them), the failover
/// benchmark's group with a streaming job, the leader killed with SIGKILL several times. What a
/// long-running cluster must keep: kill to reconciled, status, the leader's memory and the store's
/// size bounded by what runs now, not by everything that ever ran.
public struct RecoveryBenchmark: Sendable {
    public struct Row: Codable, Sendable, Hashable {
        public var backend: String
        public var endedJobs: Int
        /// Change records written: the ended jobs' and the running job's.
        public var changeRecords: Int
        /// The running job's change records written, and those the store held before the first
        /// kill (after its snapshot).
        public var runningJobChangeRecords: Int
        public var storedRunningJobChangeRecords: Int
        public var storeBytes: Int
        public var reconciledMillis: LatencySummary
        public var statusMillis: LatencySummary
        public var leaderRssBytes: Int
        public var failedKills: Int
    }

    public var configuration: HAConfiguration
    public var backend: HAConfiguration.StoreConfiguration.Backend
    public var endedJobs: Int
    public var changesPerJob: Int
    /// Change records the running job wrote before the first kill.
    public var runningJobChanges = 0
    public var kills: Int
    public var executable: String
    public var progress: @Sendable (String) -> Void

    public init(
        configuration: HAConfiguration, backend: HAConfiguration.StoreConfiguration.Backend, endedJobs: Int, changesPerJob: Int, kills: Int,
        executable: String, progress: @escaping @Sendable (String) -> Void
    ) {
        self.configuration = configuration
        self.backend = backend
        self.endedJobs = endedJobs
        self.changesPerJob = changesPerJob
        self.kills = kills
        self.executable = executable
        self.progress = progress
    }

    public func run() async throws -> Row {
        var failover = FailoverBenchmark(
            configuration: configuration, backend: backend, kills: kills, takeover: .reconcile, executable: executable, progress: progress)
        failover.endedJobs = endedJobs
        failover.changesPerEndedJob = changesPerJob
        failover.runningJobChanges = runningJobChanges
        let (result, measures) = try await failover.runMeasured()
        return Row(
            backend: backend.rawValue, endedJobs: endedJobs, changeRecords: endedJobs * changesPerJob + measures.writtenChangeRecords,
            runningJobChangeRecords: measures.writtenChangeRecords, storedRunningJobChangeRecords: measures.storedChangeRecords, storeBytes: measures.storeBytes,
            reconciledMillis: result.reconciledMillis, statusMillis: LatencySummary(measures.statusMillis),
            leaderRssBytes: measures.leaderRssBytes.max() ?? 0, failedKills: result.failedKills)
    }
}
