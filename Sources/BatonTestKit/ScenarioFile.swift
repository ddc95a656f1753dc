public import Foundation

/// Data-driven test files in the style of etcd-io/raft's interaction tests: a file is a list of
/// commands (`> command key=value ...`), each followed by the output expected after it. Lines
/// starting with `#`, blank lines and lines a runner declares as settings pass through. Running
/// with `BATON_REWRITE_SCENARIOS=1` writes the actual output into the file (review the diff).
public enum ScenarioFile {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// The `.txt` files of `directory`, sorted.
    public static func files(in directory: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".txt") }.sorted()
    }

    /// Whether tests should write actual outputs into the files instead of comparing.
    public static var rewriting: Bool { ProcessInfo.processInfo.environment["BATON_REWRITE_SCENARIOS"] == "1" }

    /// Runs the scenario `file` of `directory` with `run` and returns the text expected and the
    /// text produced; when rewriting, writes the produced text into the file (and returns it as
    /// both).
    public static func outcome(of file: String, in directory: URL, run: (String) throws -> String) throws -> (expected: String, actual: String) {
        let path = directory.appendingPathComponent(file).path
        let expected = try String(contentsOfFile: path, encoding: .utf8)
        let actual = try run(expected)
        guard rewriting else { return (expected, actual) }
        try actual.write(toFile: path, atomically: true, encoding: .utf8)
        return (actual, actual)
    }

    /// Runs `text`. Comments and blank lines pass through; a line whose first word is one of
    /// `settings` goes to `setting` (word and fields) and passes through; `> name fields` goes to
    /// `command`, whose output lines replace whatever followed the command in the file. Returns
    /// the text with the actual outputs.
    public static func run(
        _ text: String, settings: Set<String> = [], setting: (_ word: String, _ fields: [String: String]) throws -> Void = { _, _ in },
        command: (_ name: String, _ fields: [String: String]) throws -> [String]
    ) throws -> String {
        var output: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            let words = line.split(separator: " ", maxSplits: 1).map(String.init)
            if line.hasPrefix("> ") {
                output.append(line)
                let parts = line.dropFirst(2).split(separator: " ", maxSplits: 1).map(String.init)
                output += try command(parts[0], fields(parts.count > 1 ? Substring(parts[1]) : ""))
            } else if line.hasPrefix("#") || line.isEmpty {
                output.append(line)
            } else if let word = words.first, settings.contains(word) {
                try setting(word, fields(words.count > 1 ? Substring(words[1]) : ""))
                output.append(line)
            }
            // Anything else is the expected output of the previous command: replaced by the actual one.
        }
        return output.joined(separator: "\n")
    }

    /// `key=value key2 ...` (a bare word maps to "").
    public static func fields(_ text: Substring) -> [String: String] {
        var fields: [String: String] = [:]
        for word in text.split(separator: " ") {
            let parts = word.split(separator: "=", maxSplits: 1).map(String.init)
            fields[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        return fields
    }

    public static func int(_ text: String?) throws -> Int {
        guard let text, let value = Int(text) else { throw Failure("'\(text ?? "nothing")' is not a number") }
        return value
    }

    /// The lines that differ, for a failure message.
    public static func diff(_ expected: String, _ actual: String) -> String {
        let left = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let right = actual.split(separator: "\n", omittingEmptySubsequences: false)
        var lines: [String] = []
        for index in 0..<max(left.count, right.count) {
            let a = index < left.count ? String(left[index]) : "<none>"
            let b = index < right.count ? String(right[index]) : "<none>"
            if a != b { lines.append("line \(index + 1):\n  expected: \(a)\n  actual:   \(b)") }
        }
        return lines.joined(separator: "\n")
    }
}
