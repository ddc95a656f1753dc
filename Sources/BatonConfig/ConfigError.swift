/// An error in a config file or a job spec: it names the file, the key path in the document
/// (`store.backend`, `masters[1].rpc`), the line when known, and what is wrong.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable { case unreadable, syntax, unknownKey, missingKey, badValue, notExactlyOnce }
        private let value: Value
        private init(_ value: Value) { self.value = value }
        /// The file could not be read.
        public static let unreadable = Code(.unreadable)
        /// The file is not valid YAML.
        public static let syntax = Code(.syntax)
        /// A key that this document kind does not have.
        public static let unknownKey = Code(.unknownKey)
        /// A required key is absent.
        public static let missingKey = Code(.missingKey)
        /// A value of the wrong type or out of range, or values that contradict each other.
        public static let badValue = Code(.badValue)
        /// A valid job that would not be exactly-once as written (the leader refuses it).
        public static let notExactlyOnce = Code(.notExactlyOnce)
        public var description: String { value.rawValue }
    }

    public var code: Code
    public var file: String
    /// Where in the document: `store.backend`, `masters[1].id`; empty for the whole document.
    public var keyPath: String
    public var line: Int?
    public var message: String

    public init(_ code: Code, file: String, keyPath: String, line: Int? = nil, _ message: String) {
        self.code = code
        self.file = file
        self.keyPath = keyPath
        self.line = line
        self.message = message
    }

    public var description: String {
        var text = file
        if let line { text += ":\(line)" }
        if !keyPath.isEmpty { text += ": \(keyPath)" }
        return text + ": " + message
    }
}
