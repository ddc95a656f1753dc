import ArgumentParser
import BatonJobMaster
import BatonClient
import BatonConfig
import BatonTLS
import BatonHAStore
import BatonMemberLocks
import Foundation
import Logging

/// The `baton` command: every subcommand, and the mapping of errors to exit statuses
/// (0 success, 1 a failed check or operation, 2 bad usage or config).
struct BatonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baton",
        abstract: "Baton: a dataflow runtime with a highly available master.",
        subcommands: [
            MasterCommand.self, TaskExecutorCommand.self, GroupCommand.self, SubmitCommand.self, StatusCommand.self, CancelCommand.self,
            SavepointCommand.self, StopCommand.self, AuditCommand.self, ChaosCommand.self, SimulateCommand.self, BenchCommand.self, RunCommand.self,
            InitCommand.self,
            CertsCommand.self,
        ])

    /// Parses the command line, runs the command, and exits with Baton's exit statuses.
    static func runAndExit() async -> Never {
        // Every file Baton makes is its owner's alone unless a config's files.mode says otherwise.
        FileMode.private.apply()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            Foundation.exit(0)
        } catch let error as ConfigError {
            FileHandle.standardError.write(Data("baton: config error: \(error)\n".utf8))
            Foundation.exit(2)
        } catch let error as HAStoreError {
            FileHandle.standardError.write(Data("baton: \(error)\n".utf8))
            Foundation.exit(1)
        } catch let error as MemberLockError {
            FileHandle.standardError.write(Data("baton: \(error)\n".utf8))
            Foundation.exit(1)
        } catch let error as CommandFailure {
            FileHandle.standardError.write(Data("baton: \(error.message)\n".utf8))
            Foundation.exit(error.status)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            // Usage errors (ArgumentParser's 64) are Baton's 2.
            Foundation.exit(code == .validationFailure ? 2 : code.rawValue == 2 ? 2 : 1)
        }
    }
}

/// The entry point of the `baton` executable.
public enum BatonMain {
    public static func run() async -> Never { await BatonCommand.runAndExit() }
}

/// A failure a command reports with its exit status.
struct CommandFailure: Error {
    var status: Int32
    var message: String
    static func usage(_ message: String) -> CommandFailure { CommandFailure(status: 2, message: message) }
    static func failed(_ message: String) -> CommandFailure { CommandFailure(status: 1, message: message) }
}

/// Options every long-running command shares.
struct LoggingOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = ProcessInfo.processInfo.environment["BATON_LOG_LEVEL"] ?? "info"

    func bootstrap() throws -> Logger.Level {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw CommandFailure.usage("--log-level: '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return level
    }
}

/// `--takeover reconcile|restart-all`: `restart-all` is a fault for testing the checkers (a new
/// leader restarts every task, as Flink does). Only ever set on a command line.
struct TakeoverOption: ParsableArguments {
    @Option(
        name: .long,
        help: "What a new leader does with running tasks: reconcile (default), or restart-all, a fault for testing the checkers.")
    var takeover: String = TakeoverPolicy.reconcile.rawValue

    func policy() throws -> TakeoverPolicy {
        do { return try TakeoverPolicy.parse(takeover) } catch { throw CommandFailure.usage(error.description) }
    }

    /// The arguments that hand the same policy to a child process (none for the default).
    func arguments() throws -> [String] {
        let policy = try policy()
        return policy == .reconcile ? [] : ["--takeover", policy.rawValue]
    }
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "The master group's config file (ha-config/*.yaml).")
    var config: String

    /// Loads the config and makes its `files.mode` the mode of every file made from now on.
    func load() throws -> HAConfiguration {
        let configuration = try HAConfiguration.load(path: config)
        configuration.fileMode.apply()
        return configuration
    }

    /// Creates the config's secret file when it names one that does not exist yet, then loads
    /// the config (for the commands that start a group of their own: group, chaos, benchmarks).
    func loadCreatingSecret() throws -> HAConfiguration {
        for file in try SecretFile.ensureAll(forConfig: config) where file.created {
            FileHandle.standardError.write(Data("baton: created \(file.kind.name) \(file.path) (mode 0600)\n".utf8))
        }
        return try load()
    }
}

/// `baton init`: what a config needs before its group first starts.
struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract:
            "Create the config's secret file (rpc.secretFile) and REST token file (rest.tokenFile), 32 random bytes each, mode 0600, when they do not exist.")

    @OptionGroup var config: ConfigOption

    func run() async throws {
        let files = try SecretFile.ensureAll(forConfig: config.config)
        _ = try config.load()
        if !files.contains(where: { $0.kind == .clusterSecret }) {
            print("\(config.config) holds its secret inline (rpc.secret): nothing to create; a secret file (rpc.secretFile) is safer")
        }
        for file in files {
            print(file.created ? "created \(file.path) (mode 0600)" : "\(file.path) exists; left as it is")
        }
    }
}

/// Warnings about a config that every member logs when it starts.
enum ConfigWarnings {
    static func log(_ configuration: HAConfiguration, _ logger: Logger) {
        if configuration.rpc.secretFile == nil {
            logger.warning(
                "rpc.secret is inline in the config: whoever reads the config has the cluster's key; name a file of mode 0600 with rpc.secretFile instead",
                metadata: ["baton.config": "\(configuration.file)"])
        }
    }
}

/// `baton certs`: a cluster CA and a certificate per member, for `rpc.tls` in development and tests.
struct CertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "Write a cluster CA (ca.pem) and, for every master and task executor of the config and for clients, <id>.pem and <id>.key (mode 0600) into a folder, for rpc.tls.",
        discussion: """
            For development and tests: the CA's key is not kept, so run it again (into an emptied
            folder) for a new set, e.g. when members are added. Refuses a folder that holds a
            ca.pem already. Point the config at the folder with `rpc: { tls: { dir: DIR } }`.
            """)

    @OptionGroup var config: ConfigOption
    @Option(name: .customLong("out"), help: "The folder to write into (made 0700 when missing).") var out: String
    @Option(help: "How many days the certificates are valid.") var days: Int = 365

    func run() async throws {
        guard (1...36_500).contains(days) else { throw CommandFailure.usage("--days must be between 1 and 36500") }
        let configuration = try config.loadCreatingSecret()
        let folder = HAConfiguration.absolutePath(out, relativeTo: FileManager.default.currentDirectoryPath)
        let holders: [String]
        do {
            holders = try ClusterCertificates.issue(for: configuration, into: folder, validity: TimeInterval(days) * 86_400)
        } catch {
            throw CommandFailure.failed("cannot write the certificates: \(error)")
        }
        print("wrote \(folder)/ca.pem and certificates for \(holders.joined(separator: ", ")) (mode 0600), valid \(days) days")
    }
}
