public import BatonAudit
public import BatonConfig
import BatonClient
import BatonCore
import BatonElection
import BatonHAStore
import BatonHAStoreSelection
import BatonJobGraph
import BatonMasterService
import BatonOperators
import BatonProcessControl
import BatonStatus
import BatonWire
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// What `baton chaos` prints (DESIGN section 7).
public struct ChaosReport: Codable, Sendable, Hashable {
    public struct Fault: Codable, Sendable, Hashable {
        public var kind: String
        /// When it was injected, from the start of the run.
        public var atMillis: Double
        public var target: String
        public var fromEpoch: UInt64?
        public var toEpoch: UInt64?
        /// From the fault to a new leader in the store (leader faults).
        public var detectMillis: Double?
        /// From the fault to reconciliation done (its journal entry).
        public var reconcileMillis: Double?
        /// Task attempts restarted between the fault and the job running again.
        public var restarted: Int
        public var outcome: String
    }

    public struct Summary: Codable, Sendable, Hashable {
        public var faults: Int
        public var failovers: Int
        public var taskRestartsFromMasterFaults: Int
        public var recordsCommitted: Int
        public var duplicates: Int
        public var gaps: Int
    }

    public var seed: UInt64
    public var job: String
    public var faults: [Fault]
    public var summary: Summary
    public var violations: [AuditReport.Violation]
    public var reportDirectory: String
}

/// Runs a chaos test against a master group (it starts one if none runs): submits the job,
/// injects the planned faults, ends the job's input, lets it finish, and checks I1 to I5 on the
/// sink's committed output, the tasks' attempts and the store's history (`Audit`).
public struct ChaosRunner: Sendable {
    public var configuration: HAConfiguration
    public var jobSpec: String
    public var plan: ChaosPlan
    public var executable: String
    public var reportDirectory: String
    public var progress: @Sendable (String) -> Void

