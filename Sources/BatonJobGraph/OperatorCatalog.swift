/// The operators a job spec may name, with the parameters each accepts. The built-ins are those
/// of the README's "Job specs"; a program that registers custom operators adds them here.
public struct OperatorCatalog: Sendable {
    public struct Entry: Hashable, Sendable {
        public var name: String
        public var required: Set<String>
        public var optional: Set<String>
        /// Parameters that are file paths (resolved against the job spec's folder).
        public var paths: Set<String>
        /// A source reads no input; every other operator does.
        public var isSource: Bool
        /// The operator keeps state built from its input (keyed totals, windows, a sink's
        /// staged output), so a restarted attempt is exactly-once only if its input rewinds too.
        public var keepsInputState: Bool

        public init(
            name: String, required: Set<String> = [], optional: Set<String> = [], paths: Set<String> = [], isSource: Bool = false,
            keepsInputState: Bool = false
        ) {
            self.name = name
            self.required = required
            self.optional = optional
            self.paths = paths
            self.isSource = isSource
            self.keepsInputState = keepsInputState
        }
    }

    /// Whether `spec` keeps state built from its input (an at-least-once file sink does not).
    public func keepsInputState(_ spec: OperatorSpec) -> Bool {
        guard entry(spec.name)?.keepsInputState == true else { return false }
        return !(spec.name == "file-sink" && spec.parameters["exactly-once"] == "false")
    }

    public private(set) var entries: [String: Entry]

    public init(_ entries: [Entry]) {
        self.entries = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0) })
    }

    public mutating func register(_ entry: Entry) { entries[entry.name] = entry }

    public func entry(_ name: String) -> Entry? { entries[name] }

    public var names: [String] { entries.keys.sorted() }

    public static let builtIn = OperatorCatalog([
        Entry(name: "sequence", optional: ["from", "to", "keys", "rate"], isSource: true),
        Entry(name: "text-file", required: ["path"], paths: ["path"], isSource: true),
        Entry(name: "map", required: ["function"]),
        Entry(name: "filter", required: ["predicate"]),
        Entry(name: "tokenize"),
        Entry(name: "sum", optional: ["field"], keepsInputState: true),
        Entry(name: "count", keepsInputState: true),
        Entry(name: "tumbling-window", required: ["size"], optional: ["aggregate"], keepsInputState: true),
        Entry(name: "file-sink", required: ["path"], optional: ["exactly-once"], paths: ["path"], keepsInputState: true),
        Entry(name: "throttle", required: ["rate"]),
        Entry(name: "print"),
        Entry(name: "discard"),
    ])
}
