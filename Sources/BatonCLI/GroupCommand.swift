import ArgumentParser
import BatonConfig
import BatonCore
import BatonGroup
import BatonStatus
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

struct GroupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "group",
        abstract: "Run every master of the config on this machine, restarting a member that dies.")

    @OptionGroup var config: ConfigOption
    @Flag(name: .long, help: "Do not restart a member that dies (for tests).")
    var noRestart = false
    @Flag(name: .long, help: "Print the group's status whenever the leader or a member's role changes.")
    var showStatus = false
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let configuration = try config.load()
        _ = try logging.bootstrap()
        let logger = Logger(label: "baton.group")
        let supervisor = GroupSupervisor(
            executable: try ExecutablePath.current(),
            members: GroupSupervisor.members(of: configuration, logLevel: logging.logLevel),
            options: .init(
                restart: !noRestart, restartDelay: configuration.group.restartDelay,
                stopLast: { (try? GroupStatus.read(configuration))?.leader.flatMap { Identifier(rawValue: $0.id) } }),
            logger: logger)
        logger.info(
            "group starting",
            metadata: [
                "baton.config": "\(configuration.file)", LogKey.store: "\(configuration.store.path)",
                LogKey.backend: "\(configuration.store.backend.rawValue)",
            ])
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: supervisor)]
        if showStatus { services.append(.init(service: StatusPrinter(configuration: configuration))) }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// Prints the status table to standard output whenever the leader or a member's role changes.
struct StatusPrinter: Service {
    let configuration: HAConfiguration

    func run() async throws {
        var shown: String?
        while !Task.isShuttingDownGracefully {
            if let status = try? GroupStatus.read(configuration) {
                let summary = "\(status.leader?.id ?? "-")@\(status.leader?.epoch ?? 0) "
                    + status.masters.map { "\($0.id)=\($0.role)/\($0.pid ?? 0)" }.joined(separator: ",")
                if summary != shown {
                    shown = summary
                    FileHandle.standardOutput.write(Data(("\n" + status.text() + "\n\n").utf8))
                }
            }
            try? await Task.sleep(for: .milliseconds(250))
        }
    }
}

enum ExecutablePath {
    /// The running `baton` binary (so the group starts the same build it runs from).
    static func current() throws -> String {
        let path = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        return path
    }
}
