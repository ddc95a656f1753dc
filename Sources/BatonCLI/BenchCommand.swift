import ArgumentParser
import BatonBench
import BatonConfig
import BatonCore
import Foundation

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks that print figures.", subcommands: [ElectionBench.self, ScheduleBench.self, DeployBench.self, ThroughputBench.self, ExchangeBench.self, FailoverBench.self, RecoveryBench.self])
}

/// One JSON object on one line, keys sorted (what `--json` prints).
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

struct ElectionBench: AsyncParsableCommand {
    /// The backends `--backend` names: one, `all`, or the config's when not given.
    static func backends(
        _ option: String?, default backend: HAConfiguration.StoreConfiguration.Backend
    ) throws -> [HAConfiguration.StoreConfiguration.Backend] {
        switch option {
        case nil: return [backend]
        case "all": return HAConfiguration.StoreConfiguration.Backend.allCases
        case let name?:
            guard let chosen = HAConfiguration.StoreConfiguration.Backend(rawValue: name) else {
                throw CommandFailure.usage("--backend: '\(name)' is not one of sqlite, lmdb, etcd, all")
            }
            return [chosen]
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "election",
        abstract: "Crash failover time (kill -9 of the leader to a new leader readable from the store) and durable fenced commits.",
        discussion: """
            Runs its own group in a temporary folder, with the config's masters and election settings and a fresh store \
            of each backend asked for; the config's own store is not touched.
            """)

    @OptionGroup var config: ConfigOption
    @Option(name: .long, help: "How many times to kill the leader.")
    var kills: Int = 20
    @Option(name: .long, help: "How many fenced commits to time.")
    var commits: Int = 5000
    @Option(name: .long, help: "sqlite, lmdb, etcd (a one-member etcd of its own), or all (default: the config's backend).")
    var backend: String?
    @Flag(name: .long, help: "Print one JSON object per backend.")
    var json = false

    func run() async throws {
        let configuration = try config.loadCreatingSecret()
        guard kills >= 1, commits >= 1 else { throw CommandFailure.usage("--kills and --commits must be at least 1") }
        let backends = try Self.backends(backend, default: configuration.store.backend)
        let quiet = json
        var failed = 0
        for backend in backends {
            let benchmark = ElectionBenchmark(
                configuration: configuration, backend: backend, kills: kills, commits: commits,
                executable: try ExecutablePath.current(),
                progress: { line in if !quiet { FileHandle.standardError.write(Data("[\(backend.rawValue)] \(line)\n".utf8)) } })
            let result = try await benchmark.run()
            if json {
                try printJSON(result)
            } else {
                print(
                    """
                    backend \(result.backend)
                      failover, kill -9 to new leader in store (ms), \(result.kills) kills: min/median/p99/max \(result.failoverMillis.formatted())\(result.failedKills > 0 ? "  (\(result.failedKills) kills without a new leader)" : "")
                      durable fenced commit (us), \(result.commits) commits:           min/median/p99/max \(result.commitMicros.formatted(decimals: 0))
                      commits per second: \(Int(result.commitsPerSecond))
                    """)
            }
            failed += result.failedKills
        }
        if failed > 0 { throw CommandFailure.failed("\(failed) kill(s) without a new leader") }
    }
}

struct ScheduleBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Time to build the ExecutionGraph, compute regions, schedule, match slots and deploy, and peak memory.",
        discussion: """
            Each size runs in its own child process, so that its peak memory is its own. A job of N subtasks has 10 \
            vertices of N/10 subtasks in one slot sharing group (10 subtasks per slot), joined alternately by forward \
            and hash edges.
            """)

    @Option(name: .long, parsing: .upToNextOption, help: "Job sizes in subtasks (multiples of 10).")
    var subtasks: [Int] = [1_000, 10_000, 100_000]
    @Flag(name: .long, help: "Print one JSON object.")
    var json = false
    @Flag(name: .long, help: .hidden)
    var inProcess = false

    func run() throws {
        guard subtasks.allSatisfy({ $0 >= 10 && $0 % 10 == 0 && $0 / 10 <= 32_768 }) else {
            throw CommandFailure.usage("--subtasks: each size must be a multiple of 10, from 10 to 327680")
        }
        if inProcess {
            for size in subtasks { try printJSON(ScheduleBenchmark.run(subtasks: size)) }
            return
        }
        var runs: [ScheduleBenchmark.Run] = []
        for size in subtasks {
            let child = Process()
            child.executableURL = URL(fileURLWithPath: try ExecutablePath.current())
            child.arguments = ["bench", "schedule", "--in-process", "--subtasks", String(size)]
            let output = Pipe()
            child.standardOutput = output
            try child.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            child.waitUntilExit()
            guard child.terminationStatus == 0 else { throw CommandFailure.failed("the run of \(size) subtasks failed") }
            runs.append(try JSONDecoder().decode(ScheduleBenchmark.Run.self, from: data))
        }
        if json {
            struct Output: Encodable { var runs: [ScheduleBenchmark.Run] }
            try printJSON(Output(runs: runs))
            return
        }
        print("SUBTASKS   TOTAL ms   BUILD   REGIONS   SCHEDULE   MATCH   DEPLOY   SLOTS   PEAK MEMORY")
        for run in runs {
            let columns = [
                String(run.subtasks).padding(toLength: 11, withPad: " ", startingAt: 0),
                String(format: "%-10.1f %-7.1f %-9.1f %-10.1f %-7.1f %-8.1f", run.millis, run.buildMillis, run.regionsMillis,
                       run.scheduleMillis, run.matchMillis, run.deployMillis),
                String(run.slots).padding(toLength: 8, withPad: " ", startingAt: 0),
                "\(run.peakMemoryBytes >> 20) MiB (\((run.peakMemoryBytes - run.baselineMemoryBytes) >> 20) MiB above the process's \(run.baselineMemoryBytes >> 20) MiB)",
            ]
            print(columns.joined())
        }
    }
}

