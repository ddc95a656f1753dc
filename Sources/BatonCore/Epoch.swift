/// The fencing token: one per leadership term, strictly increasing across terms.
///
/// Every store write of a leader and every command a leader sends carries its epoch;
/// anything carrying an epoch older than the newest one is refused (invariant I1).
/// Epoch 0 means "no term has ever existed"; the first term is epoch 1.
public struct Epoch: RawRepresentable, Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(_ value: UInt64) { self.rawValue = value }

    /// The epoch before any term.
    public static let none = Epoch(0)

    /// The epoch of the term that follows this one.
    public var next: Epoch {
        precondition(rawValue < UInt64.max, "epoch space exhausted")
        return Epoch(rawValue + 1)
    }

    public static func < (lhs: Epoch, rhs: Epoch) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { String(rawValue) }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(UInt64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
