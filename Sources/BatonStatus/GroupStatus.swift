public import BatonConfig
import BatonCore
import BatonElection
import BatonHAStore
import BatonHAStoreSelection
import BatonJobManager
import BatonJobMaster
import BatonStoreRecords
import BatonClient
import BatonMemberLocks
public import BatonWire
import Foundation
import Logging

/// What `baton status` reports: the leader as the store records it, and every master as its
/// member lock shows it (alive or down, with its pid). JSON keys are a contract (the README's `baton status`).
public struct GroupStatus: Codable, Sendable, Hashable {
    public struct Leader: Codable, Sendable, Hashable {
        public var id: String
        public var epoch: UInt64
        public var address: String
        public var pid: Int32
        public var incarnation: String
        public var since: String
        public var renewedAt: String
        /// Whether the leader's process is alive (its member lock is held by that incarnation).
        public var alive: Bool
    }

    public struct Master: Codable, Sendable, Hashable {
        public var id: String
        /// The pid of the live process, or null when the master is down.
        public var pid: Int32?
        public var address: String
        /// `leader`, `standby` or `down`.
        public var role: String
    }

    public struct Store: Codable, Sendable, Hashable {
        public var backend: String
        public var path: String
        /// False when no master has created the store yet.
        public var exists: Bool
    }

    public struct TaskExecutor: Codable, Sendable, Hashable {
        public var id: String
        /// The pid of the live process, or null when it is down.
        public var pid: Int32?
        public var slots: Int
        /// Free default slots, as the leader counts them (null when not registered).
        public var freeSlots: Int?
        /// The epoch of the leader it is registered with (null when not registered).
        public var registeredEpoch: UInt64?
        public var address: String
    }

    /// A subtask and a vertex of a job are shown as the leader reports them.
    public typealias Subtask = LeaderStatusReport.Subtask
    public typealias Vertex = LeaderStatusReport.Vertex

    public typealias Checkpoint = LeaderStatusReport.Checkpoint

    public struct Job: Codable, Sendable, Hashable {
        public var id: String
        public var name: String
        public var state: String
        /// Task attempts restarted, all causes.
        public var restarts: Int
        public var failure: String?
        public var lastCheckpoint: Checkpoint
        public var vertices: [Vertex]
    }

    public var cluster: String
    public var store: Store
    public var leader: Leader?
    public var masters: [Master]
    public var taskExecutors: [TaskExecutor]
    public var jobs: [Job]
    /// Every ended run the store's history keeps, latest first (`baton status --all`).
    public var history: [Run]?

    /// An ended run, as the history keeps it.
    public struct Run: Codable, Sendable, Hashable {
        public var id: String
        public var run: Int
        public var name: String
        public var state: String
        public var submittedAt: String
        public var endedAt: String
        public var restarts: Int
        public var failure: String?
        public var lastCheckpoint: UInt64?
    }

    /// Every ended run the history of `configuration`'s store keeps, latest first.
    public static func readHistory(_ configuration: HAConfiguration) throws -> [Run] {
        let store = try HAStoreSelection.open(configuration.store, access: .readOnly)
        let runs = try store.readBlocking { try $0.values(JobSummary.self, .jobHistory) }
        return runs.sorted { ($0.endedAt.millisecondsSince1970, $0.run) > ($1.endedAt.millisecondsSince1970, $1.run) }.map { run in
            Run(
                id: run.id.rawValue, run: run.run, name: run.name, state: run.state.rawValue, submittedAt: run.submittedAt.iso8601,
                endedAt: run.endedAt.iso8601, restarts: run.restarts, failure: run.failure, lastCheckpoint: run.lastCheckpoint?.id.rawValue)
        }
    }

    /// Reads the store (read-only), the member locks, and what the leader reports live (its
    /// registered task executors and its jobs).
    public static func readLive(_ configuration: HAConfiguration) async throws -> GroupStatus {
        let base = try read(configuration)
        guard base.leader?.alive == true else { return base }
        return try read(configuration, live: await liveStatus(configuration))
    }

    /// Reads the store (read-only) and the member locks of `configuration` (no RPC).
    public static func read(_ configuration: HAConfiguration) throws -> GroupStatus {
        try read(configuration, live: nil)
    }

