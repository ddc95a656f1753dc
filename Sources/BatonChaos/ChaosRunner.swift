public import BatonAudit
public import BatonConfig
import BatonClient
import BatonCore
import BatonElection
import BatonHAStore
import BatonHAStoreSelection
public import BatonJobGraph
import BatonJobManager
import BatonStoreRecords
public import BatonJobMaster
public import BatonOperators
import BatonProcessControl
import BatonStatus
import BatonWire
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// What `baton chaos` prints.
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
        /// Task attempts restarted between the fault and the job running again (-1: unknown).
        public var restarted: Int
        /// The tasks restarted, as `vertex#subtask attempt a->b`.
        public var restartedTasks: [String]
        public var outcome: String
    }

    public struct Summary: Codable, Sendable, Hashable {
        public var faults: Int
        public var failovers: Int
        public var taskRestartsFromMasterFaults: Int
        public var recordsCommitted: Int
        public var duplicates: Int
        public var gaps: Int
        public var unexpected: Int
    }

    public var seed: UInt64
    public var job: String
    public var faults: [Fault]
    public var summary: Summary
    /// Each exactly-once sink against the model of the workload.
    public var outputs: [OutputCheck]
    public var violations: [AuditReport.Violation]
    public var reportDirectory: String
}

/// How long chaos waits before a missing outcome is a liveness violation, from the run's config
/// and the job's restart strategy.
public struct ChaosBounds: Sendable, Hashable {
    /// A new leader after a leader fault: five leases.
    public var leader: Duration
    /// Reconciliation done after a leader fault: the leader bound plus the reconciliation window and a lease.
    public var reconciled: Duration
    /// Every subtask RUNNING again after any fault, the job FINISHED after its input ended: the
    /// reconciled bound plus what a task failover may take (the heartbeat timeout that detects a
    /// lost task executor, the job's restart delay), ten leases and 5 s.
    public var running: Duration
    /// The group whole again before the next fault (every member back, every task executor
    /// registered, the job running): the running bound plus `group.restartDelay`.
    public var whole: Duration

    public init(_ configuration: HAConfiguration, job: JobGraph) {
        let lease = configuration.election.leaseDuration
        leader = lease * 5
        reconciled = leader + configuration.reconciliationWindow + lease
        let restartDelay: Duration =
            switch job.configuration.restart {
            case .none: .zero
            case .fixedDelay(_, let delay): delay
            case .exponentialBackoff(_, let max, _, _): max
            case .failureRate(_, _, let delay): delay
            }
        running = reconciled + configuration.rpc.heartbeatTimeout + restartDelay + lease * 10 + .seconds(5)
        whole = running + configuration.group.restartDelay
    }
}

/// Runs a chaos test on a master group of its own, inside its report folder: the config's
/// masters, task executors and settings with a fresh store, checkpoints and sink output in that
/// folder and free ports, so that nothing an earlier run left is read. Submits the job, injects
/// the planned faults, ends the job's input, lets it finish, and checks: liveness after every
/// fault (a leader, reconciliation, the job running again, each within `ChaosBounds`), no task
/// restarted by a master fault (I2), the sinks' committed output against the exact model of the
/// workload (I4), and the store's history (`Audit`: I1, I2, I3).
public struct ChaosRunner: Sendable {
    public var configuration: HAConfiguration
    public var jobSpec: String
    public var plan: ChaosPlan
    public var takeover: TakeoverPolicy
    public var executable: String
    public var reportDirectory: String
    public var progress: @Sendable (String) -> Void

    public init(
        configuration: HAConfiguration, jobSpec: String, plan: ChaosPlan, takeover: TakeoverPolicy = .reconcile, executable: String,
        reportDirectory: String, progress: @escaping @Sendable (String) -> Void
    ) {
        self.configuration = configuration
        self.jobSpec = jobSpec
        self.plan = plan
        self.takeover = takeover
        self.executable = executable
        self.reportDirectory = reportDirectory
        self.progress = progress
    }

