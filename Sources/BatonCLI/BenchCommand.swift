import ArgumentParser
import BatonBench
import BatonConfig
import Foundation

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks that print figures.", subcommands: [ElectionBench.self, ScheduleBench.self])
}

struct ElectionBench: AsyncParsableCommand {
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
    @Option(name: .long, help: "sqlite, lmdb, or all (default: the config's backend).")
    var backend: String?
    @Flag(name: .long, help: "Print one JSON object per backend.")
    var json = false

    func run() async throws {
        let configuration = try config.load()
        guard kills >= 1, commits >= 1 else { throw CommandFailure.usage("--kills and --commits must be at least 1") }
        let backends: [HAConfiguration.StoreConfiguration.Backend]
        switch backend {
        case nil: backends = [configuration.store.backend]
        case "all": backends = [.sqlite, .lmdb]
        case let name?:
            guard let chosen = HAConfiguration.StoreConfiguration.Backend(rawValue: name), chosen != .etcd else {
                throw CommandFailure.usage("--backend: '\(name)' is not one of sqlite, lmdb, all")
            }
            backends = [chosen]
        }
        let quiet = json
        for backend in backends {
            let benchmark = ElectionBenchmark(
                configuration: configuration, backend: backend, kills: kills, commits: commits,
                executable: try ExecutablePath.current(),
                progress: { line in if !quiet { FileHandle.standardError.write(Data("[\(backend.rawValue)] \(line)\n".utf8)) } })
            let result = try await benchmark.run()
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(result), as: UTF8.self))
            } else {
                print(
                    """
                    backend \(result.backend)
                      failover, kill -9 to new leader in store (ms), \(result.kills) kills: min/median/p99/max \(result.failoverMillis.formatted())\(result.failedKills > 0 ? "  (\(result.failedKills) kills without a new leader)" : "")
                      durable fenced commit (us), \(result.commits) commits:           min/median/p99/max \(result.commitMicros.formatted(decimals: 0))
                      commits per second: \(Int(result.commitsPerSecond))
                    """)
            }
        }
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
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            for size in subtasks { print(String(decoding: try encoder.encode(ScheduleBenchmark.run(subtasks: size)), as: UTF8.self)) }
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
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(Output(runs: runs)), as: UTF8.self))
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
