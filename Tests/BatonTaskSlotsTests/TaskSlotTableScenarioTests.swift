import BatonCore
import BatonExecutionGraph
import BatonJobGraph
import BatonTaskSlots
import BatonTestKit
import Foundation
import Testing

/// Data-driven tests of the task executor's instance, `TaskSlotTable` (`ScenarioFile`): leaders
/// seen, registrations and losses, commands with their epochs, task state changes, with the
/// actions expected after each. Run with `BATON_REWRITE_SCENARIOS=1` to write the actual outputs
/// into the files (review the diff).
@Suite("task slot table scenarios")
struct TaskSlotTableScenarioTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scenarios")
    static var files: [String] { ScenarioFile.files(in: directory) }

    @Test("scenario", arguments: files)
    func scenario(_ file: String) throws {
        let (expected, actual) = try ScenarioFile.outcome(of: file, in: Self.directory, run: Self.run)
        #expect(actual == expected, "scenario \(file) differs:\n\(ScenarioFile.diff(expected, actual))")
    }

    @Test("there are scenarios to run")
    func scenariosExist() { #expect(Self.files.count >= 5) }

    static func run(_ text: String) throws -> String {
        var configuration = TaskSlotTable.Configuration()
        var table: TaskSlotTable?
        return try ScenarioFile.run(
            text, settings: ["config"],
            setting: { _, fields in
                if let kept = fields["kept"] { configuration.endedReportsKept = try ScenarioFile.int(kept) }
            },
            command: { command, fields in
                if table == nil { table = TaskSlotTable(taskExecutor: "te1", configuration: configuration) }
                let now = MonotonicInstant(nanoseconds: UInt64(try ScenarioFile.int(fields["at"] ?? "0")) * 1_000_000)
                func epoch(_ key: String = "epoch") throws -> Epoch { Epoch(UInt64(try ScenarioFile.int(fields[key]))) }
                var output: [String] = []
                switch command {
                case "leader":
                    output.append(table!.shouldConnect(toLeaderAt: try epoch()) ? "connect" : "do not connect")
                    table!.observed(epoch: try epoch())
                case "registered": output.append(table!.registered(epoch: try epoch()) ? "registered" : "registration refused")
                case "store-names": output.append(table!.storeNamesLeader(at: try epoch()) ? "leave the leader" : "stay")
                case "disconnected": output.append(table!.disconnected(now: now) ? "leader lost" : "no leader was lost")
                case "retry": output.append("retry in \(DurationText.format(table!.retryDelay(now: now)))")
                case "registration": output += table!.registrationReports.map { "reports \(render($0))" }
                case "task":
                    let state = try state(fields["state"])
                    output += table!.taskChanged(try attempt(fields["attempt"]), to: state, failure: fields["failure"]).map(render)
                default:
                    output += table!.command(try self.command(command, fields), epoch: try epoch()).map(render)
                }
                output.append(
                    "  registered \(table!.fencing.registeredEpoch.map { "\($0)" } ?? "-") highest \(table!.fencing.highestEpoch) running "
                        + (table!.runningAttempts.isEmpty ? "-" : table!.runningAttempts.map { "\($0):\(table!.state(of: $0)!)" }.joined(separator: ",")))
                return output
            })
    }

    static func command(_ name: String, _ fields: [String: String]) throws -> TaskSlotTable.Command {
        switch name {
        case "deploy": return .deploy(try attempt(fields["attempt"]), allocation: AllocationID(rawValue: UInt64(try ScenarioFile.int(fields["allocation"] ?? "1"))))
        case "cancel": return .cancel(try attempt(fields["attempt"]))
        case "update-partition": return .updatePartitionInfo(consumer: try attempt(fields["attempt"]))
        case "release": return .releasePartitions(JobID(rawValue: fields["job"] ?? "")!)
        case "trigger": return .triggerCheckpoint(try attempt(fields["attempt"]), checkpoint: CheckpointID(rawValue: UInt64(try ScenarioFile.int(fields["checkpoint"]))))
        case "end-input": return .endInput(try attempt(fields["attempt"]))
        case "notify": return .notifyCheckpointComplete(JobID(rawValue: fields["job"] ?? "")!, checkpoint: CheckpointID(rawValue: UInt64(try ScenarioFile.int(fields["checkpoint"]))))
        default: throw ScenarioFile.Failure("unknown command \(name)")
        }
    }

    static func render(_ action: TaskSlotTable.Action) -> String {
        switch action {
        case .refuse(let reason): "refuse: \(reason)"
        case .acknowledge: "ack"
        case .startTask(let attempt): "start \(attempt)"
        case .stopTask(let attempt): "stop \(attempt)"
        case .forward(let attempts): "forward to " + attempts.map(\.description).joined(separator: " ")
        case .releasePartitions(let job): "release partitions of \(job)"
        case .report(let report): "report \(render(report))"
        case .declineCheckpoint(let attempt, let checkpoint, let reason): "decline checkpoint \(checkpoint) of \(attempt): \(reason)"
        case .closeTask(let attempt): "close \(attempt)"
        }
    }

    static func render(_ report: TaskReport) -> String {
        "\(report.attempt) \(report.state)" + (report.failure.map { " (\($0))" } ?? "") + " slot \(report.allocation)"
    }

    static func state(_ text: String?) throws -> ExecutionState {
        guard let state = ExecutionState.allCases.first(where: { $0.description == text }) else { throw ScenarioFile.Failure("no state '\(text ?? "")'") }
        return state
    }

    /// `job/V#S@A`.
    static func attempt(_ text: String?) throws -> TaskAttempt {
        let parts = (text ?? "").split(separator: "/", maxSplits: 1)
        let numbers = (parts.last ?? "").split(whereSeparator: { $0 == "#" || $0 == "@" }).compactMap { Int($0) }
        guard parts.count == 2, numbers.count == 3, let job = JobID(rawValue: String(parts[0])) else {
            throw ScenarioFile.Failure("'\(text ?? "")' is not an attempt like job/0#1@0")
        }
        return TaskAttempt(job: job, attempt: ExecutionAttemptID(vertex: ExecutionVertexID(jobVertex: numbers[0], subtask: numbers[1]), attempt: Int32(numbers[2])))
    }
}
