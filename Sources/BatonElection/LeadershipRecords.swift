public import BatonCore

/// Who holds (or held) a term: the member, the process lifetime, where it can be reached.
public struct LeaderIdentity: Codable, Hashable, Sendable, CustomStringConvertible {
    public var member: MemberID
    public var incarnation: Incarnation
    /// The RPC address the leader publishes (`masters[].rpc`).
    public var address: String
    public var pid: Int32

    public init(member: MemberID, incarnation: Incarnation, address: String, pid: Int32) {
        self.member = member
        self.incarnation = incarnation
        self.address = address
        self.pid = pid
    }

    public var description: String { "\(member)#\(incarnation)" }
}

/// The leadership record: the one row of the store that says who leads.
///
/// `epoch` is the epoch of the current term, or of the last one when `holder` is nil (the term ended
/// without a successor). It never decreases: a new term always takes `epoch.next`.
public struct LeadershipRecord: Codable, Hashable, Sendable {
    public var epoch: Epoch
    /// The leader of `epoch`, or nil when that term has ended and no one has taken the next one.
    public var holder: LeaderIdentity?
    /// How many times the holder renewed its lease in this term. Standbys measure the lease on their
    /// own monotonic clock from the moment they see this number change, so no clocks are compared.
    public var renewals: UInt64
    public var termStartedAt: WallTime
    public var renewedAt: WallTime
    /// The lease duration the holder keeps, in milliseconds (for people and the audit).
    public var leaseMillis: Int64

    public init(
        epoch: Epoch, holder: LeaderIdentity?, renewals: UInt64, termStartedAt: WallTime, renewedAt: WallTime,
        leaseMillis: Int64
    ) {
        self.epoch = epoch
        self.holder = holder
        self.renewals = renewals
        self.termStartedAt = termStartedAt
        self.renewedAt = renewedAt
        self.leaseMillis = leaseMillis
    }
}

/// Why a term ended, as the term journal records it.
public enum TermEndReason: String, Codable, Hashable, Sendable, CaseIterable {
    /// The holder gave the term up (SIGTERM, clean shutdown).
    case resigned
    /// The holder did not renew its lease in time: a standby took over, or the holder noticed and
    /// stepped down itself.
    case leaseExpired = "lease-expired"
    /// The holder's process died: its member lock was released (kill -9, crash).
    case holderDied = "holder-died"

    /// Reads the raw value, or the case's name (how reconciliation journals written before the
    /// field was typed spell it); anything else is an error naming the value.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let reason = TermEndReason(rawValue: text) ?? TermEndReason.allCases.first(where: { "\($0)" == text }) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(text)' is not a term end reason (\(TermEndReason.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        self = reason
    }
}

/// One entry of the term journal.
public struct TermRecord: Codable, Hashable, Sendable {
    public var epoch: Epoch
    public var holder: LeaderIdentity
    public var startedAt: WallTime
    /// The term that this one followed (nil for the first term ever).
    public var previousEpoch: Epoch?
    public var endedAt: WallTime?
    public var endReason: TermEndReason?
    /// The holder's last renewal, as its successor found it when it took over (the last sign of
    /// life: the audit measures detection from here).
    public var lastRenewedAt: WallTime?
    /// The member that wrote the end: the holder itself (resigned, stepped down) or its successor.
    public var endedBy: MemberID?

    public init(
        epoch: Epoch, holder: LeaderIdentity, startedAt: WallTime, previousEpoch: Epoch?, endedAt: WallTime? = nil,
        endReason: TermEndReason? = nil, endedBy: MemberID? = nil
    ) {
        self.epoch = epoch
        self.holder = holder
        self.startedAt = startedAt
        self.previousEpoch = previousEpoch
        self.endedAt = endedAt
        self.endReason = endReason
        self.endedBy = endedBy
    }

    public var isOpen: Bool { endedAt == nil }
}

/// Why a leader stopped acting as leader.
public enum StepDownReason: Hashable, Sendable, CustomStringConvertible {
    /// It was asked to (SIGTERM).
    case resigned
    /// It could not renew its lease before the lease ran out.
    case leaseExpired
    /// A store write was refused because a newer epoch exists.
    case fenced(current: Epoch)

    public var description: String {
        switch self {
        case .resigned: "resigned"
        case .leaseExpired: "lease expired before it could be renewed"
        case .fenced(let current): "fenced by epoch \(current)"
        }
    }

    /// The reason recorded in the term journal when the leader itself ends its term.
    public var termEndReason: TermEndReason? {
        switch self {
        case .resigned: .resigned
        case .leaseExpired: .leaseExpired
        case .fenced: nil  // the newer leader already ended the term
        }
    }
}
