import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A child process whose output goes to a log file, stopped by pid: `stop()` sends SIGTERM and
/// then SIGKILL after a timeout, `kill()` SIGKILL; both wait for the exit. Benchmarks, the chaos
/// tool and tests call one of them in `defer`, so that no process outlives its owner.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `process` is created once; Foundation's Process is safe to query from any thread.
    private let process: Process
    public let logPath: String
    public let executable: String
    public let arguments: [String]
    private let environment: [String: String]

    /// Starts `executable` with `arguments`, its stdout and stderr going to `logPath`.
    public init(executable: String, arguments: [String], logPath: String, environment: [String: String] = [:]) throws {
        self.logPath = logPath
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        process.environment = env
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    /// The same command started again (after this one ended), its output going to `logPath`.
    public func relaunched(logPath: String) throws -> ChildProcess {
        try ChildProcess(executable: executable, arguments: arguments, logPath: logPath, environment: environment)
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }
    public var exitStatus: Int32? { process.isRunning ? nil : process.terminationStatus }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    public func signal(_ signal: Int32) { Glibc.kill(process.processIdentifier, signal) }

    /// Waits for the exit up to `timeout`; true when it exited.
    @discardableResult
    public func wait(timeout: Duration) -> Bool {
        let deadline = Date().addingTimeInterval(Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18)
        while process.isRunning && Date() < deadline { usleep(5_000) }
        return !process.isRunning
    }

    /// SIGTERM, then SIGKILL after `timeout`; always returns with the process gone.
    public func stop(timeout: Duration = .seconds(10)) {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGCONT)
        Glibc.kill(process.processIdentifier, SIGTERM)
        if !wait(timeout: timeout) { kill() }
    }

    /// SIGKILL and wait.
    public func kill() {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
