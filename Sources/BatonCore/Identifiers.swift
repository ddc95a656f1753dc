/// Names of things that a config or a job spec gives: masters, task executors, jobs.
///
/// An identifier is 1 to 64 characters of ASCII letters, digits, `.`, `_` and `-`, so that it is
/// safe in file names (member lock files), log metadata and store keys.
public struct Identifier: RawRepresentable, Hashable, Comparable, Codable, Sendable, CustomStringConvertible,
    ExpressibleByStringLiteral
{
    public let rawValue: String

    /// Creates an identifier, or returns nil when `rawValue` is not a valid identifier.
    public init?(rawValue: String) {
        guard Identifier.problem(with: rawValue) == nil else { return nil }
        self.rawValue = rawValue
    }

    /// For literals in code and tests; a literal that is not a valid identifier is a programmer error.
    public init(stringLiteral value: String) {
        precondition(Identifier.problem(with: value) == nil, "invalid identifier literal \(value)")
        self.rawValue = value
    }

    /// Why `text` is not a valid identifier, or nil when it is.
    public static func problem(with text: String) -> String? {
        if text.isEmpty { return "is empty" }
        if text.utf8.count > 64 { return "is longer than 64 characters" }
        for byte in text.utf8 {
            let ok =
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2E || byte == 0x5F || byte == 0x2D
            if !ok { return "may hold only letters, digits, '.', '_' and '-'" }
        }
        if text == "." || text == ".." { return "may not be '.' or '..'" }
        return nil
    }

    public static func < (lhs: Identifier, rhs: Identifier) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let identifier = Identifier(rawValue: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(text)' is not a valid id: it \(Identifier.problem(with: text)!)")
        }
        self = identifier
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// What kind of thing an id names. Each kind is an id type of its own (`TypedIdentifier<Kind>`),
/// so that a job id does not type-check where a task executor's is expected.
public protocol IdentifierKind: Sendable {}

/// An `Identifier` of one kind: written, read, compared and encoded as its text.
public struct TypedIdentifier<Kind: IdentifierKind>: RawRepresentable, Hashable, Comparable, Codable, Sendable, CustomStringConvertible,
    ExpressibleByStringLiteral
{
    public let identifier: Identifier

    public init(_ identifier: Identifier) { self.identifier = identifier }

    /// Nil when `rawValue` is not a valid identifier.
    public init?(rawValue: String) {
        guard let identifier = Identifier(rawValue: rawValue) else { return nil }
        self.identifier = identifier
    }

    /// For literals in code and tests; a literal that is not a valid identifier is a programmer error.
    public init(stringLiteral value: String) { identifier = Identifier(stringLiteral: value) }

    public var rawValue: String { identifier.rawValue }
    public var description: String { identifier.rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.identifier < rhs.identifier }

    public init(from decoder: any Decoder) throws { identifier = try Identifier(from: decoder) }
    public func encode(to encoder: any Encoder) throws { try identifier.encode(to: encoder) }
}

public enum MemberKind: IdentifierKind {}
/// The id of a master candidate (`masters[].id` in the config).
public typealias MemberID = TypedIdentifier<MemberKind>

public enum ResourceKind: IdentifierKind {}
/// The id of a task executor (`taskexecutors[].id` in the config; Flink's ResourceID).
public typealias ResourceID = TypedIdentifier<ResourceKind>

/// One lifetime of one process: a random 64-bit value drawn when the process starts.
///
/// A master that restarts keeps its `MemberID` but gets a new incarnation, so that a record naming
/// the old process is never mistaken for the new one.
public struct Incarnation: RawRepresentable, Hashable, Codable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// A fresh incarnation drawn from `generator`.
    public static func random(using generator: inout some RandomNumberGenerator) -> Incarnation {
        Incarnation(rawValue: generator.next())
    }

    public var description: String {
        let hex = String(rawValue, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// A slot allocation's id, handed out by the ResourceManager in increasing order (and kept above
/// those a previous leader handed out).
public struct AllocationID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt64) { rawValue = value }
    /// The id after this one.
    public var next: AllocationID { AllocationID(rawValue: rawValue + 1) }
    public static func < (lhs: AllocationID, rhs: AllocationID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "\(rawValue)" }
}

/// A checkpoint's id: from the job's durable counter, so ids strictly increase across leaders.
/// Written and read as its number.
public struct CheckpointID: RawRepresentable, Hashable, Strideable, Codable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt64) { rawValue = value }
    /// The id after this one.
    public var next: CheckpointID { CheckpointID(rawValue: rawValue + 1) }
    public static func < (lhs: CheckpointID, rhs: CheckpointID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "\(rawValue)" }
    /// Ids count: ranges of ids and `id + 1` read as they do for numbers.
    public func distance(to other: CheckpointID) -> Int64 { Int64(other.rawValue) - Int64(rawValue) }
    public func advanced(by n: Int64) -> CheckpointID { CheckpointID(rawValue: UInt64(Int64(rawValue) + n)) }
    public static func + (id: CheckpointID, count: UInt64) -> CheckpointID { CheckpointID(rawValue: id.rawValue + count) }
    public static func - (id: CheckpointID, count: UInt64) -> CheckpointID { CheckpointID(rawValue: id.rawValue - count) }

    public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(UInt64.self) }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
