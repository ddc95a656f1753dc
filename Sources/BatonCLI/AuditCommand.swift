import ArgumentParser
import BatonAudit
import BatonConfig
import BatonCore
import BatonHAStore
import BatonHAStoreSelection
import BatonJobGraph
import BatonOperators
import Foundation

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Audit every recovery recorded in the store: terms, failovers, checkpoints, violations.",
        discussion: """
            Reads the store only (it works with the group stopped and never writes; a path with no store is exit 2). \\
            Checks: an empty history, overlapping terms (a leader that acted after its successor began), an epoch that \\
            did not increase, a write accepted from a stale epoch, a task restart caused by a master failover, a \\
            completed checkpoint that vanished, a retained set that is not the latest completed, a restore from \\
            anything but the latest completed checkpoint, a reused checkpoint id. With --job (and --sink), also the \\
            job's committed output against the exact model of its workload (I4). Exit status 1 when any is found.
            """)

    @OptionGroup var config: ConfigOption
    @Flag(name: .long, help: "Print one JSON object: terms, failovers, checkpoints, violations.")
    var json = false
    @Option(name: .long, help: "Show terms and failovers from this epoch on.")
    var since: UInt64?
    @Option(name: .long, help: "Also check this job spec's committed output against the model of its workload (I4).")
    var job: String?
    @Option(name: .long, help: "With --job: the folder of its exactly-once sink's committed output (default: the path in the spec).")
    var sink: String?

    func run() async throws {
        let configuration = try config.load()
        let noStore = CommandFailure.usage(
            "there is no store at \(configuration.store.path) (store of \(configuration.file)): nothing to audit")
        guard configuration.store.backend == .etcd || FileManager.default.fileExists(atPath: configuration.store.path) else { throw noStore }
        if sink != nil, job == nil { throw CommandFailure.usage("--sink needs --job: the job spec whose output it holds") }
        var graph: JobGraph?
        if let job {
            do { graph = try JobSpec.load(path: job) } catch { throw CommandFailure.usage("\(error)") }
            if let sink {
                let sinks = graph!.vertices.flatMap { vertex in vertex.operators.filter { OperatorCatalog.builtIn.keepsInputState($0) && $0.name == "file-sink" } }
                guard sinks.count == 1 else {
                    throw CommandFailure.usage("--sink: job \(graph!.id) has \(sinks.count) exactly-once file sinks; --sink names the folder of exactly one")
                }
                graph = OutputAudit.redirectingSinks(graph!, to: URL(fileURLWithPath: sink).standardizedFileURL.path)
            }
        }
        let store: HAStore
        do {
            store = try HAStoreSelection.open(configuration.store, access: .readOnly, verifyEveryValue: true)
        } catch let error as HAStoreError where error.code == .notFound {
            throw noStore
        }
        var report = Audit.check(try AuditHistory.read(store), since: since.map { Epoch($0) }, retain: configuration.checkpoints.retain)
        if let graph {
            do {
                let output = try OutputAudit.check(
                    graph: graph, sourceRanges: SourceRanges.directory(checkpoints: configuration.checkpoints.directory, job: graph.id.rawValue))
                report.outputs = output.checks
                report.violations += output.violations
            } catch let error as OutputModelError {
                throw CommandFailure.usage("--job: \(error)")
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.text())
        }
        if !report.violations.isEmpty { throw CommandFailure(status: 1, message: "\(report.violations.count) violation(s) found") }
    }
}

extension AuditReport {
    /// The report for people.
    func text() -> String {
        var lines = ["TERM  HOLDER  STARTED                    ENDED                      HOW"]
        for term in terms {
            lines.append(
                String(term.epoch).padding(toLength: 6, withPad: " ", startingAt: 0) + term.holder.padding(toLength: 8, withPad: " ", startingAt: 0)
                    + term.startedAt.padding(toLength: 27, withPad: " ", startingAt: 0) + (term.endedAt ?? "-").padding(toLength: 27, withPad: " ", startingAt: 0)
                    + (term.endReason ?? (term.endedAt == nil ? "current" : "")))
        }
        lines.append("")
        lines.append("FAILOVER  DETECT ms  RECONCILE ms  NEXT CHECKPOINT ms  ADOPTED  FINISHED  RESTARTED  CANCELLED")
        func number(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "-" }
        for failover in failovers {
            lines.append(
                "\(failover.fromEpoch.map(String.init) ?? "-")->\(failover.toEpoch)".padding(toLength: 10, withPad: " ", startingAt: 0)
                    + number(failover.detectMillis).padding(toLength: 11, withPad: " ", startingAt: 0)
                    + number(failover.reconcileMillis).padding(toLength: 14, withPad: " ", startingAt: 0)
                    + number(failover.nextCheckpointMillis).padding(toLength: 20, withPad: " ", startingAt: 0)
                    + String(failover.adopted).padding(toLength: 9, withPad: " ", startingAt: 0)
                    + String(failover.finished).padding(toLength: 10, withPad: " ", startingAt: 0)
                    + String(failover.restarted).padding(toLength: 11, withPad: " ", startingAt: 0) + String(failover.cancelled))
        }
        lines.append("")
        for job in checkpoints {
            lines.append("job \(job.job): checkpoints retained \(job.retained.map(String.init).joined(separator: ", ")), next id \(job.nextID), task restarts \(job.restarts)")
        }
        for output in outputs {
            lines.append(
                "output \(output.path): \(output.records) committed of \(output.expectedRecords) expected, \(output.missing) missing, "
                    + "\(output.duplicates) duplicated, \(output.unexpected) unexpected")
        }
        lines.append("")
        lines.append(violations.isEmpty ? "no violations" : "VIOLATIONS:")
        for violation in violations { lines.append("  \(violation)") }
        return lines.joined(separator: "\n")
    }
}
