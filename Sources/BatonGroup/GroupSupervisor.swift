public import BatonConfig
public import BatonCore
import Foundation
public import Logging
public import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// `baton group`: runs every member of a config on this machine as a child process, restarts a
/// member that dies after `group.restartDelay` (as systemd or Kubernetes would), and on graceful
/// shutdown (SIGTERM, SIGINT) stops them all: SIGTERM first, SIGKILL after `stopTimeout`.
///
/// Children get `BATON_GROUP_PID` in their environment and end themselves when the group process
/// is gone (see `ParentWatch`), so a group killed with SIGKILL leaves no orphans behind.
public actor GroupSupervisor: Service {
    /// One member the group runs.
    public struct Member: Sendable, Hashable {
        public var id: Identifier
        /// The arguments after the executable.
        public var arguments: [String]
        public init(id: Identifier, arguments: [String]) {
            self.id = id
            self.arguments = arguments
        }
    }

    public struct Options: Sendable {
        public var restart: Bool
        public var restartDelay: Duration
        public var stopTimeout: Duration
        /// The order to stop members in, asked when the group stops: phases, each stopped once
        /// the one before it ended (members in no phase go first). Standbys, then the leader, then
        /// task executors: no cascade of short terms, no failovers while the group goes down.
        public var stopPhases: @Sendable () -> [[Identifier]]
        /// Called at once when a member's process (`pid`) ended, before anything else is done
        /// about it: the crash fast path across machines (the member's death is certified in etcd,
        /// so its standbys need not wait for its lease).
        public var memberExited: @Sendable (Identifier, Int32) async -> Void

        public init(
            restart: Bool = true, restartDelay: Duration = .seconds(1), stopTimeout: Duration = .seconds(5),
            stopPhases: @escaping @Sendable () -> [[Identifier]] = { [] },
            memberExited: @escaping @Sendable (Identifier, Int32) async -> Void = { _, _ in }
        ) {
            self.restart = restart
            self.restartDelay = restartDelay
            self.stopTimeout = stopTimeout
            self.stopPhases = stopPhases
            self.memberExited = memberExited
        }
    }

    private enum Input: Sendable {
        case exited(Identifier, pid: Int32, status: Int32, reason: Process.TerminationReason)
        case restart(Identifier)
        case shutdown
        case escalate
    }

    private let executable: String
    private let members: [Member]
    private let options: Options
    private let logger: Logger
    private var running: [Identifier: Process] = [:]
    private var stopping = false
    private var phases: [[Identifier]] = []
    private var terminated: Set<Identifier> = []

    public init(executable: String, members: [Member], options: Options, logger: Logger) {
        self.executable = executable
        self.members = members
        self.options = options
        self.logger = logger
    }

    /// The members of `configuration`: every master (in `mode`) and every task executor, or, with
    /// `host`, those the config places on that host. `masterArguments` go to every master's
    /// command line (e.g. `--takeover restart-all`).
    public static func members(
        of configuration: HAConfiguration, host: Identifier? = nil, logLevel: String?, mode: String = "session", masterArguments: [String] = []
    ) -> [Member] {
        let masters = configuration.masters.filter { host == nil || $0.host == host }.map { master in
            var arguments = ["master", "--config", configuration.file, "--id", master.id.rawValue, "--mode", mode] + masterArguments
            if let logLevel { arguments += ["--log-level", logLevel] }
            return Member(id: master.id.identifier, arguments: arguments)
        }
        let executors = configuration.taskExecutors.filter { host == nil || $0.host == host }.map { executor in
            var arguments = ["taskexecutor", "--config", configuration.file, "--id", executor.id.rawValue]
            if let logLevel { arguments += ["--log-level", logLevel] }
            return Member(id: executor.id.identifier, arguments: arguments)
        }
        return masters + executors
    }

    public func run() async throws {
        let (inputs, continuation) = AsyncStream<Input>.makeStream()
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                func later(_ delay: Duration, _ input: Input) {
                    group.addTask {
                        try? await Task.sleep(for: delay)
                        continuation.yield(input)
                    }
                }
                for member in members where !start(member, continuation: continuation) {
                    later(options.restartDelay, .restart(member.id))
                }
                for await input in inputs {
                    switch input {
                    case .exited(let id, let pid, let status, let reason):
                        running[id] = nil
                        await options.memberExited(id, pid)
                        let how = reason == .uncaughtSignal ? "killed by signal \(status)" : "exited with status \(status)"
                        let metadata: Logger.Metadata = [LogKey.member: "\(id)", LogKey.pid: "\(pid)", "baton.how": "\(how)"]
                        if stopping {
                            logger.info("member stopped", metadata: metadata)
                            if running.isEmpty { continuation.finish() }
                            if startNextPhase() { later(options.stopTimeout, .escalate) }
                        } else if options.restart {
                            logger.notice(
                                "member died; restarting it after \(DurationText.format(options.restartDelay))", metadata: metadata)
                            later(options.restartDelay, .restart(id))
                        } else {
                            logger.notice("member died (not restarted: --no-restart)", metadata: metadata)
                        }
                    case .restart(let id):
                        guard !stopping, running[id] == nil, let member = members.first(where: { $0.id == id }) else {
                            continue
                        }
                        if !start(member, continuation: continuation) { later(options.restartDelay, .restart(id)) }
                    case .shutdown:
                        guard !stopping else { continue }
                        stopping = true
                        logger.info("stopping the group", metadata: ["baton.members": "\(running.count)"])
                        if running.isEmpty { continuation.finish() }
                        let ordered = options.stopPhases()
                        let phased = Set(ordered.flatMap { $0 })
                        phases = [running.keys.filter { !phased.contains($0) }.sorted()] + ordered
                        if startNextPhase() { later(options.stopTimeout, .escalate) }
                    case .escalate:
                        for (id, process) in running where terminated.contains(id) {
                            logger.warning(
                                "member did not stop in time: killing it",
                                metadata: [LogKey.member: "\(id)", LogKey.pid: "\(process.processIdentifier)"])
                            kill(process.processIdentifier, SIGKILL)
                        }
                        if startNextPhase() { later(options.stopTimeout, .escalate) }
                    }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            continuation.yield(.shutdown)
        }
        logger.info("group stopped")
    }

    /// When every member of the phases started so far has ended, terminates the next phase that
    /// has running members; true when one was started.
    private func startNextPhase() -> Bool {
        guard running.keys.allSatisfy({ !terminated.contains($0) }) || running.isEmpty else { return false }
        while !phases.isEmpty {
            let phase = phases.removeFirst().filter { running[$0] != nil }
            guard !phase.isEmpty else { continue }
            for id in phase { terminate(id) }
            return true
        }
        return false
    }

    private func terminate(_ id: Identifier) {
        guard let process = running[id] else { return }
        terminated.insert(id)
        kill(process.processIdentifier, SIGTERM)
    }

    /// A member's environment: the group's own, less every `BATON_*` variable (a member is
    /// configured by its command line alone), plus `BATON_GROUP_PID`.
    public static func memberEnvironment(inherited: [String: String], groupPID: Int32) -> [String: String] {
        var environment = inherited.filter { !$0.key.hasPrefix("BATON_") }
        environment["BATON_GROUP_PID"] = String(groupPID)
        return environment
    }

    /// Starts `member`; false when it could not be started.
    private func start(_ member: Member, continuation: AsyncStream<Input>.Continuation) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = member.arguments
        process.environment = Self.memberEnvironment(inherited: ProcessInfo.processInfo.environment, groupPID: getpid())
        let id = member.id
        process.terminationHandler = { finished in
            continuation.yield(
                .exited(id, pid: finished.processIdentifier, status: finished.terminationStatus, reason: finished.terminationReason))
        }
        do {
            try process.run()
            running[id] = process
            logger.info("member started", metadata: [LogKey.member: "\(id)", LogKey.pid: "\(process.processIdentifier)"])
            return true
        } catch {
            logger.error("cannot start member", metadata: [LogKey.member: "\(id)", LogKey.error: "\(error)"])
            return false
        }
    }
}

/// Ends a group member when its group is gone: the group's pid is in `BATON_GROUP_PID`, and a child
/// whose parent changed has been orphaned (the group was killed).
public enum ParentWatch {
    /// The group pid this process was started under, if any.
    public static var groupPID: Int32? {
        ProcessInfo.processInfo.environment["BATON_GROUP_PID"].flatMap { Int32($0) }
    }

    /// Whether the group that started this process is gone.
    public static func orphaned(from groupPID: Int32) -> Bool { getppid() != groupPID }
}
