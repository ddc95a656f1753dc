import ArgumentParser
import BatonConfig
import BatonCore
import BatonFiles
import BatonGroup
import BatonHAStore
import BatonHAStoreSelection
import BatonMemberLocks
import BatonTaskExecutor
import Foundation
import BatonMetrics
import BatonREST
import Logging
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

struct TaskExecutorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "taskexecutor", abstract: "Run one task executor of the group.")

    @OptionGroup var config: ConfigOption
    @Option(name: .long, help: "This task executor's id (taskexecutors[].id in the config).")
    var id: String
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let configuration = try config.load()
        guard let executorID = ResourceID(rawValue: id), let settings = configuration.taskExecutors.first(where: { $0.id == executorID }) else {
            throw MemberStartup.unknownID(
                id, kind: "task executor", plural: "task executors", in: configuration, known: configuration.taskExecutors.map(\.id.rawValue))
        }
        _ = try logging.bootstrap()
        // Per-task series cost a registration each; without an exposition nothing would read them.
        let registry = settings.metrics == nil ? nil : MetricsExposition.bootstrap()
        let logger = Logger(label: "baton.taskexecutor")
        ConfigWarnings.log(configuration, logger)
        // Checkpoints are written where every member can read them: make sure this one can.
        do {
            try StorageProbe.verify(configuration.checkpoints.directory, probeName: executorID.rawValue)
        } catch {
            throw CommandFailure.failed("task executor \(executorID) cannot start: checkpoints.dir \(error.description)")
        }
        let lock = try MemberStartup.lock(executorID.identifier, address: settings.data.description, role: "taskexecutor", in: configuration, time: SystemTimeSource())
        let store = try await openStoreWhenItExists(configuration, logger: logger)
        let service = try TaskExecutorService(
            id: executorID, configuration: configuration, store: store, logger: logger, incarnation: lock.info.incarnation)
        let metrics = settings.metrics.flatMap { address in
            registry.map { MetricsServer(address: address, registry: $0, logger: Logger(label: "baton.metrics")) }
        }
        try await runMemberServices(service, companions: metrics.map { [$0] } ?? [], logger: logger)
        withExtendedLifetime(lock) {}
    }

    /// A task executor may start before any master created the store: it waits for it.
    private func openStoreWhenItExists(_ configuration: HAConfiguration, logger: Logger) async throws -> HAStore {
        var announced = false
        while true {
            do {
                return try HAStoreSelection.open(configuration.store, access: .readOnly)
            } catch let error as HAStoreError where error.code == .notFound {
                if !announced { logger.info("waiting for a master to create the store", metadata: [LogKey.store: "\(configuration.store.path)"]) }
                announced = true
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }
}

/// Runs a member's service the way every member runs: graceful shutdown on SIGTERM (and SIGINT
/// unless under `baton group`), and an end when the group that started it is gone. `companions`
/// (a REST API, a metrics endpoint) run beside it and never end the member by ending.
func runMemberServices(_ service: any Service, companions: [any Service] = [], logger: Logger) async throws {
    var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: service)]
    services += companions.map { .init(service: $0, successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore) }
    var signals: [UnixSignal] = [.sigterm, .sigint]
    if let groupPID = ParentWatch.groupPID {
        services.append(.init(service: OrphanWatch(groupPID: groupPID, logger: logger), successTerminationBehavior: .gracefullyShutdownGroup))
        // Under `baton group`, Ctrl-C reaches every member at once; the group stops them in order
        // with SIGTERM, so members ignore SIGINT.
        signal(SIGINT, SIG_IGN)
        signals = [.sigterm]
    }
    let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: services, gracefulShutdownSignals: signals, logger: logger))
    try await group.run()
}
