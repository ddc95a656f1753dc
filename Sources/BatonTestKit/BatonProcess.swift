public import BatonProcessControl
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Child processes in tests are `ChildProcess`es; these find the package's executables.
public typealias BatonProcess = ChildProcess

extension ChildProcess {
    /// The folder that holds the test bundle, which is where SwiftPM puts the executables.
    public static var productsDirectory: String {
        if let override = ProcessInfo.processInfo.environment["BATON_PRODUCTS_DIR"] { return override }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = (executable as NSString).deletingLastPathComponent
        while !FileManager.default.isExecutableFile(atPath: directory + "/baton"), directory != "/" {
            directory = (directory as NSString).deletingLastPathComponent
        }
        return directory
    }

    public static func executable(_ name: String) -> String { productsDirectory + "/" + name }

    /// Runs a command to its end and returns its exit status and output.
    public static func run(
        _ arguments: [String], executable: String = ChildProcess.executable("baton"), timeout: Duration = .seconds(60),
        environment: [String: String] = [:]
    ) throws -> (status: Int32, output: String) {
        let directory = try TemporaryDirectory("baton-run")
        defer { directory.remove() }
        let child = try ChildProcess(executable: executable, arguments: arguments, logPath: directory.file("out.log"), environment: environment)
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

/// Polls an async `condition` every `interval` until it holds or `timeout` passes.
public func eventuallyAsync(timeout: Duration, interval: Duration = .milliseconds(100), _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return await condition()
}
