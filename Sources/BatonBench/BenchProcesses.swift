import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A temporary folder that a benchmark works in and removes afterwards.
struct BenchWorkspace {
    let path: String

    init(prefix: String) throws {
        let base = NSTemporaryDirectory().hasSuffix("/") ? String(NSTemporaryDirectory().dropLast()) : NSTemporaryDirectory()
        var template = Array("\(base)/\(prefix)-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: "\(NSTemporaryDirectory())/\(prefix)"])
        }
        path = String(cString: made)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A child process a benchmark starts and always stops.
final class ChildProcess: @unchecked Sendable {
    // @unchecked: `process` is only touched by the benchmark's one task.
    private let process: Process

    private init(process: Process) { self.process = process }

    static func start(executable: String, arguments: [String], logFile: String) throws -> ChildProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        _ = FileManager.default.createFile(atPath: logFile, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logFile))
        process.standardOutput = log
        process.standardError = log
        try process.run()
        return ChildProcess(process: process)
    }

    var pid: Int32 { process.processIdentifier }

    /// SIGTERM, then SIGKILL after `timeout`; waits for the exit.
    func stop(timeout: Duration) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(Double(timeout.components.seconds))
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
