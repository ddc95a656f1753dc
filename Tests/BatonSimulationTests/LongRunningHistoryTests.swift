import BatonCore
import BatonExecutionGraph
import BatonJobMaster
import BatonJobGraph
import BatonJobManager
import BatonResourceManager
import BatonSimulation
import Testing

@Suite("the history of a long-running job (bench recovery)")
struct LongRunningHistoryTests {
    static func job(_ restart: RestartStrategySpec) throws -> JobGraph {
        var builder = JobGraphBuilder(
            id: "long", configuration: JobConfiguration(scheduling: .eager, failover: .region, restart: restart, checkpointInterval: .milliseconds(200)))
        builder.addVertex("source", operators: [.sequence(keys: 64)], parallelism: 2)
        builder.addVertex("count", operators: [.count()], parallelism: 2)
        builder.connect("source", to: "count", .hash, key: "key")
        return try builder.build()
    }

    static let executors = (1...2).map {
        TaskExecutorResources(id: ResourceID(rawValue: "te\($0)")!, total: ResourceProfile(cpuMillis: 2000, taskHeapBytes: 2 << 30), defaultSlots: 2)
    }

    @Test("the leader's writes hold the change records asked for, numbered without gaps, with a snapshot every N and the job left running")
    func writesAsTheLeader() throws {
        var changes: [UInt64] = []
        var snapshots: [UInt64] = []
        var lastJobState: String?
        let made = try LongRunningHistory.write(
            job: try Self.job(.failureRate(failures: 100, interval: .seconds(10), delay: .milliseconds(100))), taskExecutors: Self.executors,
            changeRecords: 5_000, snapshotEvery: 500
        ) { chunk in
            for (epoch, writes) in chunk {
                #expect(epoch == Epoch(1))
                for write in writes {
                    switch write {
                    case .change(_, let sequence, _): changes.append(sequence)
                    case .snapshot(_, let snapshot): snapshots.append(snapshot.log.next)
                    case .job(let record): lastJobState = record.state.rawValue
                    default: break
                    }
                }
            }
        }
        #expect(made.changeRecords == changes.count && changes.count >= 5_000)
        #expect(changes == Array(0..<UInt64(changes.count)))
        #expect(snapshots.count >= 9 && zip([0] + snapshots, snapshots).allSatisfy { $1 - $0 >= 500 })
        #expect(lastJobState == "RUNNING")
    }

    @Test("a job whose restart strategy ends it cannot make a long history: a clear error")
    func jobThatEnds() throws {
        #expect(throws: SimulationFailure.self) {
            try LongRunningHistory.write(
                job: try Self.job(.fixedDelay(attempts: 20, delay: .milliseconds(100))), taskExecutors: Self.executors, changeRecords: 100_000,
                snapshotEvery: 500
            ) { _ in }
        }
    }
}
