import BatonCore
import BatonExecutionGraph
import BatonJobGraph
import BatonJobMaster
import BatonTestKit
import Foundation
import Testing

/// Data-driven tests of the `Reconciliation` instance (`ScenarioFile`): a scenario declares what
/// the recovered ExecutionGraphs expect (`expect job=J attempt=V#S@A on=TE`) and the task
/// executors the running jobs name (`known TE`), then feeds registrations, reports and the
/// window's close, with each decision and the summary expected after each. Run with
/// `BATON_REWRITE_SCENARIOS=1` to write the actual outputs into the files (review the diff).
@Suite("reconciliation scenarios")
struct ReconciliationScenarioTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("ReconciliationScenarios")
    static var files: [String] { ScenarioFile.files(in: directory) }

    @Test("scenario", arguments: files)
    func scenario(_ file: String) throws {
        let (expected, actual) = try ScenarioFile.outcome(of: file, in: Self.directory, run: Self.run)
        #expect(actual == expected, "scenario \(file) differs:\n\(ScenarioFile.diff(expected, actual))")
    }

    @Test("there are scenarios to run")
    func scenariosExist() { #expect(Self.files.count >= 5) }

    static func run(_ text: String) throws -> String {
        var expected: [JobID: [(attempt: ExecutionAttemptID, location: TaskLocation)]] = [:]
        var known: Set<ResourceID> = []
        var reconciliation: Reconciliation?
        return try ScenarioFile.run(
            text, settings: ["expect", "known"],
            setting: { word, fields in
                if word == "known" {
                    for name in fields.keys { known.insert(try identifier(name)) }
                    return
                }
                let job: JobID = try identifier(fields["job"])
                expected[job, default: []].append((try attempt(fields["attempt"]), TaskLocation(taskExecutor: try identifier(fields["on"]), allocation: 1)))
            },
            command: { command, fields in
                if reconciliation == nil { reconciliation = Reconciliation(expected: expected, known: known) }
                var output: [String] = []
                switch command {
                case "registered":
                    reconciliation!.registered(try identifier(fields["te"]))
                case "report":
                    let state = try ExecutionState.allCases.first { $0.description == fields["state"] } ?? { throw ScenarioFile.Failure("no state '\(fields["state"] ?? "")'") }()
                    let decision = reconciliation!.reported(
                        job: try identifier(fields["job"]), attempt: try attempt(fields["attempt"]), state: state, isCurrent: fields["current"] == "yes")
                    output.append("\(decision)")
                case "close-window":
                    let (lost, unreported) = reconciliation!.closeWindow()
                    output.append("lost " + (lost.isEmpty ? "none" : lost.map(\.rawValue).joined(separator: " ")))
                    for job in unreported.keys.sorted() {
                        output.append("unreported \(job): " + unreported[job]!.map(\.description).joined(separator: " "))
                    }
                case "expected-executors":
                    output.append("expected on " + reconciliation!.expectedTaskExecutors.map(\.rawValue).sorted().joined(separator: " "))
                default:
                    throw ScenarioFile.Failure("unknown command \(command)")
                }
                let summary = reconciliation!.summary
                output.append(
                    "  adopted \(summary.adopted) finished \(summary.finished) restarted \(summary.restarted) cancelled \(summary.cancelled)"
                        + (reconciliation!.isDone ? ", done" : "") + (reconciliation!.windowClosed ? ", window closed" : ""))
                return output
            })
    }

    static func identifier<Kind>(_ text: String?) throws -> TypedIdentifier<Kind> {
        guard let text, let id = TypedIdentifier<Kind>(rawValue: text) else { throw ScenarioFile.Failure("'\(text ?? "nothing")' is not an id") }
        return id
    }

    /// `V#S@A`: job vertex, subtask, attempt.
    static func attempt(_ text: String?) throws -> ExecutionAttemptID {
        let parts = (text ?? "").split(whereSeparator: { $0 == "#" || $0 == "@" }).compactMap { Int($0) }
        guard parts.count == 3 else { throw ScenarioFile.Failure("'\(text ?? "")' is not an attempt like 0#1@0") }
        return ExecutionAttemptID(vertex: ExecutionVertexID(jobVertex: parts[0], subtask: parts[1]), attempt: Int32(parts[2]))
    }
}
