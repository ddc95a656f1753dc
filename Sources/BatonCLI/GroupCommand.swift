import ArgumentParser
import BatonConfig
import BatonCore
import BatonClient
import BatonGroup
import BatonHAStoreSelection
import BatonMemberLocks
import BatonJobGraph
import BatonStatus
import BatonWire
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
    @Flag(name: .long, help: "Print the group's status whenever the leader, a member's role or a job changes.")
    var showStatus = false
    @Option(name: .long, help: "Submit this job spec once the group is up (session mode: the group keeps running).")
    var submit: String?
    @Option(name: .long, help: "Per-job mode: run the group for this one job and exit with its outcome (0 finished, 1 otherwise).")
    var job: String?
    @Option(name: .long, help: "Run the members the config places on this host (masters[].host, taskexecutors[].host).")
    var host: String?
    @OptionGroup var takeover: TakeoverOption
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let configuration = try config.loadCreatingSecret()
        let hostID = try Self.host(host, in: configuration)
        let takeoverArguments = try takeover.arguments()
        _ = try logging.bootstrap()
        let logger = Logger(label: "baton.group")
        if submit != nil && job != nil { throw CommandFailure.usage("give --submit or --job, not both") }
        let specFile = job ?? submit
        let jobGraph = try specFile.map { try JobSpec.load(path: $0) }
        let configurationCopy = configuration
        let liveness = try HAStoreSelection.liveness(configuration.store, election: configuration.election)
        let supervisor = GroupSupervisor(
            executable: try ExecutablePath.current(),
            members: GroupSupervisor.members(
                of: configuration, host: hostID, logLevel: logging.logLevel, mode: job == nil ? "session" : "per-job",
                masterArguments: takeoverArguments),
            options: .init(
                restart: !noRestart, restartDelay: configuration.group.restartDelay,
                stopPhases: {
                    let leader = (try? GroupStatus.read(configurationCopy))?.leader.flatMap { Identifier(rawValue: $0.id) }
                    let standbys = configurationCopy.masters.map(\.id.identifier).filter { $0 != leader }
                    return [standbys, leader.map { [$0] } ?? [], configurationCopy.taskExecutors.map(\.id.identifier)]
                },
                memberExited: { member, pid in await liveness.certifyExit(of: member, pid: pid) }),
            logger: logger)
        logger.info(
            "group starting",
            metadata: [
                "baton.config": "\(configuration.file)", LogKey.store: "\(configuration.store.path)",
                LogKey.backend: "\(configuration.store.backend.rawValue)",
            ])
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: supervisor)]
        if showStatus { services.append(.init(service: StatusPrinter(configuration: configuration))) }
        let outcome = OutcomeBox()
        if let jobGraph, let specFile {
            services.append(
                .init(
                    service: JobSubmitter(
                        configuration: configuration, graph: jobGraph, specDirectory: JobSpec.folder(ofFile: specFile), waitForOutcome: job != nil,
                        outcome: outcome, logger: logger),
                    successTerminationBehavior: job != nil ? .gracefullyShutdownGroup : .ignore))
        }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        if job != nil {
            guard let state = outcome.state, state == "FINISHED" else {
                throw CommandFailure(status: 1, message: "the job ended \(outcome.state ?? "without an outcome")")
            }
        }
    }
}

extension GroupCommand {
    /// The host `--host` names: required when the config places members on hosts, refused when it
    /// places none, and one of the config's hosts.
    static func host(_ option: String?, in configuration: HAConfiguration) throws -> Identifier? {
        let hosts = configuration.hosts.map(\.rawValue)
        guard let option else {
            if hosts.isEmpty { return nil }
            throw CommandFailure.usage(
                "\(configuration.file) places members on hosts (\(hosts.joined(separator: ", "))): give --host to run one host's members")
        }
        guard !hosts.isEmpty else { throw CommandFailure.usage("--host \(option): \(configuration.file) places no member on a host") }
        guard hosts.contains(option), let host = Identifier(rawValue: option) else {
            throw CommandFailure.usage("--host: no member of \(configuration.file) is on host '\(option)' (hosts: \(hosts.joined(separator: ", ")))")
        }
        return host
    }
}

/// Prints the status table to standard output whenever the leader, a member's role or a job changes.
struct StatusPrinter: Service, CustomStringConvertible {
    var description: String { "StatusPrinter" }
    let configuration: HAConfiguration

    func run() async throws {
        var shown: String?
        while !Task.isShuttingDownGracefully {
            if let status = try? await GroupStatus.readLive(configuration) {
                let summary = "\(status.leader?.id ?? "-")@\(status.leader?.epoch ?? 0) "
                    + status.masters.map { "\($0.id)=\($0.role)/\($0.pid ?? 0)" }.joined(separator: ",")
                    + status.taskExecutors.map { "\($0.id)=\($0.pid ?? 0)/\($0.registeredEpoch ?? 0)" }.joined(separator: ",")
                    + status.jobs.map { job in "\(job.id)=\(job.state)/\(job.restarts)/" + job.vertices.flatMap(\.subtasks).map(\.state).joined() }
                    .joined(separator: ",")
                if summary != shown {
                    shown = summary
                    FileHandle.standardOutput.write(Data(("\n" + status.text() + "\n\n").utf8))
                }
            }
            try? await Task.sleep(for: .milliseconds(250))
        }
    }
}

/// The outcome of a per-job group's job.
final class OutcomeBox: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = NSLock()
    private var value: String?
    var state: String? {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}

/// Submits a job once a leader and a task executor are up; in per-job mode it waits for the
/// outcome, and its end stops the group.
struct JobSubmitter: Service, CustomStringConvertible {
    var description: String { "JobSubmitter" }
    let configuration: HAConfiguration
    let graph: JobGraph
    /// The folder of the spec file (a root its paths may use).
    let specDirectory: String
    let waitForOutcome: Bool
    let outcome: OutcomeBox
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully {
            if let status = try? await GroupStatus.readLive(configuration), status.leader?.alive == true,
                status.taskExecutors.contains(where: { $0.registeredEpoch != nil })
            {
                break
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        let client = LeaderClient(configuration: configuration, logger: logger, patience: .seconds(60))
        var request = WireEnvelope()
        request.submitJob = .with {
            $0.jobGraphJson = (try? JSONEncoder().encode(graph)) ?? Data()
            $0.specDirectory = specDirectory
        }
        let reply = try await client.request(request)
        guard case .jobAccepted(let accepted) = reply.body else {
            logger.error("the job was refused", metadata: [LogKey.error: "\(reply.failure.message)"])
            outcome.state = "REFUSED"
            return
        }
        print("submitted job \(accepted.job)")
        guard waitForOutcome else { return }
        var wait = WireEnvelope()
        wait.awaitJob = .with { $0.job = accepted.job }
        while true {
            let result = try await client.request(wait, timeout: .seconds(86_400))
            if case .jobOutcome(let ended) = result.body {
                print("job \(ended.job) \(ended.state)" + (ended.failure.isEmpty ? "" : ": \(ended.failure)"))
                outcome.state = ended.state
                return
            }
            try await Task.sleep(for: .milliseconds(200))
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
