import ArgumentParser
import BatonCore
import BatonJobMaster
import BatonSimulation
import Foundation

/// `baton simulate`: the whole HA cluster (three masters, three task executors, a streaming job
/// with an exactly-once sink) under faults drawn from each seed, checked for I1-I4 and liveness.
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Simulate the HA cluster under seeded faults and check the invariants on every run.",
        discussion: "A failing seed prints the command that replays it; the same seed gives the same output.")

    @Option(name: .long, help: "How many seeds to run (from --from on).")
    var seeds: Int?
    @Option(name: .long, help: "The first seed of --seeds.")
    var from: UInt64 = 1
    @Option(name: .long, help: "Run (replay) this one seed, and print its history when it fails.")
    var seed: UInt64?
    @Option(name: .long, help: "Faults per run.")
    var faults: Int = 10
    @OptionGroup var takeover: TakeoverOption
    @Flag(name: .long, help: "Print one JSON object: runs, faults, failovers, violations[] (each with its seed), seconds.")
    var json = false
    @Flag(name: .long, help: "Print the history of the run (with --seed).")
    var history = false

    func run() async throws {
        let policy = try takeover.policy()
        guard faults >= 1 else { throw CommandFailure.usage("--faults must be at least 1") }
        let chosen: [UInt64]
        switch (seeds, seed) {
        case (nil, let one?): chosen = [one]
        case (let count?, nil):
            guard count >= 1 else { throw CommandFailure.usage("--seeds must be at least 1") }
            let (last, overflow) = from.addingReportingOverflow(UInt64(count - 1))
            guard !overflow else { throw CommandFailure.usage("--from \(from) with --seeds \(count) runs past the last seed") }
            chosen = Array(from...last)
        case (nil, nil): chosen = Array(from...(from + 99))
        case (.some, .some): throw CommandFailure.usage("give --seeds N or --seed S, not both")
        }
        let started = ContinuousClock.now
        let width = chosen.count == 1 ? 1 : max(1, ProcessInfo.processInfo.activeProcessorCount)
        let (summary, runs) = await HASimulation.sweep(seeds: chosen, faults: faults, takeover: policy, width: width)
        let took = ContinuousClock.now - started
        if json {
            try printJSON(summary)
        } else {
            print(
                "\(summary.runs) runs, \(summary.faults) faults, \(summary.failovers) master failovers, \(summary.checkpoints) checkpoints, "
                    + "\(summary.sinkCommits) sink commits, \(String(format: "%.0f", summary.seconds)) s simulated in "
                    + String(format: "%.1f s", took.milliseconds / 1000))
            print("faults: " + summary.faultsByKind.keys.sorted().map { "\($0) \(summary.faultsByKind[$0]!)" }.joined(separator: ", "))
            print(summary.violations.isEmpty ? "no violations" : "VIOLATIONS:")
            for violation in summary.violations { print("  seed \(violation.seed): \(violation.invariant) \(violation.kind): \(violation.message)") }
            if history || (seed != nil && !summary.violations.isEmpty) {
                let replay = HASimulation.run(seed: chosen[0], faults: faults, takeover: policy, keepHistory: true)
                print("history of seed \(replay.seed):")
                for line in replay.history { print("  \(line)") }
            }
        }
        let failing = Set(summary.violations.map(\.seed)).sorted()
        guard failing.isEmpty else {
            for seed in failing.prefix(10) {
                FileHandle.standardError.write(Data("replay: \(HASimulation.replayCommand(seed: seed, faults: faults, takeover: policy))\n".utf8))
            }
            throw CommandFailure.failed("\(summary.violations.count) violation(s) in \(failing.count) of \(runs.count) runs")
        }
    }
}
