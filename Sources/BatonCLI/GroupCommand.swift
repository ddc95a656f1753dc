import ArgumentParser
import BatonConfig
import BatonCore
import BatonGroup
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
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let configuration = try config.load()
        _ = try logging.bootstrap()
        let logger = Logger(label: "baton.group")
        let supervisor = GroupSupervisor(
            executable: try ExecutablePath.current(),
            members: GroupSupervisor.members(of: configuration, logLevel: logging.logLevel),
            options: .init(restart: !noRestart, restartDelay: configuration.group.restartDelay),
            logger: logger)
        logger.info(
            "group starting",
            metadata: [
                "baton.config": "\(configuration.file)", LogKey.store: "\(configuration.store.path)",
                LogKey.backend: "\(configuration.store.backend.rawValue)",
            ])
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [supervisor], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

enum ExecutablePath {
    /// The running `baton` binary (so the group starts the same build it runs from).
    static func current() throws -> String {
        let path = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        return path
    }
}
