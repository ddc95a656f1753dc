import BatonCore
public import BatonElection

/// Every failure of the HA store: a code, a message that names the store file and what to do, and
/// the underlying cause. Codes are a struct over a private enum so that more can be added.
public struct HAStoreError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case notFound, notAStore, foreignFormat, newerVersion, corrupt, truncated, fenced, full, busy, io
            case outcomeUnknown, closed, invalidValue, unusable
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The store cannot be used by this process any more (LMDB's MDB_PANIC after a failed
        /// write): the process must end; a new one opens it again.
        public static let unusable = Code(.unusable)
        /// No store exists at the path (and it may not be created here).
        public static let notFound = Code(.notFound)
        /// The path exists but is not a store of the configured backend (a directory, a text file).
        public static let notAStore = Code(.notAStore)
        /// A valid database of the backend, but not a Baton HA store.
        public static let foreignFormat = Code(.foreignFormat)
        /// A Baton HA store written by a newer format version.
        public static let newerVersion = Code(.newerVersion)
        /// A checksum or an integrity check failed.
        public static let corrupt = Code(.corrupt)
        /// The file is shorter than its own header says.
        public static let truncated = Code(.truncated)
        /// The write carried an epoch that is not the current term (see `fencedWrite`).
        public static let fenced = Code(.fenced)
        /// The store is full (LMDB map size).
        public static let full = Code(.full)
        /// Another writer held the store for longer than the busy timeout.
        public static let busy = Code(.busy)
        /// An operating-system or library error.
        public static let io = Code(.io)
        /// A commit failed in a way that leaves unknown whether it landed (read back before retrying).
        public static let outcomeUnknown = Code(.outcomeUnknown)
        /// The store was closed.
        public static let closed = Code(.closed)
        /// A stored value could not be decoded into its record type.
        public static let invalidValue = Code(.invalidValue)

        public var description: String { value.rawValue }
    }

    public var code: Code
    public var message: String
    /// The store file concerned.
    public var path: String
    /// For `fenced`: the epochs involved.
    public var fencedWrite: FencedWrite?
    public var underlying: (any Error)?

    public init(_ code: Code, path: String, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.path = path
        self.message = message
        self.underlying = underlying
    }

    public static func fenced(_ fence: FencedWrite, path: String) -> HAStoreError {
        var error = HAStoreError(.fenced, path: path, "write refused: \(fence)")
        error.fencedWrite = fence
        return error
    }

    public var description: String {
        var text = "HA store \(path): \(message)"
        if let underlying { text += " (\(underlying))" }
        return text
    }
}
