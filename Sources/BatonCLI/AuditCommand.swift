import ArgumentParser
import BatonAudit
import BatonConfig
import BatonCore
import BatonHAStore
import BatonHAStoreSelection
import Foundation

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Audit every recovery recorded in the store: terms, failovers, checkpoints, violations.",
        discussion: """
            Reads the store only (it works with the group stopped and never writes). Checks: overlapping terms, an \\
            epoch that did not increase, a write accepted from a stale epoch, a task restart caused by a master \\
            failover, a missing completed checkpoint, a reused checkpoint id. Exit status 1 when any is found.
            """)

    @OptionGroup var config: ConfigOption
    @Flag(name: .long, help: "Print one JSON object: terms, failovers, checkpoints, violations.")
    var json = false
    @Option(name: .long, help: "Show terms and failovers from this epoch on.")
    var since: UInt64?

    func run() async throws {
        let configuration = try config.load()
        let store = try HAStoreSelection.open(configuration.store, access: .readOnly)
        let report = Audit.check(try AuditHistory.read(store), since: since.map { Epoch($0) })
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
        lines.append("")
        lines.append(violations.isEmpty ? "no violations" : "VIOLATIONS:")
        for violation in violations { lines.append("  \(violation)") }
        return lines.joined(separator: "\n")
    }
}