    public init(
        configuration: HAConfiguration, jobSpec: String, plan: ChaosPlan, executable: String, reportDirectory: String,
        progress: @escaping @Sendable (String) -> Void
    ) {
        self.configuration = configuration
        self.jobSpec = jobSpec
        self.plan = plan
        self.executable = executable
        self.reportDirectory = reportDirectory
        self.progress = progress
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    public func run() async throws -> ChaosReport {
        try FileManager.default.createDirectory(atPath: reportDirectory, withIntermediateDirectories: true)
        let graph = try JobSpec.load(path: jobSpec)
        guard let sink = graph.vertices.flatMap(\.operators).first(where: { $0.name == "file-sink" && $0.parameters["exactly-once"] != "false" }),
            let output = sink.parameters["path"]
        else { throw Failure(description: "the chaos job must write to an exactly-once file-sink (\(jobSpec))") }
        var group: ChildProcess?
        if try GroupStatus.read(configuration).leader?.alive != true {
            group = try ChildProcess(
                executable: executable, arguments: ["group", "--config", configuration.file, "--log-level", "info"],
                logPath: "\(reportDirectory)/group.log")
        }
        defer { group?.stop(timeout: .seconds(15)) }
        guard await waitFor(.seconds(60), { status in
            status.leader?.alive == true && status.taskExecutors.allSatisfy { $0.registeredEpoch != nil } && status.masters.allSatisfy { $0.role != "down" }
        }) != nil else { throw Failure(description: "the group did not come up within 60 s") }

        var logger = Logger(label: "baton.chaos")
        logger.logLevel = .warning
        let client = LeaderClient(configuration: configuration, logger: logger, patience: .seconds(30))
        var submit = WireEnvelope()
        submit.submitJob = .with { $0.jobGraphJson = (try? JSONEncoder().encode(graph)) ?? Data() }
        let accepted = try await client.request(submit)
        guard case .jobAccepted = accepted.body else { throw Failure(description: "the job was refused: \(accepted.failure.message)") }
        let job = graph.id.rawValue
        progress("job \(job) submitted; sink \(output)")
        guard await waitFor(.seconds(60), { status in
            guard let state = status.jobs.first(where: { $0.id == job }) else { return false }
            return (state.lastCheckpoint.id ?? 0) >= 1 && state.vertices.flatMap(\.subtasks).allSatisfy { $0.state == "RUNNING" }
        }) != nil else { throw Failure(description: "the job did not run with a checkpoint within 60 s") }

        let started = ContinuousClock.now
        var faults: [ChaosReport.Fault] = []
        var violations: [AuditReport.Violation] = []
        for (index, planned) in plan.faults.enumerated() {
            try await Task.sleep(for: planned.delay)
            guard let before = try? await GroupStatus.readLive(configuration), let state = before.jobs.first(where: { $0.id == job }) else { continue }
            let injectedAt = (ContinuousClock.now - started).milliseconds
            var fault = try await inject(planned, before: before, job: job)
            fault.atMillis = injectedAt
            // The job runs again: every subtask RUNNING.
            let after = await waitFor(.seconds(60)) { status in
                guard let current = status.jobs.first(where: { $0.id == job }), current.state == "RUNNING" else { return false }
                return current.vertices.flatMap(\.subtasks).allSatisfy { $0.state == "RUNNING" }
            }
            let changed = after.flatMap { status in status.jobs.first { $0.id == job } }.map { Self.changedAttempts(from: state, to: $0) }
            fault.restarted = changed ?? -1
            if changed == nil { fault.outcome = "the job did not run again within 60 s" }
            if planned.kind.isMasterFault, let changed, changed > 0 {
                violations.append(
                    .init(kind: "restart-by-master-failover", message: "fault \(index + 1) (\(planned.kind.rawValue) of \(fault.target)) restarted \(changed) task attempt(s)"))
            }
            faults.append(fault)
            let checkpoint = after?.jobs.first { $0.id == job }?.lastCheckpoint.id.map { "checkpoint \($0)" } ?? "no checkpoint"
            progress(
                "fault \(index + 1)/\(plan.faults.count): \(fault.kind) \(fault.target)"
                    + (fault.toEpoch.map { ", epoch \(fault.fromEpoch ?? 0) -> \($0)" } ?? "")
                    + (fault.detectMillis.map { String(format: ", leader in %.1f ms", $0) } ?? "")
                    + (fault.reconcileMillis.map { String(format: ", reconciled in %.1f ms", $0) } ?? "")
                    + ", \(fault.restarted) restarted; leader \(after?.leader?.id ?? "-") epoch \(after?.leader?.epoch ?? 0), \(checkpoint), "
                    + "\((try? FileSinkOutput.check(output))?.records ?? 0) records committed")
        }

        // End the input, let the job drain and finish.
        var stop = WireEnvelope()
        stop.stopJob = .with { $0.job = job }
        _ = try? await client.request(stop)
        let finished = await waitFor(.seconds(120)) { $0.jobs.first { $0.id == job }.map { ["FINISHED", "FAILED", "CANCELED"].contains($0.state) } ?? false }
        let outcome = finished?.jobs.first { $0.id == job }?.state ?? "unknown"
        if outcome != "FINISHED" { violations.append(.init(kind: "job-not-finished", message: "job \(job) ended \(outcome)")) }

        // I4: every (key, count) step committed exactly once, no gap.
        let (records, duplicates, gaps) = try FileSinkOutput.check(output)
        if duplicates > 0 { violations.append(.init(kind: "duplicate-output", message: "\(duplicates) committed record(s) appear more than once")) }
        if gaps > 0 { violations.append(.init(kind: "missing-output", message: "\(gaps) record(s) are missing from the committed output")) }
        // I1, I2, I3 over the store's history.
        let store = try HAStoreSelection.open(configuration.store, access: .readOnly)
        let audit = Audit.check(try AuditHistory.read(store))
        violations += audit.violations
        try copyStore(into: "\(reportDirectory)/store")

        let report = ChaosReport(
            seed: plan.seed, job: job, faults: faults,
            summary: .init(
                faults: faults.count, failovers: faults.filter { $0.toEpoch != nil }.count,
                taskRestartsFromMasterFaults: zip(faults, plan.faults).filter { $1.kind.isMasterFault }.map { max(0, $0.0.restarted) }.reduce(0, +),
                recordsCommitted: records, duplicates: duplicates, gaps: gaps),
            violations: violations, reportDirectory: reportDirectory)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try encoder.encode(report).write(to: URL(fileURLWithPath: "\(reportDirectory)/report.json"))
        try "\(plan.seed)\n".write(toFile: "\(reportDirectory)/seed", atomically: true, encoding: .utf8)
        return report
    }

    // MARK: faults

    private func inject(_ planned: ChaosPlan.Fault, before: GroupStatus, job: String) async throws -> ChaosReport.Fault {
        var fault = ChaosReport.Fault(
            kind: planned.kind.rawValue, atMillis: 0, target: "-", fromEpoch: before.leader?.epoch, toEpoch: nil, detectMillis: nil, reconcileMillis: nil,
            restarted: 0, outcome: "ok")
        switch planned.kind {
        case .kill, .stop:
            guard let leader = before.leader, leader.alive else {
                fault.outcome = "no live leader to hit"
                return fault
            }
            fault.target = leader.id
            let start = ContinuousClock.now
            kill(leader.pid, planned.kind == .kill ? SIGKILL : SIGSTOP)
            let observed = EpochBox()
            let elected = await waitForStore(.seconds(30)) { store in
                guard let record = try store.readLeadershipBlocking(), record.epoch.rawValue > leader.epoch else { return false }
                observed.epoch = record.epoch.rawValue
                return true
            }
            if planned.kind == .stop { kill(leader.pid, SIGCONT) }
            guard elected, let epoch = observed.epoch else {
                fault.outcome = "no new leader within 30 s"
                return fault
            }
            fault.detectMillis = (ContinuousClock.now - start).milliseconds
            fault.toEpoch = epoch
            let key = ReconciliationRecord.key(epoch: epoch)
            if await waitForStore(.seconds(30), { store in
                try store.readBlocking { try $0.value(ReconciliationRecord.self, .reconciliations, key) }?.reconciledAt != nil
            }) {
                fault.reconcileMillis = (ContinuousClock.now - start).milliseconds
            }
        case .standbyKill:
            let standbys = before.masters.filter { $0.role == "standby" }.compactMap { master in master.pid.map { (master.id, $0) } }
            guard killOne(of: standbys, pick: planned.pick, fault: &fault, none: "no standby to hit") else { return fault }
        case .teKill:
            let busy = Set(before.jobs.first { $0.id == job }?.vertices.flatMap(\.subtasks).compactMap(\.taskExecutor) ?? [])
            let executors = before.taskExecutors.filter { busy.contains($0.id) }.compactMap { executor in executor.pid.map { (executor.id, $0) } }
            guard killOne(of: executors, pick: planned.pick, fault: &fault, none: "no task executor to hit") else { return fault }
            _ = await waitFor(.seconds(30)) { status in (status.jobs.first { $0.id == job }?.restarts ?? 0) > (before.jobs.first { $0.id == job }?.restarts ?? 0) }
        case .storeStall:
            fault.target = "store"
            let holder = try ChildProcess(
                executable: executable, arguments: ["chaos", "--config", configuration.file, "--hold-store-lock", "400ms"],
                logPath: "\(reportDirectory)/store-stall.log")
            let deadline = ContinuousClock.now + .seconds(30)
            while holder.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            holder.stop(timeout: .seconds(2))
            if let epoch = (try? GroupStatus.read(configuration))?.leader?.epoch, epoch != before.leader?.epoch { fault.toEpoch = epoch }
        }
        return fault
    }

    /// Kills the candidate `pick` names with SIGKILL; false (with the outcome said) when there is none.
    private func killOne(of candidates: [(id: String, pid: Int32)], pick: UInt64, fault: inout ChaosReport.Fault, none: String) -> Bool {
        guard !candidates.isEmpty else {
            fault.outcome = none
            return false
        }
        let victim = candidates[Int(pick % UInt64(candidates.count))]
        fault.target = victim.id
        kill(victim.pid, SIGKILL)
        return true
    }

    // MARK: checks

    static func changedAttempts(from before: GroupStatus.Job, to after: GroupStatus.Job) -> Int {
        var attempts: [String: Int] = [:]
        for vertex in before.vertices { for subtask in vertex.subtasks { attempts["\(vertex.id)#\(subtask.index)"] = subtask.attempt } }
        var changed = 0
        for vertex in after.vertices {
            for subtask in vertex.subtasks where attempts["\(vertex.id)#\(subtask.index)"] != subtask.attempt { changed += 1 }
        }
        return changed
    }

    private func copyStore(into folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = configuration.store.path
        for suffix in ["", "-wal", "-shm", "-lock"] where FileManager.default.fileExists(atPath: path + suffix) {
            let target = "\(folder)/\((path as NSString).lastPathComponent)\(suffix)"
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.copyItem(atPath: path + suffix, toPath: target)
        }
    }

    // MARK: waiting

    private func waitFor(_ timeout: Duration, _ condition: (GroupStatus) -> Bool) async -> GroupStatus? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = try? await GroupStatus.readLive(configuration), condition(status) { return status }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    /// Polls the store (opened read-only for each look) until `condition` holds.
    private func waitForStore(_ timeout: Duration, _ condition: (HAStore) throws -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let store = try? HAStoreSelection.open(configuration.store, access: .readOnly), (try? condition(store)) == true { return true }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return false
    }
}

/// The epoch a store poll saw (set by the one polling loop).
final class EpochBox: @unchecked Sendable {
    var epoch: UInt64?
}

/// Holds the store's write lock for `duration` (the store-stall fault, run as its own process).
public func holdStoreLock(_ configuration: HAConfiguration, for duration: Duration) async throws {
    let store = try HAStoreSelection.open(configuration.store, access: .readWrite)
    let micros = UInt32(clamping: duration.nanosecondsClamped / 1000)
    try await store.unfencedWrite { _ in usleep(micros) }
}