struct DeployBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Deployment at scale on a real group: submission to every subtask RUNNING.",
        discussion: """
            Per size, runs its own group in a temporary folder (the config's masters and election settings, two task \
            executors with a slot for every ten subtasks, a fresh store, free ports), submits a job of that many subtasks \
            (ten vertices sharing slots: endless slow sources, maps, discarding sinks) to the leader, and times the \
            submission to every subtask RUNNING in the leader's view. The config's own store is not touched.
            """)

    @OptionGroup var config: ConfigOption
    @Option(name: .long, parsing: .upToNextOption, help: "Job sizes in subtasks (multiples of 20).")
    var subtasks: [Int] = [1_000, 10_000]
    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    func run() async throws {
        let configuration = try config.loadCreatingSecret()
        guard !subtasks.isEmpty, subtasks.allSatisfy({ $0 >= 20 && $0 % 20 == 0 && $0 / 20 <= 1024 }) else {
            throw CommandFailure.usage("--subtasks: each size must be a multiple of 20, from 20 to 20480")
        }
        let quiet = json
        let benchmark = DeployBenchmark(
            configuration: configuration, executable: try ExecutablePath.current(),
            progress: { line in if !quiet { FileHandle.standardError.write(Data("\(line)\n".utf8)) } })
        var runs: [DeployBenchmark.Run] = []
        for size in subtasks { runs.append(try await benchmark.run(subtasks: size)) }
        if json {
            struct Output: Encodable { var runs: [DeployBenchmark.Run] }
            try printJSON(Output(runs: runs))
            return
        }
        print("SUBTASKS   TASK EXECUTORS   SLOTS EACH   SUBMIT TO ALL RUNNING ms")
        for run in runs {
            print(
                String(run.subtasks).padding(toLength: 11, withPad: " ", startingAt: 0) + String(run.taskExecutors).padding(toLength: 17, withPad: " ", startingAt: 0)
                    + String(run.slotsPerTaskExecutor).padding(toLength: 13, withPad: " ", startingAt: 0) + String(format: "%.0f", run.millis))
        }
    }
}