    /// The job cannot be run by chaos (bad spec, not modelled, no exactly-once sink): exit 2.
    public struct Refusal: Error, CustomStringConvertible {
        public var description: String
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The job as chaos runs it: its sinks write inside the report folder. Refused when its
    /// output cannot be predicted exactly or it has no exactly-once file sink.
    public static func prepare(jobSpec: String, reportDirectory: String) throws(Refusal) -> JobGraph {
        let graph: JobGraph
        do { graph = try JobSpec.load(path: jobSpec) } catch { throw Refusal(description: "\(error)") }
        let redirected = OutputAudit.redirectingSinks(graph, into: "\(reportDirectory)/output")
        let model: OutputModel
        do { model = try OutputModel(graph: redirected, sourceEnds: .atStart(of: redirected)) } catch {
            throw Refusal(description: "chaos cannot predict the output of \(jobSpec): \(error)")
        }
        guard model.sinks.contains(where: \.exactlyOnce) else {
            throw Refusal(description: "the chaos job must write to an exactly-once file-sink (\(jobSpec))")
        }
        return redirected
    }

    public func run() async throws -> ChaosReport {
        let graph = try Self.prepare(jobSpec: jobSpec, reportDirectory: reportDirectory)
        try FileManager.default.createDirectory(atPath: reportDirectory, withIntermediateDirectories: true)
        try "\(plan.seed)\n".write(toFile: "\(reportDirectory)/seed", atomically: true, encoding: .utf8)
        let group = try await ChaosGroup.start(
            configuration, in: reportDirectory, executable: executable,
            groupArguments: takeover == .reconcile ? [] : ["--takeover", takeover.rawValue])
        defer { group.stop() }
        let (configPath, chaos) = (group.configPath, group.configuration)
        let bounds = ChaosBounds(chaos, job: graph)
        let job = graph.id.rawValue
        guard await waitFor(chaos, .seconds(60), { status in
            status.leader?.alive == true && status.taskExecutors.allSatisfy { $0.registeredEpoch != nil } && status.masters.allSatisfy { $0.role != "down" }
        }) != nil else { throw Failure(description: "the group did not come up within 60 s; see \(group.logs)") }

        var logger = Logger(label: "baton.chaos")
        logger.logLevel = .warning
        let client = LeaderClient(configuration: chaos, logger: logger, patience: .seconds(30))
        var submit = WireEnvelope()
        submit.submitJob = .with { $0.jobGraphJson = (try? JSONEncoder().encode(graph)) ?? Data() }
        let accepted = try await client.request(submit)
        guard case .jobAccepted = accepted.body else { throw Failure(description: "the job was refused: \(accepted.failure.message)") }
        progress("job \(job) submitted; output in \(reportDirectory)/output")
        guard await waitFor(chaos, .seconds(60), { status in
            guard let state = status.jobs.first(where: { $0.id == job }) else { return false }
            return (state.lastCheckpoint.id ?? 0) >= 1 && state.vertices.flatMap(\.subtasks).allSatisfy { $0.state == "RUNNING" }
        }) != nil else { throw Failure(description: "the job did not run with a checkpoint within 60 s; see \(group.logs)") }

        let started = ContinuousClock.now
        var faults: [ChaosReport.Fault] = []
        var violations: [AuditReport.Violation] = []
        func flag(_ kind: String, _ message: String) { violations.append(.init(kind: kind, message: message)) }
        for (index, planned) in plan.faults.enumerated() {
            try await Task.sleep(for: planned.delay)
            let name = "fault \(index + 1) (\(planned.kind.rawValue))"
            // Every fault hits a whole group: every member back (a killed one is restarted after
            // group.restartDelay), every task executor registered, the job running.
            guard let before = await waitFor(chaos, bounds.whole, { status in
                    guard let leader = status.leader, leader.alive, status.masters.allSatisfy({ $0.role != "down" }),
                        status.taskExecutors.allSatisfy({ $0.registeredEpoch == leader.epoch }),
                        let current = status.jobs.first(where: { $0.id == job }), current.state == "RUNNING"
                    else { return false }
                    return current.vertices.flatMap(\.subtasks).allSatisfy { $0.state == "RUNNING" }
                }), let state = before.jobs.first(where: { $0.id == job })
            else {
                flag("fault-not-injected", "\(name): the group was not whole again within \(DurationText.format(bounds.whole)), so the fault was not injected")
                continue
            }
            let injectedAt = (ContinuousClock.now - started).milliseconds
            var fault = try await inject(planned, before: before, job: job, group: group, configPath: configPath, bounds: bounds)
            fault.atMillis = injectedAt
            if fault.outcome != "ok" {
                let kind =
                    fault.outcome.hasPrefix("no new leader") ? "no-leader" : fault.outcome.hasPrefix("no task failover") ? "no-task-failover" : "fault-not-injected"
                flag(kind, "\(name): \(fault.outcome)")
            }
            if fault.toEpoch != nil, fault.reconcileMillis == nil, [.kill, .stop, .hostKill, .hostStop, .partition].contains(planned.kind) {
                flag("reconciliation-timeout", "\(name): reconciliation at epoch \(fault.toEpoch!) did not finish within \(DurationText.format(bounds.reconciled))")
            }
            // The job runs again: every subtask RUNNING.
            let after = await waitFor(chaos, bounds.running) { status in
                guard let current = status.jobs.first(where: { $0.id == job }), current.state == "RUNNING" else { return false }
                return current.vertices.flatMap(\.subtasks).allSatisfy { $0.state == "RUNNING" }
            }
            if let current = after?.jobs.first(where: { $0.id == job }) {
                fault.restartedTasks = Self.changedAttempts(from: state, to: current)
                fault.restarted = fault.restartedTasks.count
            } else {
                fault.restarted = -1
                fault.outcome = "the job did not run again within \(DurationText.format(bounds.running))"
                flag("job-not-running", "\(name): \(fault.outcome)")
                flag("restart-count-unknown", "\(name): the task restarts it caused are unknown (the job did not run again)")
            }
            if planned.kind.isMasterFault, fault.restarted > 0 {
                flag(
                    "restart-by-master-failover",
                    "\(name) of \(fault.target) restarted \(fault.restarted) task attempt(s): \(fault.restartedTasks.joined(separator: ", "))")
            }
            faults.append(fault)
            let checkpoint = after?.jobs.first { $0.id == job }?.lastCheckpoint.id.map { "checkpoint \($0)" } ?? "no checkpoint"
            progress(
                "fault \(index + 1)/\(plan.faults.count): \(fault.kind) \(fault.target)"
                    + (fault.toEpoch.map { ", epoch \(fault.fromEpoch ?? 0) -> \($0)" } ?? "")
                    + (fault.detectMillis.map { String(format: ", leader in %.1f ms", $0) } ?? "")
                    + (fault.reconcileMillis.map { String(format: ", reconciled in %.1f ms", $0) } ?? "")
                    + ", \(fault.restarted) restarted; leader \(after?.leader?.id ?? "-") epoch \(after?.leader?.epoch ?? 0), \(checkpoint)")
        }

        // End the input, let the job drain and finish.
        var stop = WireEnvelope()
        stop.stopJob = .with { $0.job = job }
        _ = try? await LeaderClient(configuration: chaos, logger: logger, patience: bounds.leader).request(stop)
        let finished = await waitFor(chaos, bounds.running) { $0.jobs.first { $0.id == job }.map { ["FINISHED", "FAILED", "CANCELED"].contains($0.state) } ?? false }
        let outcome = finished?.jobs.first { $0.id == job }?.state ?? "unknown"
        if outcome != "FINISHED" {
            flag("job-not-finished", "job \(job) is \(outcome), not FINISHED, \(DurationText.format(bounds.running)) after its input was ended")
        }

        // I4: the committed output against the exact model of the workload.
        var outputs: [OutputCheck] = []
        do {
            let result = try OutputAudit.check(
                graph: graph, sourceRanges: SourceRanges.directory(checkpoints: chaos.checkpoints.directory, job: job))
            outputs = result.checks
            violations += result.violations
        } catch {
            flag("output-unchecked", "the committed output could not be checked: \(error)")
        }
        // I1, I2, I3 over the store's history.
        let store = try HAStoreSelection.open(chaos.store, access: .readOnly)
        violations += Audit.check(try AuditHistory.read(store), retain: chaos.checkpoints.retain).violations

        let report = ChaosReport(
            seed: plan.seed, job: job, faults: faults,
            summary: .init(
                faults: faults.count, failovers: faults.filter { $0.toEpoch != nil }.count,
                taskRestartsFromMasterFaults: faults.filter { FaultKind(rawValue: $0.kind)?.isMasterFault == true }.map { max(0, $0.restarted) }.reduce(0, +),
                recordsCommitted: outputs.reduce(0) { $0 + $1.records }, duplicates: outputs.reduce(0) { $0 + $1.duplicates },
                gaps: outputs.reduce(0) { $0 + $1.missing }, unexpected: outputs.reduce(0) { $0 + $1.unexpected }),
            outputs: outputs, violations: violations, reportDirectory: reportDirectory)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try encoder.encode(report).write(to: URL(fileURLWithPath: "\(reportDirectory)/report.json"))
        return report
    }