    static func read(_ configuration: HAConfiguration, live: LeaderStatusReport?) throws -> GroupStatus {
        let liveness = try HAStoreSelection.liveness(configuration.store, election: configuration.election)
        var record: LeadershipRecord?
        var exists = true
        do {
            let store = try HAStoreSelection.open(configuration.store, access: .readOnly)
            record = try store.readLeadershipBlocking()
        } catch let error as HAStoreError where error.code == .notFound {
            exists = false
        }
        let members = configuration.masters.map(\.id.identifier) + configuration.taskExecutors.map(\.id.identifier)
        let probed = try liveness.probeBlocking(members)
        let probes = Dictionary(uniqueKeysWithValues: configuration.masters.map { ($0.id, probed[$0.id.identifier] ?? .neverRan) })
        var leader: Leader?
        if let record, let holder = record.holder {
            var alive = false
            let probe = try probes[holder.member] ?? liveness.probeBlocking([holder.member.identifier])[holder.member.identifier]
            if case .alive(let info) = probe {
                alive = info?.incarnation == holder.incarnation
            }
            leader = Leader(
                id: holder.member.rawValue, epoch: record.epoch.rawValue, address: holder.address, pid: holder.pid,
                incarnation: holder.incarnation.description, since: record.termStartedAt.iso8601,
                renewedAt: record.renewedAt.iso8601, alive: alive)
        }
        let masters = configuration.masters.map { master -> Master in
            switch probes[master.id]! {
            case .alive(let info):
                let leads = record?.holder.map { $0.member == master.id && $0.incarnation == info?.incarnation } ?? false
                return Master(id: master.id.rawValue, pid: info?.pid, address: master.rpc.description, role: leads ? "leader" : "standby")
            case .heldByAnother:
                return Master(id: master.id.rawValue, pid: nil, address: master.rpc.description, role: "blocked")
            case .down, .neverRan:
                return Master(id: master.id.rawValue, pid: nil, address: master.rpc.description, role: "down")
            }
        }
        let taskExecutors = configuration.taskExecutors.map { settings -> TaskExecutor in
            var pid: Int32?
            if case .alive(let info) = probed[settings.id.identifier] { pid = info?.pid }
            let registered = live?.taskExecutors.first { $0.id == settings.id.rawValue }
            return TaskExecutor(
                id: settings.id.rawValue, pid: pid, slots: settings.slots, freeSlots: registered?.freeSlots,
                registeredEpoch: registered?.registeredEpoch, address: settings.data.description)
        }
        let jobs = (live?.jobs ?? []).map { job in
            Job(
                id: job.id, name: job.name, state: job.state, restarts: job.restarts, failure: job.failure, lastCheckpoint: job.lastCheckpoint,
                vertices: job.vertices)
        }
        return GroupStatus(
            cluster: configuration.cluster.rawValue,
            store: Store(backend: configuration.store.backend.rawValue, path: configuration.store.path, exists: exists),
            leader: leader, masters: masters, taskExecutors: taskExecutors, jobs: jobs)
    }

    /// The leader's live view, asked over RPC (nil when no leader answers within a few seconds).
    public static func liveStatus(_ configuration: HAConfiguration) async -> LeaderStatusReport? {
        let client = LeaderClient(configuration: configuration, logger: Logger(label: "baton.status"), patience: .seconds(2))
        var request = WireEnvelope()
        request.statusRequest = WireStatusRequest()
        guard let reply = try? await client.request(request, timeout: .seconds(5)), case .statusReply(let status) = reply.body else {
            return nil
        }
        return try? JSONDecoder().decode(LeaderStatusReport.self, from: status.statusJson)
    }

    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    public func text() -> String {
        var lines: [String] = []
        lines.append("cluster \(cluster)  store \(store.backend) \(store.path)\(store.exists ? "" : " (not created yet)")")
        if let leader {
            lines.append(
                "leader  \(leader.id)  epoch \(leader.epoch)  \(leader.address)  pid \(leader.pid)  since \(leader.since)"
                    + (leader.alive ? "" : "  (process gone: a standby takes over)"))
        } else {
            lines.append("leader  none")
        }
        lines.append("")
        var rows = [["MASTER", "ROLE", "PID", "ADDRESS"]] + masters.map { [$0.id, $0.role, $0.pid.map(String.init) ?? "-", $0.address] }
        let widths = (0..<4).map { column in rows.map { $0[column].count }.max()! }
        for row in rows {
            lines.append(zip(row, widths).map { $0.padding(toLength: $1 + 2, withPad: " ", startingAt: 0) }.joined())
        }
        if !taskExecutors.isEmpty {
            lines.append("")
            rows = [["TASK EXECUTOR", "PID", "SLOTS", "FREE", "EPOCH"]]
                + taskExecutors.map { [$0.id, $0.pid.map(String.init) ?? "down", "\($0.slots)", $0.freeSlots.map(String.init) ?? "-", $0.registeredEpoch.map(String.init) ?? "-"] }
            let widths = (0..<5).map { column in rows.map { $0[column].count }.max()! }
            for row in rows { lines.append(zip(row, widths).map { $0.padding(toLength: $1 + 2, withPad: " ", startingAt: 0) }.joined()) }
        }
        for job in jobs {
            lines.append("")
            let checkpoint = job.lastCheckpoint.id.map { id in
                "  checkpoint \(id)" + (job.lastCheckpoint.durationMillis.map { String(format: " (%.1f ms)", $0) } ?? "")
            } ?? ""
            lines.append(
                "job \(job.id) (\(job.name))  \(job.state)  restarts \(job.restarts)\(checkpoint)" + (job.failure.map { "  \($0)" } ?? ""))
            for vertex in job.vertices {
                let subtasks = vertex.subtasks.map { "[\($0.index)] \($0.state) @\($0.attempt) \($0.taskExecutor ?? "-")" }
                lines.append("  \(vertex.id): " + subtasks.joined(separator: ", "))
            }
        }
        if let history {
            lines.append("")
            let rows = [["ENDED RUN", "RUN", "STATE", "ENDED", "RESTARTS"]]
                + history.map { [$0.id, "\($0.run)", $0.state, $0.endedAt, "\($0.restarts)"] }
            let widths = (0..<5).map { column in rows.map { $0[column].count }.max()! }
            for row in rows { lines.append(zip(row, widths).map { $0.padding(toLength: $1 + 2, withPad: " ", startingAt: 0) }.joined()) }
        }
        return lines.joined(separator: "\n")
    }
}
