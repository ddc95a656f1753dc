import BatonProcessControl
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Debian's `chromium`, headless, driven over the DevTools protocol on a pipe
/// (`--remote-debugging-pipe`: commands in on fd 3, replies out on fd 4, each JSON message ended
/// by a NUL byte). A shell maps the pipes of a plain `Process` onto fds 3 and 4. `close()` kills
/// it by pid and removes its profile folder.
final class HeadlessChromium: @unchecked Sendable {
    // @unchecked: `messages` and `buffer` are guarded by `lock`; the rest is set once.
    static var executable: String? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    private let process = Process()
    private let commands = Pipe()
    private let replies = Pipe()
    private let profile: TemporaryDirectory
    private let lock = NSLock()
    private var buffer = Data()
    private var messages: [[String: Any]] = []
    private var nextID = 1
    private var session: String?

    init(executable: String) throws {
        profile = try TemporaryDirectory("baton-chromium")
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = [
            "-c", "exec \"$0\" \"$@\" 3<&0 4>&1 0</dev/null 1>/dev/null", executable, "--headless", "--no-sandbox", "--disable-gpu",
            "--no-first-run", "--disable-extensions", "--disable-crash-reporter", "--disable-breakpad", "--disable-dev-shm-usage", "--remote-debugging-pipe", "--user-data-dir=\(profile.path)",
            "--window-size=1280,900", "about:blank",
        ]
        process.standardInput = commands
        process.standardOutput = replies
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        replies.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.received(data)
        }
    }

    private func received(_ data: Data) {
        lock.lock()
        defer { lock.unlock() }
        buffer.append(data)
        while let end = buffer.firstIndex(of: 0) {
            let message = buffer[buffer.startIndex..<end]
            buffer.removeSubrange(buffer.startIndex...end)
            if let object = try? JSONSerialization.jsonObject(with: Data(message)) as? [String: Any] { messages.append(object) }
        }
    }

    struct ProtocolError: Error, CustomStringConvertible { var description: String }

    /// Sends one DevTools command and waits for its result.
    @discardableResult
    func call(_ method: String, _ params: [String: Any] = [:], inPage: Bool = true, timeout: Duration = .seconds(20)) async throws -> [String: Any] {
        let id = lock.withLock {
            nextID += 1
            return nextID - 1
        }
        var message: [String: Any] = ["id": id, "method": method, "params": params]
        if inPage, let session { message["sessionId"] = session }
        var data = try JSONSerialization.data(withJSONObject: message)
        data.append(0)
        commands.fileHandleForWriting.write(data)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let reply = lock.withLock { messages.firstIndex { ($0["id"] as? Int) == id }.map { messages.remove(at: $0) } }
            if let reply {
                if let error = reply["error"] { throw ProtocolError(description: "\(method): \(error)") }
                return reply["result"] as? [String: Any] ?? [:]
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ProtocolError(description: "\(method): no reply within \(timeout)")
    }

    /// Opens `url` in a new page and attaches to it; later commands go to that page.
    func open(_ url: String) async throws {
        let target = try await call("Target.createTarget", ["url": url], inPage: false)
        let attached = try await call("Target.attachToTarget", ["targetId": target["targetId"] as? String ?? "", "flatten": true], inPage: false)
        session = attached["sessionId"] as? String
    }

    /// The value of a JavaScript expression in the page.
    func evaluate(_ expression: String) async throws -> Any? {
        let result = try await call("Runtime.evaluate", ["expression": expression, "returnByValue": true])
        return (result["result"] as? [String: Any])?["value"]
    }

    /// Polls `expression` until it gives a value `condition` accepts, or `timeout` passes.
    func waitFor(_ expression: String, timeout: Duration = .seconds(30), _ condition: (Any?) -> Bool) async -> Any? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let value = try? await evaluate(expression), condition(value) { return value }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    func close() {
        replies.fileHandleForReading.readabilityHandler = nil
        // `Process` starts chromium as the leader of a process group of its own, which its
        // helpers (zygote, renderers) share: the whole group goes.
        kill(-process.processIdentifier, SIGKILL)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        profile.remove()
    }
}