struct ThroughputBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "throughput",
        abstract: "Records per second, end-to-end latency and checkpoint durations of streaming jobs with checkpoints.",
        discussion: """
            Runs each job on a mini cluster in this process: real data planes on loopback, the real task runtime, \
            checkpoints driven by the CheckpointCoordinator with metadata committed fenced to a SQLite store, state and \
            sink files written and synced in a temporary folder. Records are counted where the sinks receive them \
            (a run fails unless they equal the input); checkpoint time runs from the trigger to the metadata committed \
            durably in the store. Latency is measured with latency markers from the sources to the sinks every 100 ms.
            """)

    @Option(name: .long, help: "keyed-count, word-count, batch-word-count, or all.")
    var job: String = "all"
    @Option(name: .long, help: "exactly-once-file, discard, or all (streaming jobs; the batch word count writes files).")
    var sink: String = "all"
    @Option(
        name: .customLong("task-executors"), parsing: .upToNextOption,
        help: "How many task executors (data planes) the tasks spread over; one row per count (default: 2, the headline, then 1).")
    var taskExecutors: [Int] = [2, 1]
    @Option(name: .long, help: "Subtasks per vertex.")
    var parallelism: Int = 2
    @Option(name: .long, help: "Records per run (without --window), or words generated for the word counts (without --input).")
    var records: Int = 20_000_000
    @Option(name: .long, help: "Distinct keys of the keyed count, or distinct words generated.")
    var keys: Int = 1024
    @Option(name: .long, help: "Run the keyed count endlessly and count records over this steady-state window, e.g. 60s, then end its input.")
    var window: String?
    @Option(name: .long, help: "How long the job runs before the window starts, e.g. 15s.")
    var warmup: String = "15s"
    @Option(name: .long, help: "The text the word counts read: a file, or a folder of files (default: generated).")
    var input: String?
    @Option(name: .customLong("checkpoint-interval"), help: "Checkpoint interval, e.g. 1s.")
    var checkpointInterval: String = "1s"
    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    func run() async throws {
        func duration(_ text: String, _ option: String) throws -> Duration {
            guard let value = DurationText.parse(text), value > .zero else {
                throw CommandFailure.usage("--\(option): '\(text)' is not a duration like 1s")
            }
            return value
        }
        let interval = try duration(checkpointInterval, "checkpoint-interval")
        let steadyState = try window.map { ThroughputBenchmark.SteadyState(warmup: try duration(warmup, "warmup"), window: try duration($0, "window")) }
        guard !taskExecutors.isEmpty, taskExecutors.allSatisfy({ $0 >= 1 }), parallelism >= 1, records >= 1, keys >= 1 else {
            throw CommandFailure.usage("--task-executors, --parallelism, --records and --keys must be at least 1")
        }
        func choices<T: RawRepresentable & CaseIterable>(_ text: String, _ option: String) throws -> [T] where T.RawValue == String {
            if text == "all" { return Array(T.allCases) }
            guard let one = T(rawValue: text) else {
                throw CommandFailure.usage("--\(option): '\(text)' is not one of \(T.allCases.map(\.rawValue).joined(separator: ", ")), all")
            }
            return [one]
        }
        let jobs: [ThroughputBenchmark.Job] = try choices(job, "job")
        let sinks: [ThroughputBenchmark.Sink] = try choices(sink, "sink")
        if steadyState != nil, jobs != [.keyedCount] {
            throw CommandFailure.usage("--window: only the keyed count runs endlessly (--job keyed-count)")
        }
        if let input, !FileManager.default.fileExists(atPath: input) {
            throw CommandFailure.usage("--input: '\(input)' does not exist")
        }
        var runs: [ThroughputBenchmark.Run] = []
        for job in jobs {
            // The batch word count writes its counts into files once: one run per count of task executors.
            for sink in job == .batchWordCount ? [.exactlyOnceFile] : sinks {
                for executors in taskExecutors {
                    let benchmark = ThroughputBenchmark(
                        job: job, sink: sink, taskExecutors: executors, parallelism: parallelism, records: records, checkpointInterval: interval,
                        keys: keys, steadyState: steadyState, input: input)
                    if !json {
                        FileHandle.standardError.write(Data("running \(job.rawValue) into \(sink.rawValue) on \(executors) task executor(s)...\n".utf8))
                    }
                    runs.append(try await benchmark.run())
                }
            }
        }
        if json {
            struct Output: Encodable { var runs: [ThroughputBenchmark.Run] }
            try printJSON(Output(runs: runs))
            return
        }
        print("JOB               SINK                TES  RECORDS/S    SECONDS  LATENCY ms min/median/p99/max   CHECKPOINT ms min/median/p99/max (n)")
        for run in runs {
            print(
                run.job.padding(toLength: 18, withPad: " ", startingAt: 0) + run.sink.padding(toLength: 20, withPad: " ", startingAt: 0)
                    + String(run.taskExecutors).padding(toLength: 5, withPad: " ", startingAt: 0)
                    + String(format: "%-12.0f %-8.2f ", run.recordsPerSecond, run.seconds)
                    + run.latencyMillis.formatted(decimals: 1).padding(toLength: 33, withPad: " ", startingAt: 0)
                    + run.checkpointMillis.formatted(decimals: 1) + " (\(run.checkpoints))")
        }
    }
}

