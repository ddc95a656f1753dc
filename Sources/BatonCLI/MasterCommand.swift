import ArgumentParser
import BatonConfig
import BatonCore
import BatonElection
import BatonGroup
import BatonHAStore
import BatonHAStoreSelection
import BatonJobMaster
import BatonMasterService
import BatonMemberLocks
import BatonMetrics
import BatonREST
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

struct MasterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "master", abstract: "Run one master candidate of the group.")

    @OptionGroup var config: ConfigOption
    @Option(name: .long, help: "This master's id (masters[].id in the config).")
    var id: String
    @Option(name: .long, help: "session (many jobs share the cluster) or per-job (one job).")
    var mode: String = "session"
    @OptionGroup var takeover: TakeoverOption
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let configuration = try config.load()
        let takeoverPolicy = try takeover.policy()
        guard let memberID = MemberID(rawValue: id), let master = configuration.master(memberID) else {
            throw MemberStartup.unknownID(id, kind: "master", plural: "masters", in: configuration, known: configuration.masters.map(\.id.rawValue))
        }
        _ = try logging.bootstrap()
        let registry = MetricsExposition.bootstrap()
        let logger = Logger(label: "baton.master")
        ConfigWarnings.log(configuration, logger)
        if takeoverPolicy == .restartAll {
            logger.warning(
                "--takeover restart-all: a new leader will restart every task (a fault for testing the checkers)",
                metadata: [LogKey.member: "\(memberID)"])
        }
        let time = SystemTimeSource()
        let lock = try MemberStartup.lock(memberID.identifier, address: master.rpc.description, role: "master", in: configuration, time: time)
        let identity = LeaderIdentity(
            member: memberID, incarnation: lock.info.incarnation, address: lock.info.address, pid: lock.info.pid)
        let store = try HAStoreSelection.open(configuration.store, access: .readWrite, time: time)
        guard let dispatcherMode = Dispatcher.Mode(rawValue: mode) else {
            throw CommandFailure.usage("--mode: '\(mode)' is not session or per-job")
        }
        let liveness = try HAStoreSelection.liveness(configuration.store, election: configuration.election)
        let service = MasterService(
            identity: identity, configuration: configuration, store: store, liveness: liveness, logger: logger, time: time,
            options: .init(mode: dispatcherMode, takeover: takeoverPolicy))
        let rest = try RESTServer(
            configuration: configuration, store: store, liveness: liveness, identity: identity, metrics: registry,
            logger: Logger(label: "baton.rest"))
        try await runMemberServices(service, companions: [rest], logger: logger)
        withExtendedLifetime(lock) {}
    }
}

/// Ends the member (gracefully) when the `baton group` that started it is gone.
struct OrphanWatch: Service, CustomStringConvertible {
    var description: String { "OrphanWatch" }
    let groupPID: Int32
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            if ParentWatch.orphaned(from: groupPID) {
                logger.notice("the group process is gone: stopping", metadata: ["baton.group.pid": "\(groupPID)"])
                return
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }
}
