import ArgumentParser
import BatonChaos
import BatonConfig
import BatonCore
import Foundation

struct ChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Chaos test of the master group: inject faults while a job runs, then check invariants I1 to I5.",
        discussion: """
            Runs a group of its own inside a fresh report folder (the config's masters, task executors and settings; \\
            a new store, checkpoints and sink output in that folder; free ports), submits the job (it must write to an \\
            exactly-once file-sink, and its output must be predictable: sequence sources, map, filter, keyed count and \\
            sum), injects faults at moments drawn from the seed, ends the job's input, lets it finish, checks liveness, \\
            the committed output against the exact model of the job and the store's history. The report folder keeps \\
            report.json, the seed, the config, the store and the group's log. Exit 1 on any violation, 2 on a job it \\
            cannot model. The same seed gives the same fault schedule.
            """)

    @OptionGroup var config: ConfigOption
    @Option(name: .long, help: "The job spec to run.")
    var job: String?
    @Option(name: .long, help: "How many faults to inject.")
    var kills: Int?
    @Option(name: .long, help: "Inject faults for this long instead, e.g. 60s.")
    var duration: String?
    @Option(name: .long, help: "The pause before each fault, a range like 2s-5s.")
    var interval: String = "2s-5s"
    @Option(
        name: .long,
        help: "Fault kinds: kill, stop, standby-kill, te-kill, store-stall; on hosts also host-kill, host-stop, partition (default: all that apply).")
    var faults: String?
    @Option(name: .long, help: "The seed of the fault schedule (default: random, printed).")
    var seed: UInt64?
    @Option(name: .long, help: "The report folder, which must not exist or be empty (default: chaos-<seed>-<time>-<random> beside the config).")
    var report: String?
    @OptionGroup var takeover: TakeoverOption
    @Flag(name: .long, help: "Print one JSON object (keys as in the README).")
    var json = false
    @Option(name: .customLong("hold-store-lock"), help: .hidden)
    var holdStoreLock: String?

    func run() async throws {
        let configuration = try config.loadCreatingSecret()
        if let holdStoreLock {
            guard let duration = DurationText.parse(holdStoreLock) else { throw CommandFailure.usage("--hold-store-lock: not a duration") }
            try await BatonChaos.holdStoreLock(configuration, for: duration)
            return
        }
        guard let job else { throw CommandFailure.usage("--job: give the job spec to run") }
        let takeoverPolicy = try takeover.policy()
        guard let range = ChaosPlan.interval(interval) else { throw CommandFailure.usage("--interval: '\(interval)' is not a range like 2s-5s") }
        let onHosts = !configuration.hosts.isEmpty
        let kinds: [FaultKind]
        if let faults {
            guard let named = ChaosPlan.kinds(faults) else {
                throw CommandFailure.usage(
                    "--faults: '\(faults)' is not a list of \(FaultKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if let hostFault = named.first(where: \.needsHosts), !onHosts {
                throw CommandFailure.usage("--faults: \(hostFault.rawValue) needs a config that places members on hosts (masters[].host)")
            }
            if named.contains(.storeStall), configuration.store.backend == .etcd {
                throw CommandFailure.usage("--faults: store-stall holds a store file's write lock; etcd has none")
            }
            kinds = named
        } else {
            kinds = FaultKind.defaults(onHosts: onHosts)
        }
        let count: Int
        if let kills {
            guard kills >= 1 else { throw CommandFailure.usage("--kills must be at least 1") }
            count = kills
        } else if let duration {
            guard let total = DurationText.parse(duration), total > .zero else { throw CommandFailure.usage("--duration: '\(duration)' is not a duration") }
            let mean = (range.lowerBound + range.upperBound) / 2
            count = max(1, Int(total.milliseconds / max(1, mean.milliseconds)))
        } else {
            count = 6
        }
        var system = SystemRandomNumberGenerator()
        let chosenSeed = seed ?? system.next()
        let plan = ChaosPlan(seed: chosenSeed, kinds: kinds, count: count, interval: range)
        let folder = report.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? Self.uniqueFolder(in: configuration.directory, seed: chosenSeed)
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: folder), !entries.isEmpty {
            throw CommandFailure.usage("--report: \(folder) is not empty; every chaos run needs a fresh folder")
        }
        do { _ = try ChaosRunner.prepare(jobSpec: job, reportDirectory: folder) } catch { throw CommandFailure.usage(error.description) }
        let quiet = json
        if !quiet { FileHandle.standardError.write(Data("chaos: seed \(chosenSeed), \(count) faults, report in \(folder)\n".utf8)) }
        let result = try await ChaosRunner(
            configuration: configuration, jobSpec: job, plan: plan, takeover: takeoverPolicy, executable: try ExecutablePath.current(),
            reportDirectory: folder,
            progress: { line in if !quiet { FileHandle.standardError.write(Data("chaos: \(line)\n".utf8)) } }
        ).run()
        if json {
            try printJSON(result)
        } else {
            print("FAULT          AT ms     TARGET  EPOCHS   DETECT ms  RECONCILE ms  RESTARTED  OUTCOME")
            for fault in result.faults {
                print(
                    fault.kind.padding(toLength: 15, withPad: " ", startingAt: 0) + String(format: "%-9.0f ", fault.atMillis)
                        + fault.target.padding(toLength: 8, withPad: " ", startingAt: 0)
                        + (fault.toEpoch.map { "\(fault.fromEpoch ?? 0)->\($0)" } ?? "-").padding(toLength: 9, withPad: " ", startingAt: 0)
                        + (fault.detectMillis.map { String(format: "%.1f", $0) } ?? "-").padding(toLength: 11, withPad: " ", startingAt: 0)
                        + (fault.reconcileMillis.map { String(format: "%.1f", $0) } ?? "-").padding(toLength: 14, withPad: " ", startingAt: 0)
                        + String(fault.restarted).padding(toLength: 11, withPad: " ", startingAt: 0) + fault.outcome)
            }
            let summary = result.summary
            print(
                "\n\(summary.faults) faults, \(summary.failovers) failovers, \(summary.taskRestartsFromMasterFaults) task restarts from master faults, "
                    + "\(summary.recordsCommitted) records committed, \(summary.duplicates) duplicates, \(summary.gaps) gaps, "
                    + "\(summary.unexpected) unexpected")
            print(result.violations.isEmpty ? "no violations" : "VIOLATIONS:")
            for violation in result.violations { print("  \(violation)") }
            print("report: \(result.reportDirectory)")
        }
        if !result.violations.isEmpty { throw CommandFailure(status: 1, message: "\(result.violations.count) violation(s); seed \(chosenSeed)") }
    }

    /// `chaos-<seed>-<UTC time>-<random>` in `directory`: a new folder for every run.
    static func uniqueFolder(in directory: String, seed: UInt64) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss"
        var random = SystemRandomNumberGenerator()
        return "\(directory)/chaos-\(seed)-\(formatter.string(from: Date()))-\(String((random.next() as UInt32) & 0xFFFF, radix: 16))"
    }
}