struct ExchangeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exchange",
        abstract: "The data plane alone: batches from one task executor to another over loopback TCP.",
        discussion: """
            Runs two data planes in this process, as the throughput benchmark's mini cluster does: one producer's \
            pipelined subpartition read by one consumer on the other over TCP (the real handshake, credits, frames and \
            input gate; every batch decoded into records). Prints MiB and batches per second, and the process's CPU \
            seconds per GiB moved and context switches per thousand batches. A run fails unless every record arrives.
            """)

    @Option(name: .long, help: "Batches to send per run.")
    var batches: Int = 50_000
    @Option(name: .customLong("record-bytes"), help: "Bytes per record (a batch holds 64 KiB of them).")
    var recordBytes: Int = 1024
    @Option(name: .long, help: "Runs, one row each.")
    var runs: Int = 1
    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    func run() async throws {
        guard batches >= 1, recordBytes >= 8, recordBytes <= 64 << 10, runs >= 1 else {
            throw CommandFailure.usage("--batches and --runs must be at least 1, --record-bytes from 8 to 65536")
        }
        var results: [ExchangeBenchmark.Run] = []
        for _ in 0..<runs { results.append(try await ExchangeBenchmark(batches: batches, recordBytes: recordBytes).run()) }
        if json {
            struct Output: Encodable { var runs: [ExchangeBenchmark.Run] }
            try printJSON(Output(runs: results))
            return
        }
        print("BATCHES    BATCH BYTES   CREDITS   SECONDS   MiB/s     BATCHES/s   CPU s/GiB   CONTEXT SWITCHES/1000 BATCHES")
        for run in results {
            print(
                String(run.batches).padding(toLength: 11, withPad: " ", startingAt: 0) + String(run.batchBytes).padding(toLength: 14, withPad: " ", startingAt: 0)
                    + String(run.credits).padding(toLength: 10, withPad: " ", startingAt: 0)
                    + String(format: "%-9.2f %-9.0f %-11.0f %-11.3f %.0f", run.seconds, run.mebibytesPerSecond, run.batchesPerSecond, run.cpuSecondsPerGibibyte, run.contextSwitchesPerThousandBatches))
        }
    }
}

