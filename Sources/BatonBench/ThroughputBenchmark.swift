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

/// Records per second, end-to-end latency and checkpoint durations of a streaming job, or the
/// wall time of a batch job, run as Flink's own benchmarks run theirs: on a mini cluster in one
/// process. Its task executors are real data planes serving on loopback (channels between them
/// go over TCP with credit-based flow control), its tasks are the real task runtime, its
/// checkpoints are driven by the real CheckpointCoordinator with the metadata committed fenced to
/// a real SQLite store, the state files and the exactly-once sink's files are really written and
/// synced, and blocking results keep 256 MiB per task executor in memory and spill the rest.
///
/// Jobs: `keyed-count` (a sequence source, hashed by key to a count and the sink),
/// `word-count` (a text tokenized, hashed by word to a count and the sink), and
/// `batch-word-count` (the same over blocking edges, lazily scheduled: the counts are written
/// once every word is in).
///
/// A streaming job runs either for a number of records (the rate is over the whole run, start-up
/// and drain included), or endlessly for a warm-up and then a steady-state window over which the
/// records into the sinks are counted, after which its input is ended and it drains. Either way
/// the sinks must receive exactly the records the sources emitted.
public struct ThroughputBenchmark: Sendable {
    public enum Job: String, Codable, Sendable, CaseIterable {
        case keyedCount = "keyed-count"
        case wordCount = "word-count"
        case batchWordCount = "batch-word-count"
    }

    public enum Sink: String, Codable, Sendable, CaseIterable {
        case exactlyOnceFile = "exactly-once-file"
        case discard
    }

    /// A steady-state measurement: records into the sinks are counted over `window`, which
    /// starts `warmup` after every task of the job is running.
    public struct SteadyState: Sendable {
        public var warmup: Duration
        public var window: Duration
        public init(warmup: Duration, window: Duration) {
            self.warmup = warmup
            self.window = window
        }
    }

    public struct Run: Codable, Sendable, Hashable {
        public var job: String
        public var sink: String
        public var taskExecutors: Int
        public var parallelism: Int
        public var keys: Int
        /// Records the sinks received (equal to what the sources emitted: the run fails otherwise).
        public var records: Int
        /// Over the steady-state window when there is one; else `records` over `seconds`.
        public var recordsPerSecond: Double
        /// The steady-state window's length (nil: the rate is over the whole run).
        public var windowSeconds: Double?
        public var latencyMillis: LatencySummary
        /// From a checkpoint's trigger to its metadata committed durably (fenced) in the store;
        /// those completed within the window when there is one.
        public var checkpointMillis: LatencySummary
        public var checkpoints: Int
        /// Submission to the job finished.
        public var seconds: Double
        /// The peak resident memory of the process (every task executor of the mini cluster).
        public var peakMemoryBytes: Int64
    }

    public var job: Job
    public var sink: Sink
    public var taskExecutors: Int
    public var parallelism: Int
    public var records: Int
    public var checkpointInterval: Duration
    public var keys: Int
    /// Nil: run `records` records. Streaming jobs only.
    public var steadyState: SteadyState?
    /// The text the word counts read (a file, or a folder of files); nil: `records` words over
    /// `keys` distinct words are generated.
    public var input: String?

    public init(
        job: Job, sink: Sink, taskExecutors: Int, parallelism: Int, records: Int, checkpointInterval: Duration, keys: Int = 1024,
        steadyState: SteadyState? = nil, input: String? = nil
    ) {
        self.job = job
        self.sink = sink
        self.taskExecutors = taskExecutors
        self.parallelism = parallelism
        self.records = records
        self.checkpointInterval = checkpointInterval
        self.keys = keys
        self.steadyState = steadyState
        self.input = input
    }

    static let jobID: JobID = "bench"