    // MARK: faults

    private func inject(
        _ planned: ChaosPlan.Fault, before: GroupStatus, job: String, group: ChaosGroup, configPath: String, bounds: ChaosBounds
    ) async throws -> ChaosReport.Fault {
        let configuration = group.configuration
        var fault = ChaosReport.Fault(
            kind: planned.kind.rawValue, atMillis: 0, target: "-", fromEpoch: before.leader?.epoch, toEpoch: nil, detectMillis: nil, reconcileMillis: nil,
            restarted: 0, restartedTasks: [], outcome: "ok")
        switch planned.kind {
        case .kill, .stop:
            guard let leader = before.leader, leader.alive else {
                fault.outcome = "no live leader to hit"
                return fault
            }
            fault.target = leader.id
            let start = ContinuousClock.now
            kill(leader.pid, planned.kind == .kill ? SIGKILL : SIGSTOP)
            let elected = await awaitNewLeader(after: leader.epoch, start: start, configuration: configuration, bounds: bounds, fault: &fault)
            if planned.kind == .stop { kill(leader.pid, SIGCONT) }
            if elected { await awaitReconciliation(start: start, configuration: configuration, bounds: bounds, fault: &fault) }
        case .hostKill, .hostStop, .partition:
            let hosts = configuration.hosts
            guard !hosts.isEmpty else {
                fault.outcome = "no hosts to hit: the config places no member on a host"
                return fault
            }
            let host = hosts[Int(planned.pick % UInt64(hosts.count))]
            fault.target = host.rawValue
            // When the leader is on that host a new one must lead within the bound; else the
            // fault lasts past a lease.
            let leader = before.leader.flatMap { $0.alive && group.host(ofMaster: $0.id) == host ? $0 : nil }
            let start = ContinuousClock.now
            switch planned.kind {
            case .hostKill: group.signalAll(on: host, SIGKILL)
            case .hostStop: group.signalAll(on: host, SIGSTOP)
            default: try group.setLinks(of: host, up: false)
            }
            var elected = false
            if let leader {
                elected = await awaitNewLeader(after: leader.epoch, start: start, configuration: configuration, bounds: bounds, fault: &fault)
            } else {
                try await Task.sleep(for: configuration.election.leaseDuration + .milliseconds(500))
            }
            switch planned.kind {
            case .hostKill: try group.restartHost(host)
            case .hostStop: group.signalAll(on: host, SIGCONT)
            default: try group.setLinks(of: host, up: true)
            }
            if elected { await awaitReconciliation(start: start, configuration: configuration, bounds: bounds, windowMayClose: true, fault: &fault) }
        case .standbyKill:
            let standbys = before.masters.filter { $0.role == "standby" }.compactMap { master in master.pid.map { (master.id, $0) } }
            guard killOne(of: standbys, pick: planned.pick, fault: &fault, none: "no standby to hit") else { return fault }
        case .teKill:
            let busy = Set(before.jobs.first { $0.id == job }?.vertices.flatMap(\.subtasks).compactMap(\.taskExecutor) ?? [])
            let executors = before.taskExecutors.filter { busy.contains($0.id) }.compactMap { executor in executor.pid.map { (executor.id, $0) } }
            guard killOne(of: executors, pick: planned.pick, fault: &fault, none: "no task executor to hit") else { return fault }
            // Its tasks must fail over (and be counted) before the job counts as running again.
            if await waitFor(configuration, bounds.running, { status in
                (status.jobs.first { $0.id == job }?.restarts ?? 0) > (before.jobs.first { $0.id == job }?.restarts ?? 0)
            }) == nil {
                fault.outcome = "no task failover within \(DurationText.format(bounds.running)) after the task executor was killed"
            }
        case .storeStall:
            fault.target = "store"
            let holder = try ChildProcess(
                executable: executable, arguments: ["chaos", "--config", configPath, "--hold-store-lock", "400ms"],
                logPath: "\(reportDirectory)/store-stall.log")
            let deadline = ContinuousClock.now + .seconds(30)
            while holder.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            holder.stop(timeout: .seconds(2))
            if let epoch = (try? GroupStatus.read(configuration))?.leader?.epoch, epoch != before.leader?.epoch { fault.toEpoch = epoch }
        }
        return fault
    }