struct RecoveryBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recovery",
        abstract: "Master failover on a store with history: per number of ended jobs, kill -9 to reconciled, status, memory, store size.",
        discussion: """
            For each --ended-jobs size, writes that many ended runs (each with --changes-per-ended-job change records) into a \
            fresh store as the leader leaves them, and the history of a streaming job that has run for long: the leader's \
            writes (snapshots and compaction included, as jobs.snapshotEvery says) while its tasks failed and restarted until \
            it had written --changes change records. Then the failover benchmark's group takes that job over and the leader is \
            killed --kills times. Prints per size endedJobs, changeRecords, storeBytes, reconciledMillis, statusMillis, \
            leaderRssBytes.
            """)

    @OptionGroup var config: ConfigOption
    @Option(name: .long, parsing: .upToNextOption, help: "Numbers of ended jobs, one row each.")
    var endedJobs: [Int] = [0, 1000, 10000]
    @Option(name: .long, help: "Change records the running job's history writes before the first kill (0: the job is submitted fresh).")
    var changes: Int = 1_000_000
    @Option(name: .long, help: "Change records per ended job.")
    var changesPerEndedJob: Int = 20
    @Option(name: .long, help: "How many times to kill the leader per size.")
    var kills: Int = 5
    @Option(name: .long, help: "sqlite, lmdb, etcd (a one-member etcd of its own), or all (default: the config's backend).")
    var backend: String?
    @Flag(name: .long, help: "Print one JSON object per row.")
    var json = false

    func run() async throws {
        let configuration = try config.loadCreatingSecret()
        guard kills >= 1 else { throw CommandFailure.usage("--kills must be at least 1") }
        guard endedJobs.allSatisfy({ $0 >= 0 }), changes >= 0, changesPerEndedJob >= 0 else {
            throw CommandFailure.usage("--ended-jobs, --changes and --changes-per-ended-job must not be negative")
        }
        let quiet = json
        var failed = 0
        for backend in try ElectionBench.backends(backend, default: configuration.store.backend) {
            for size in endedJobs {
                var bench = RecoveryBenchmark(
                    configuration: configuration, backend: backend, endedJobs: size, changesPerJob: changesPerEndedJob, kills: kills,
                    executable: try ExecutablePath.current(),
                    progress: { line in if !quiet { FileHandle.standardError.write(Data("[\(backend.rawValue) \(size)] \(line)\n".utf8)) } })
                bench.runningJobChanges = changes
                let row = try await bench.run()
                failed += row.failedKills
                if json {
                    try printJSON(row)
                } else {
                    print(
                        "backend \(row.backend), \(row.endedJobs) ended jobs, \(row.changeRecords) change records written "
                            + "(running job \(row.runningJobChangeRecords), \(row.storedRunningJobChangeRecords) after its snapshot), store \(row.storeBytes) bytes: "
                            + "reconciled (ms) \(row.reconciledMillis.formatted()), status (ms) \(row.statusMillis.formatted()), "
                            + "leader RSS \(row.leaderRssBytes / 1_048_576) MiB")
                }
            }
        }
        if failed > 0 { throw CommandFailure.failed("\(failed) kill(s) not reconciled") }
    }
}

struct FailoverBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failover",
        abstract: "Master failover with a running job: kill -9 of the leader to a new leader, to reconciliation done, to the next checkpoint.",
        discussion: """
            Runs its own group in a temporary folder (the config's masters and election settings, two task executors, a \
            fresh store, free ports) with a streaming keyed count checkpointing every 200 ms, and kills the leader N times. \
            Also counts task restarts and records processed twice (target: 0 and 0).
            """)

    @OptionGroup var config: ConfigOption
    @Option(name: .long, help: "How many times to kill the leader.")
    var kills: Int = 10
    @Option(name: .long, help: "sqlite, lmdb, etcd (a one-member etcd of its own), or all (default: the config's backend).")
    var backend: String?
    @OptionGroup var takeover: TakeoverOption
    @Flag(name: .long, help: "Print one JSON object per backend.")
    var json = false

    func run() async throws {
        let configuration = try config.loadCreatingSecret()
        guard kills >= 1 else { throw CommandFailure.usage("--kills must be at least 1") }
        let policy = try takeover.policy()
        var failed = 0
        let backends = try ElectionBench.backends(backend, default: configuration.store.backend)
        let quiet = json
        for backend in backends {
            let result = try await FailoverBenchmark(
                configuration: configuration, backend: backend, kills: kills, takeover: policy, executable: try ExecutablePath.current(),
                progress: { line in if !quiet { FileHandle.standardError.write(Data("[\(backend.rawValue)] \(line)\n".utf8)) } }
            ).run()
            failed += result.failedKills
            if json {
                try printJSON(result)
            } else {
                print(
                    """
                    backend \(result.backend), \(result.kills) kills\(result.failedKills > 0 ? " (\(result.failedKills) not reconciled)" : "")
                      kill -9 to new leader elected (ms):       min/median/p99/max \(result.electedMillis.formatted())
                      kill -9 to reconciliation done (ms):      min/median/p99/max \(result.reconciledMillis.formatted())
                      kill -9 to next checkpoint complete (ms): min/median/p99/max \(result.nextCheckpointMillis.formatted())
                      task restarts: \(result.taskRestarts)   records reprocessed: \(result.reprocessedRecords)
                    """)
            }
        }
        if failed > 0 { throw CommandFailure.failed("\(failed) kill(s) without a new leader, reconciliation or next checkpoint") }
    }
}
