import BatonCheckpointing
import BatonCore
import BatonConfig
import BatonDataPlane
import BatonElection
import BatonExecutionGraph
import BatonFiles
import BatonHAStore
import BatonHAStoreSelection
import BatonJobGraph
import BatonStoreRecords
import BatonOperators
import BatonProcessControl
import BatonRPC
import BatonTaskRuntime
import Foundation
import Logging
import Synchronization

/// Records per second, end-to-end latency and checkpoint durations of a streaming job, run as
/// Flink's own benchmarks run theirs: on a mini cluster in one process. Its task executors are
/// real data planes serving on loopback (channels between them go over TCP with credit-based
/// flow control), its tasks are the real task runtime, its checkpoints are driven by the real
/// CheckpointCoordinator with the metadata committed fenced to a real SQLite store, the state
/// files and the exactly-once sink's files are really written and synced.
///
/// Jobs: `keyed-count` (a sequence source, hashed by key to a count and the sink) and
/// `word-count` (a text file, tokenized, hashed by word to a count and the sink).
public struct ThroughputBenchmark: Sendable {
    public enum Job: String, Codable, Sendable, CaseIterable {
        case keyedCount = "keyed-count"
        case wordCount = "word-count"
    }

    public enum Sink: String, Codable, Sendable, CaseIterable {
        case exactlyOnceFile = "exactly-once-file"
        case discard
    }

    public struct Run: Codable, Sendable, Hashable {
        public var job: String
        public var sink: String
        public var taskExecutors: Int
        public var parallelism: Int
        /// Records the sinks received (equal to the input: the run fails otherwise).
        public var records: Int
        /// `records` over `seconds`.
        public var recordsPerSecond: Double
        public var latencyMillis: LatencySummary
        /// From a checkpoint's trigger to its metadata committed durably (fenced) in the store.
        public var checkpointMillis: LatencySummary
        public var checkpoints: Int
        public var seconds: Double
    }

    public var job: Job
    public var sink: Sink
    public var taskExecutors: Int
    public var parallelism: Int
    public var records: Int
    public var checkpointInterval: Duration
    public var keys: Int

    public init(job: Job, sink: Sink, taskExecutors: Int, parallelism: Int, records: Int, checkpointInterval: Duration, keys: Int = 1024) {
        self.job = job
        self.sink = sink
        self.taskExecutors = taskExecutors
        self.parallelism = parallelism
        self.records = records
        self.checkpointInterval = checkpointInterval
        self.keys = keys
    }

    static let jobID: JobID = "bench"

    public func run() async throws -> Run {
        let workspace = try TemporaryDirectory("baton-bench-throughput")
        defer { workspace.remove() }
        let input = job == .wordCount ? try writeWords(to: workspace.file("words.txt")) : nil
        var logger = Logger(label: "baton.bench")
        logger.logLevel = .warning
        // As many slots on each task executor as its share of the subtasks: they spread evenly.
        let slots = (parallelism + taskExecutors - 1) / taskExecutors
        let executors = try await MiniCluster.localTaskExecutors(taskExecutors, slots: slots, logger: logger)
        let metrics = TaskMetrics()
        let cluster = try await MiniCluster(
            executors: executors, storePath: workspace.file("ha.sqlite"), checkpoints: workspace.file("checkpoints"), interval: checkpointInterval,
            options: TaskRunner.Options(latencyMarkerInterval: .milliseconds(100), metrics: metrics))
        let started = ContinuousClock.now
        do {
            try await cluster.run(jobGraph(output: workspace.file("out"), input: input))
        } catch let failure as BenchmarkFailure {
            throw BenchmarkFailure(message: "the job did not finish: \(failure.message)")
        }
        let seconds = (ContinuousClock.now - started).milliseconds / 1000
        let durations = cluster.checkpointDurations
        let received = metrics.recordsIntoSinks
        guard received == records else {
            throw BenchmarkFailure(message: "the sinks received \(received) records of the \(records) the sources emitted")
        }
        return Run(
            job: job.rawValue, sink: sink.rawValue, taskExecutors: taskExecutors, parallelism: parallelism, records: received,
            recordsPerSecond: Double(received) / seconds, latencyMillis: LatencySummary(metrics.recordedLatencies.map(\.milliseconds)),
            checkpointMillis: LatencySummary(durations), checkpoints: durations.count, seconds: seconds)
    }

    /// The job: sources (a sequence, or a text file tokenized) hashed by key to a count that
    /// feeds the sink.
    private func jobGraph(output: String, input: String?) throws -> JobGraph {
        var builder = JobGraphBuilder(
            id: Self.jobID,
            configuration: JobConfiguration(scheduling: .eager, failover: .region, restart: .none, checkpointInterval: checkpointInterval))
        let sourceOperators: [OperatorSpec] =
            job == .keyedCount
            ? [.sequence(from: 0, to: Int64(records), keys: keys)]
            : [OperatorSpec("text-file", ["path": input ?? ""]), OperatorSpec("tokenize")]
        builder.addVertex("source", operators: sourceOperators, parallelism: parallelism, maxParallelism: 128)
        builder.addVertex("count", operators: [.count(), sink == .discard ? OperatorSpec("discard") : .fileSink(output)], parallelism: parallelism, maxParallelism: 128)
        builder.connect("source", to: "count", .hash, key: "key")
        return try builder.build()
    }

    /// A text of `records` words over `keys` distinct words, ten to a line.
    private func writeWords(to path: String) throws -> String {
        var text = ""
        text.reserveCapacity(records * 8)
        for index in 0..<records {
            text += "w\(index % keys)"
            text += index % 10 == 9 ? "\n" : " "
        }
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        return path
    }
}

public struct BenchmarkFailure: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
