public import BatonCore

public import BatonJobGraph
public import BatonJobManager
public import BatonResourceManager
import BatonJobMaster

/// The store history of a streaming job that has run for a long time, made by the one glue every
/// simulation shares: one master's JobManager runs the job on the task executors while its tasks
/// fail at random and restart, until the leader has written `changeRecords` change records
/// (snapshots and compaction included, as `snapshotEvery` says). `transactions` receives what the
/// leader wrote, transaction by transaction in order, with its epoch, in chunks, to be written
/// into a real store; the job is left RUNNING.
public enum LongRunningHistory {
    public static func write(
        job: JobGraph, taskExecutors: [TaskExecutorResources], changeRecords: Int, snapshotEvery: Int, seed: UInt64 = 1,
        transactions: (_ chunk: [(epoch: Epoch, writes: [JobManager.StoreWrite])]) throws -> Void
    ) throws -> (simulatedMillis: Int64, changeRecords: Int) {
        var configuration = ClusterConfiguration(seed: seed)
        configuration.masters = 1
        configuration.taskExecutors = taskExecutors
        configuration.jobs = [(job, at: .milliseconds(100))]
        configuration.snapshotEvery = snapshotEvery
        configuration.randomTaskFailurePercentPerSecond = 100
        configuration.tickInterval = .milliseconds(100)
        configuration.storeLatencyMillis = 0...0
        configuration.networkLatencyMillis = 0...0
        configuration.taskStepMillis = 1...1
        configuration.checkpointInterval = .seconds(3600)
        configuration.keepsHistory = false
        var world = ClusterWorld(configuration)
        world.store.keepsAcceptedWrites = true
        // In slices of a simulated minute, handing over what was written after each.
        while world.store.changeRecordsWritten < changeRecords {
            world.configuration.duration = .nanoseconds(Int64(world.now)) + .seconds(60)
            world.configuration.stopAfterChangeRecords = changeRecords
            world.resume()
            try transactions(world.store.takeAcceptedTransactions())
            if world.now > ClusterWorld.ms(1_000), world.store.latestJobRecord(job.id).map({ $0.state.isTerminal }) ?? true {
                throw SimulationFailure("job \(job.id) ended after \(world.store.changeRecordsWritten) change records: its restart strategy must allow a long life")
            }
        }
        return (Int64(world.millis), world.store.changeRecordsWritten)
    }
}