    /// Waits for a leader newer than `epoch` in the store; records when it came (or the outcome
    /// that none did).
    private func awaitNewLeader(
        after epoch: UInt64, start: ContinuousClock.Instant, configuration: HAConfiguration, bounds: ChaosBounds, fault: inout ChaosReport.Fault
    ) async -> Bool {
        let observed = EpochBox()
        let elected = await waitForStore(configuration, bounds.leader) { store in
            guard let record = try store.readLeadershipBlocking(), record.epoch.rawValue > epoch else { return false }
            observed.epoch = record.epoch.rawValue
            return true
        }
        guard elected, let newEpoch = observed.epoch else {
            fault.outcome = "no new leader within \(DurationText.format(bounds.leader))"
            return false
        }
        fault.detectMillis = (ContinuousClock.now - start).milliseconds
        fault.toEpoch = newEpoch
        return true
    }

    /// Waits for the new leader's reconciliation to finish: within its window, or, when the fault
    /// also took task executors down (`windowMayClose`: a whole host), when the window closed on
    /// the attempts they held.
    private func awaitReconciliation(
        start: ContinuousClock.Instant, configuration: HAConfiguration, bounds: ChaosBounds, windowMayClose: Bool = false,
        fault: inout ChaosReport.Fault
    ) async {
        guard let epoch = fault.toEpoch else { return }
        let key = ReconciliationRecord.key(epoch: Epoch(epoch))
        if await waitForStore(configuration, bounds.reconciled - (ContinuousClock.now - start), { store in
            guard let record = try store.readBlocking({ try $0.value(ReconciliationRecord.self, .reconciliations, key) }) else { return false }
            return record.reconciledAt != nil && (windowMayClose || !record.windowClosed)
        }) {
            fault.reconcileMillis = (ContinuousClock.now - start).milliseconds
        }
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

    /// The subtasks whose attempt changed, as `vertex#subtask attempt a->b`.
    static func changedAttempts(from before: GroupStatus.Job, to after: GroupStatus.Job) -> [String] {
        var attempts: [String: Int] = [:]
        for vertex in before.vertices { for subtask in vertex.subtasks { attempts["\(vertex.id)#\(subtask.index)"] = subtask.attempt } }
        var changed: [String] = []
        for vertex in after.vertices {
            for subtask in vertex.subtasks {
                let name = "\(vertex.id)#\(subtask.index)"
                if let previous = attempts[name], previous != subtask.attempt { changed.append("\(name) attempt \(previous)->\(subtask.attempt)") }
                if attempts[name] == nil { changed.append("\(name) attempt new->\(subtask.attempt)") }
            }
        }
        return changed
    }

    // MARK: waiting

    private func waitFor(_ configuration: HAConfiguration, _ timeout: Duration, _ condition: (GroupStatus) -> Bool) async -> GroupStatus? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = try? await GroupStatus.readLive(configuration), condition(status) { return status }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    /// Polls the store (opened read-only for each look) until `condition` holds.
    private func waitForStore(_ configuration: HAConfiguration, _ timeout: Duration, _ condition: (HAStore) throws -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let store = try? HAStoreSelection.open(configuration.store, access: .readOnly), (try? condition(store)) == true { return true }
            // A file store is looked at every millisecond; etcd, a server, every ten.
            try? await Task.sleep(for: .milliseconds(configuration.store.backend == .etcd ? 10 : 1))
        }
        return false
    }
}

/// The epoch a store poll saw (set by the one polling loop).
final class EpochBox: @unchecked Sendable {
    // @unchecked: written and read by one task, one poll after another.
    var epoch: UInt64?
}

/// Holds the store's write lock for `duration` (the store-stall fault, run as its own process).
public func holdStoreLock(_ configuration: HAConfiguration, for duration: Duration) async throws {
    let store = try HAStoreSelection.open(configuration.store, access: .readWrite)
    let micros = UInt32(clamping: duration.nanosecondsClamped / 1000)
    _ = try await store.unfencedWrite { _ in usleep(micros) }
}
