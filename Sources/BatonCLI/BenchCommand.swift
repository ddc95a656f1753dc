import ArgumentParser
import BatonBench
import BatonConfig
import Foundation

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks that print figures.", subcommands: [ElectionBench.self])
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
