import BatonAudit
public import BatonConfig
import BatonClient
import BatonCore
public import BatonElection
public import BatonHAStore
public import BatonMemberLocks
import BatonWire
import Foundation
import Hummingbird
public import Logging

/// What one master knows of its cluster, for the REST API and the live feed: the leader's report
/// (over RPC, from whichever master leads) and what the store holds (leadership, terms,
/// failovers, the audit), which any master reads itself.
public struct ClusterView: Sendable {
    let configuration: HAConfiguration
    let store: HAStore
    /// Who among the members is alive (member locks or etcd keys).
    let liveness: any MemberLiveness
    let identity: LeaderIdentity
    let logger: Logger

    /// Asks the leader as this master (with TLS, its own certificate), finding it through the
    /// store handle the master holds.
    let client: LeaderClient

    init(configuration: HAConfiguration, store: HAStore, liveness: any MemberLiveness, identity: LeaderIdentity, logger: Logger) {
        self.configuration = configuration
        self.store = store
        self.liveness = liveness
        self.identity = identity
        self.logger = logger
        client = LeaderClient(
            configuration: configuration, identity: identity.member.rawValue, logger: logger, patience: .seconds(2),
            leaderLookup: {
                guard let holder = try await store.leadership()?.holder else { return nil }
                return LeaderClient.leader(address: holder.address, id: holder.member.rawValue)
            })
    }

    /// The leader's reply to `request`; 503 when no leader answers.
    func askLeader(_ request: WireEnvelope, timeout: Duration = .seconds(10)) async throws -> WireEnvelope {
        do {
            return try await client.request(request, timeout: timeout)
        } catch let error as LeaderClient.ClientError {
            throw RESTError(.serviceUnavailable, "no leader answers: \(error.message)", retryAfter: 1)
        }
    }

    func leaderStatus() async throws -> LeaderStatusReport {
        var request = WireEnvelope()
        request.statusRequest = WireStatusRequest()
        let reply = try await askLeader(request)
        guard case .statusReply(let status) = reply.body else { throw RESTError(.badGateway, "the leader did not report: \(reply.failure.message)") }
        do {
            return try JSONDecoder().decode(LeaderStatusReport.self, from: status.statusJson)
        } catch {
            throw RESTError(.badGateway, "the leader's report does not decode: \(error)")
        }
    }

    // MARK: what the store holds

    struct Terms: Encodable { var terms: [AuditReport.Term] }
    struct Failovers: Encodable { var failovers: [AuditReport.Failover] }

    /// The audit's report over the store: terms and failovers always, the jobs' checks with `jobs`.
    func storeReport(jobs: Bool = false) async throws -> AuditReport {
        let retain = configuration.checkpoints.retain
        return try await store.read { reader in
            let history = try AuditHistory.read(reader, jobs: jobs)
            return Audit.check(history, retain: retain)
        }
    }

    struct Leadership: Encodable {
        struct Leader: Encodable {
            var id: String
            var epoch: UInt64
            var address: String
            var pid: Int32
            var since: String
            var renewedAt: String
            var leaseExpiresAt: String
        }
        struct Master: Encodable {
            var id: String
            var role: String
            var pid: Int32?
            var address: String
            var rest: String
        }
        var leader: Leader?
        var epoch: UInt64
        var masters: [Master]
    }

    func leadership() async throws -> Leadership {
        let record = try await store.leadership()
        let probes = try await liveness.probe(configuration.masters.map(\.id.identifier))
        let leader = record.flatMap { record in
            record.holder.map { holder in
                Leadership.Leader(
                    id: holder.member.rawValue, epoch: record.epoch.rawValue, address: holder.address, pid: holder.pid,
                    since: record.termStartedAt.iso8601, renewedAt: record.renewedAt.iso8601,
                    leaseExpiresAt: (record.renewedAt + .milliseconds(record.leaseMillis)).iso8601)
            }
        }
        let masters = configuration.masters.map { master -> Leadership.Master in
            switch probes[master.id.identifier] ?? .neverRan {
            case .alive(let info):
                let leads = record?.holder.map { $0.member == master.id && $0.incarnation == info?.incarnation } ?? false
                return .init(id: master.id.rawValue, role: leads ? "leader" : "standby", pid: info?.pid, address: master.rpc.description, rest: master.rest.description)
            case .heldByAnother:
                return .init(id: master.id.rawValue, role: "blocked", pid: nil, address: master.rpc.description, rest: master.rest.description)
            case .down, .neverRan:
                return .init(id: master.id.rawValue, role: "down", pid: nil, address: master.rpc.description, rest: master.rest.description)
            }
        }
        return Leadership(leader: leader, epoch: record?.epoch.rawValue ?? 0, masters: masters)
    }

    struct ClusterConfig: Encodable {
        var cluster: String
        var batonVersion: String
        var backend: String
        var masters: [String]
        var taskmanagers: [String]
        var checkpointInterval: String
        var electionLease: String

        enum CodingKeys: String, CodingKey {
            case cluster, batonVersion = "baton-version", backend, masters, taskmanagers, checkpointInterval = "checkpoint-interval",
                electionLease = "election-lease"
        }
    }

    func clusterConfig() -> ClusterConfig {
        ClusterConfig(
            cluster: configuration.cluster.rawValue, batonVersion: RESTServer.version, backend: configuration.store.backend.rawValue,
            masters: configuration.masters.map(\.id.rawValue), taskmanagers: configuration.taskExecutors.map(\.id.rawValue),
            checkpointInterval: DurationText.format(configuration.checkpoints.interval),
            electionLease: DurationText.format(configuration.election.leaseDuration))
    }

    // MARK: the live feed

    /// What the dashboard shows, in one document: leadership and failovers from the store, the
    /// rest from the leader (absent, with `errors`, while no leader answers).
    struct Snapshot: Encodable {
        struct JobPage: Encodable {
            var detail: RESTViews.JobDetail
            var vertices: [RESTViews.VertexDetail]
            var checkpoints: RESTViews.Checkpoints
            var exceptions: RESTViews.Exceptions
        }
        var servedBy: String
        var leadership: Leadership?
        var failovers: [AuditReport.Failover] = []
        var overview: RESTViews.Overview?
        var taskmanagers: [RESTViews.TaskManager] = []
        var jobs: [JobPage] = []
        var errors: [String] = []
    }

    func snapshot() async -> Snapshot {
        var snapshot = Snapshot(servedBy: identity.member.rawValue)
        do {
            snapshot.leadership = try await leadership()
            snapshot.failovers = try await storeReport().failovers
        } catch {
            snapshot.errors.append("the store: \(error)")
        }
        do {
            let report = try await leaderStatus()
            let now = RESTServer.nowMillis()
            snapshot.overview = RESTViews.overview(report, version: RESTServer.version)
            snapshot.taskmanagers = RESTViews.taskManagers(report).taskmanagers
            snapshot.jobs = report.jobs.compactMap { job in
                guard let detail = RESTViews.job(report, id: job.id, nowMillis: now), let checkpoints = RESTViews.checkpoints(report, job: job.id),
                    let exceptions = RESTViews.exceptions(report, job: job.id)
                else { return nil }
                return Snapshot.JobPage(
                    detail: detail, vertices: job.vertices.compactMap { RESTViews.vertex(report, job: job.id, vertex: $0.id) },
                    checkpoints: checkpoints, exceptions: exceptions)
            }
        } catch let error as RESTError {
            snapshot.errors += error.messages
        } catch {
            snapshot.errors.append("\(error)")
        }
        return snapshot
    }

    func snapshotJSON() async -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(await snapshot())).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
