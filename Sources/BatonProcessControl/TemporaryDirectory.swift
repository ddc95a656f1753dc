import Foundation

/// A fresh folder under the system's temporary folder, removed by `remove()` (call it in `defer`).
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(_ label: String = "baton-test") throws {
        let base = NSTemporaryDirectory().hasSuffix("/") ? String(NSTemporaryDirectory().dropLast()) : NSTemporaryDirectory()
        var template = Array("\(base)/\(label)-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw CocoaError(.fileWriteUnknown) }
        path = String(cString: made)
    }

    public func file(_ name: String) -> String { "\(path)/\(name)" }

    public func write(_ text: String, to name: String) throws -> String {
        let file = file(name)
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    /// Removes the folder and everything in it. A file something else removes meanwhile (a sink
    /// dropping its in-progress file as its task ends) makes one pass of `removeItem` give up
    /// with the folder left behind: it tries again, a few times, until the folder is gone.
    public func remove() {
        for _ in 0..<5 {
            try? FileManager.default.removeItem(atPath: path)
            if !FileManager.default.fileExists(atPath: path) { return }
            usleep(20_000)
        }
    }
}

/// File contents for before/after comparisons (a refused store must be left byte for byte unchanged).
public enum FileBytes {
    public static func read(_ path: String) -> [UInt8]? {
        FileManager.default.contents(atPath: path).map(Array.init)
    }

    public static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }
}