    public func run() async throws -> Run {
        let workspace = try TemporaryDirectory("baton-bench-throughput")
        defer { workspace.remove() }
        let text = job == .keyedCount ? nil : try input ?? writeWords(to: workspace.file("words.txt"))
        var logger = Logger(label: "baton.bench")
        logger.logLevel = .warning
        // As many slots on each task executor as its share of the subtasks: they spread evenly.
        let slots = (parallelism + taskExecutors - 1) / taskExecutors
        let executors = try await MiniCluster.localTaskExecutors(taskExecutors, slots: slots, spill: workspace.file("spill"), logger: logger)
        let metrics = TaskMetrics()
        let cluster = try await MiniCluster(
            executors: executors, storePath: workspace.file("ha.sqlite"), checkpoints: workspace.file("checkpoints"), interval: checkpointInterval,
            options: TaskRunner.Options(latencyMarkerInterval: job == .batchWordCount ? nil : .milliseconds(100), metrics: metrics))
        let graph = try jobGraph(output: workspace.file("out"), input: text)
        let started = ContinuousClock.now
        let window = steadyState.map { steady in
            Task { () -> (records: Int, seconds: Double, checkpoints: Range<Int>) in
                // The warm-up starts once every task runs (as a job's figures are read on Flink).
                while !Task.isCancelled, cluster.progress(of: Self.jobID).map({ $0.tasks > 0 && $0.running == $0.tasks }) != true {
                    try? await Task.sleep(for: .milliseconds(5))
                }
                try? await Task.sleep(for: steady.warmup)
                let (first, from, firstCheckpoint) = (metrics.recordsIntoSinks, ContinuousClock.now, cluster.checkpointDurations.count)
                try? await Task.sleep(for: steady.window)
                let (last, to, lastCheckpoint) = (metrics.recordsIntoSinks, ContinuousClock.now, cluster.checkpointDurations.count)
                cluster.endInput(Self.jobID)
                return (last - first, (to - from).milliseconds / 1000, firstCheckpoint..<lastCheckpoint)
            }
        }
        do {
            try await cluster.run(graph)
        } catch let failure as BenchmarkFailure {
            window?.cancel()
            throw BenchmarkFailure(message: "the job did not finish: \(failure.message)")
        }
        let seconds = (ContinuousClock.now - started).milliseconds / 1000
        let steady = await window?.value
        let durations = steady.map { Array(cluster.checkpointDurations[$0.checkpoints]) } ?? cluster.checkpointDurations
        let (received, emitted) = (metrics.recordsIntoSinks, metrics.recordsFromSources)
        guard received == emitted, steadyState != nil || job != .keyedCount || received == records else {
            throw BenchmarkFailure(message: "the sinks received \(received) records of the \(emitted) the sources emitted")
        }
        if job == .batchWordCount {
            let counted = try Self.countedWords(in: workspace.file("out"))
            guard counted == received else {
                throw BenchmarkFailure(message: "the counts written add up to \(counted) words; the tokenizers emitted \(received)")
            }
        }
        return Run(
            job: job.rawValue, sink: job == .batchWordCount ? "file" : sink.rawValue, taskExecutors: taskExecutors, parallelism: parallelism, keys: keys, records: received,
            recordsPerSecond: steady.map { Double($0.records) / $0.seconds } ?? Double(received) / seconds, windowSeconds: steady?.seconds,
            latencyMillis: LatencySummary(metrics.recordedLatencies.map(\.milliseconds)), checkpointMillis: LatencySummary(durations),
            checkpoints: durations.count, seconds: seconds, peakMemoryBytes: ScheduleBenchmark.peakResidentBytes())
    }

    /// The job: sources (a sequence, or a text tokenized) hashed by key to a count that feeds the
    /// sink; the batch word count over blocking edges, lazily scheduled, into the file sink.
    private func jobGraph(output: String, input: String?) throws -> JobGraph {
        let batch = job == .batchWordCount
        var builder = JobGraphBuilder(
            id: Self.jobID,
            configuration: JobConfiguration(
                scheduling: batch ? .lazyFromSources : .eager, failover: .region, restart: .none, checkpointInterval: batch ? nil : checkpointInterval))
        let sourceOperators: [OperatorSpec] =
            job == .keyedCount
            ? [.sequence(from: 0, to: steadyState == nil ? Int64(records) : nil, keys: keys)]
            : [OperatorSpec("text-file", ["path": input ?? ""]), OperatorSpec("tokenize")]
        builder.addVertex("source", operators: sourceOperators, parallelism: parallelism, maxParallelism: 128)
        let sinkOperator = batch ? OperatorSpec.fileSink(output, exactlyOnce: false) : sink == .discard ? OperatorSpec("discard") : .fileSink(output)
        builder.addVertex("count", operators: [.count(), sinkOperator], parallelism: parallelism, maxParallelism: 128)
        builder.connect("source", to: "count", .hash, key: "key", result: batch ? .blocking : .pipelined)
        return try builder.build()
    }

    /// The sum of the counts in the `word,count` lines the sink wrote under `folder`.
    static func countedWords(in folder: String) throws -> Int {
        var total = 0
        let files = FileManager.default
        for name in try files.subpathsOfDirectory(atPath: folder) {
            var isDirectory: ObjCBool = false
            let path = "\(folder)/\(name)"
            guard files.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
                guard let comma = line.lastIndex(of: ","), let count = Int(line[line.index(after: comma)...]) else {
                    throw BenchmarkFailure(message: "the sink wrote '\(line)' in \(path), not word,count")
                }
                total += count
            }
        }
        return total
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
