/// The namespaces of the HA store. Each is an ordered map from byte keys to checksummed values.
///
/// | namespace | key | value |
/// |---|---|---|
/// | meta | name (`format`, `version`, `backend`, `createdAt`) | text |
/// | leadership | `current` | `LeadershipRecord` |
/// | terms | epoch (8 bytes big-endian) | `TermRecord` |
/// | jobs | job id | the submitted JobGraph and its status |
/// | executionGraphs | job id, 0x00, sequence (8 bytes BE) | snapshot (sequence 0) then change records |
/// | checkpoints | job id, 0x00, checkpoint id (8 bytes BE); job id, 0x00, `counter` | metadata; id counter |
/// | reconciliations | epoch (8 bytes BE), sequence (8 bytes BE) | one failover's reconciliation summary |
/// | jobHistory | job id, 0x00, run (8 bytes BE) | the summary of an ended run of a job |
///
/// The numbers are part of the on-disk format: never renumber one; add new ones at the end.
public struct StoreNamespace: Hashable, Sendable, CustomStringConvertible, CaseIterable {
    public let number: UInt8
    public let name: String

    private init(_ number: UInt8, _ name: String) {
        self.number = number
        self.name = name
    }

    public static let meta = StoreNamespace(0, "meta")
    public static let leadership = StoreNamespace(1, "leadership")
    public static let terms = StoreNamespace(2, "terms")
    public static let jobs = StoreNamespace(3, "jobs")
    public static let executionGraphs = StoreNamespace(4, "executionGraphs")
    public static let checkpoints = StoreNamespace(5, "checkpoints")
    public static let reconciliations = StoreNamespace(6, "reconciliations")
    public static let jobHistory = StoreNamespace(7, "jobHistory")

    public static let allCases: [StoreNamespace] = [
        .meta, .leadership, .terms, .jobs, .executionGraphs, .checkpoints, .reconciliations, .jobHistory,
    ]

    public static func numbered(_ number: UInt8) -> StoreNamespace? { allCases.first { $0.number == number } }

    public var description: String { name }
}

/// Helpers to build ordered keys.
public enum StoreKey {
    /// 8 bytes, big-endian, so that byte order is numeric order.
    public static func uint64(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) }
    }

    public static func readUInt64(_ bytes: some Collection<UInt8>) -> UInt64? {
        guard bytes.count == 8 else { return nil }
        return bytes.reduce(0) { ($0 << 8) | UInt64($1) }
    }

    public static func text(_ value: String) -> [UInt8] { Array(value.utf8) }

    /// The smallest key greater than every key that starts with `prefix` (nil: no bound).
    public static func prefixUpperBound(_ prefix: [UInt8]) -> [UInt8]? {
        var bound = prefix
        while let last = bound.last {
            if last < 0xFF {
                bound[bound.count - 1] = last + 1
                return bound
            }
            bound.removeLast()
        }
        return nil
    }
}
