import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A `baton` (or `baton-store`) child process for tests: output goes to a log file, and the process
/// is killed by pid in `stop()` / `kill()` (call one in `defer`), so that no test leaves one behind.
public final class BatonProcess: @unchecked Sendable {
    // @unchecked: `process` is created once; Foundation's Process is safe to query from any thread.
    private let process: Process
    public let logPath: String
    public let arguments: [String]

    /// The folder that holds the test bundle, which is where SwiftPM puts the executables.
    public static var productsDirectory: String {
        if let override = ProcessInfo.processInfo.environment["BATON_PRODUCTS_DIR"] { return override }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = (executable as NSString).deletingLastPathComponent
        // XCTest bundles on Linux are executables inside `<products>/X.xctest` or are the file itself.
        while !FileManager.default.isExecutableFile(atPath: directory + "/baton"), directory != "/" {
            directory = (directory as NSString).deletingLastPathComponent
        }
        return directory
    }

    public static func executable(_ name: String) -> String { productsDirectory + "/" + name }

    /// Starts `executable` with `arguments`, its stdout and stderr going to `logPath`.
    public init(executable: String = BatonProcess.executable("baton"), arguments: [String], logPath: String, environment: [String: String] = [:]) throws {
        self.logPath = logPath
        self.arguments = arguments
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

    /// Runs a command to its end and returns its exit status and output.
    public static func run(_ arguments: [String], executable: String = BatonProcess.executable("baton"), timeout: Duration = .seconds(60))
        throws -> (status: Int32, output: String)
    {
        let directory = try TemporaryDirectory("baton-run")
        defer { directory.remove() }
        let child = try BatonProcess(executable: executable, arguments: arguments, logPath: directory.file("out.log"))
        defer { child.kill() }
        guard child.wait(timeout: timeout) else {
            throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "\(arguments) did not end within \(timeout)"])
        }
        return (child.exitStatus ?? -1, child.log)
    }
}

/// Polls `condition` every `interval` until it holds or `timeout` passes.
public func eventually(timeout: Duration, interval: Duration = .milliseconds(20), _ condition: () throws -> Bool) rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try condition() { return true }
        usleep(UInt32(interval.components.attoseconds / 1_000_000_000_000) + UInt32(interval.components.seconds) * 1_000_000)
    }
    return try condition()
}
