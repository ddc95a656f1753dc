public import BatonCore

/// What a candidate assumes about the leadership record when it campaigns. The store applies the
/// campaign atomically only if the assumption still holds (compare-and-set).
public enum CampaignExpectation: Hashable, Sendable, CustomStringConvertible {
    /// No one holds the record (never held, or the last term ended) and its epoch is `epoch`.
    case vacant(epoch: Epoch)
    /// The record is exactly as observed (same epoch, same renewals): its lease lapsed.
    case leaseLapsed(epoch: Epoch, renewals: UInt64)
    /// The holder is `member`, whose process is dead. Either the campaigner holds that member's
    /// process lock while the campaign runs (a live process of `member` always holds it), and
    /// `incarnation` is nil; or the holder's own process, `incarnation`, was seen dead by the
    /// supervisor that reaped it (a death certificate in a remote store): then only that
    /// incarnation may be replaced, never a later process of the same member.
    case holderDead(member: MemberID, incarnation: Incarnation? = nil)

    public var description: String {
        switch self {
        case .vacant(let epoch): "vacant after epoch \(epoch)"
        case .leaseLapsed(let epoch, let renewals): "lease of epoch \(epoch) lapsed at renewal \(renewals)"
        case .holderDead(let member, let incarnation): "holder \(member)\(incarnation.map { "#\($0)" } ?? "") died"
        }
    }
}

/// A write refused because the writer's epoch is no longer the current term.
public struct FencedWrite: Error, Hashable, Sendable, CustomStringConvertible {
    /// The newest epoch in the store.
    public var current: Epoch
    /// The epoch the refused write carried.
    public var attempted: Epoch

    public init(current: Epoch, attempted: Epoch) {
        self.current = current
        self.attempted = attempted
    }

    public var description: String {
        current == attempted
            ? "fenced: the term of epoch \(attempted) has ended"
            : "fenced: epoch \(attempted) is stale, the store is at epoch \(current)"
    }
}

/// The rules that turn a leadership record into the next one: campaigning, renewing, ending a term,
/// and the fencing check every leader write passes. Pure: the store runs them inside one atomic
/// transaction, and the simulator runs the very same rules against its in-memory store.
public enum LeadershipRules {
    /// What a campaign does to the store when it wins.
    public struct Victory: Hashable, Sendable {
        public var record: LeadershipRecord
        /// The previous term, closed (nil when there was none or it was already closed).
        public var closedTerm: TermRecord?
        public var openedTerm: TermRecord
    }

    public enum CampaignOutcome: Hashable, Sendable {
        case won(Victory)
        case lost(current: LeadershipRecord?)
    }

    /// Decides a campaign against the record as it is now in the store.
    ///
    /// - Parameters:
    ///   - current: the leadership record read inside the campaign's transaction.
    ///   - openTerm: the journal entry of `current.epoch` if it is still open.
    public static func campaign(
        by candidate: LeaderIdentity, expecting expectation: CampaignExpectation, current: LeadershipRecord?,
        openTerm: TermRecord?, leaseMillis: Int64, now: WallTime
    ) -> CampaignOutcome {
        let endReason: TermEndReason?
        switch expectation {
        case .vacant(let epoch):
            guard (current?.epoch ?? .none) == epoch, current?.holder == nil else { return .lost(current: current) }
            endReason = nil
        case .leaseLapsed(let epoch, let renewals):
            guard let current, current.holder != nil, current.epoch == epoch, current.renewals == renewals else {
                return .lost(current: current)
            }
            endReason = .leaseExpired
        case .holderDead(let member, let incarnation):
            guard let current, let holder = current.holder, holder.member == member,
                incarnation.map({ $0 == holder.incarnation }) ?? true
            else {
                return .lost(current: current)
            }
            endReason = .holderDied
        }
        let previous = current?.epoch ?? .none
        let epoch = previous.next
        var closed: TermRecord?
        if let endReason, var term = openTerm, term.epoch == previous, term.isOpen {
            term.endedAt = now
            term.endReason = endReason
            term.endedBy = candidate.member
            term.lastRenewedAt = current?.renewedAt
            closed = term
        }
        let record = LeadershipRecord(
            epoch: epoch, holder: candidate, renewals: 0, termStartedAt: now, renewedAt: now, leaseMillis: leaseMillis)
        let opened = TermRecord(
            epoch: epoch, holder: candidate, startedAt: now, previousEpoch: previous == .none ? nil : previous)
        return .won(Victory(record: record, closedTerm: closed, openedTerm: opened))
    }

    /// The fencing check: passes only when `epoch` is the current, still-held term.
    public static func checkFence(epoch: Epoch, current: LeadershipRecord?) throws(FencedWrite) {
        guard let current else { throw FencedWrite(current: .none, attempted: epoch) }
        guard current.epoch == epoch, current.holder != nil else {
            throw FencedWrite(current: current.epoch, attempted: epoch)
        }
    }

    /// The record after the holder of `epoch` renews its lease.
    public static func renew(epoch: Epoch, current: LeadershipRecord?, now: WallTime) throws(FencedWrite)
        -> LeadershipRecord
    {
        try checkFence(epoch: epoch, current: current)
        var record = current!
        record.renewals &+= 1
        record.renewedAt = now
        return record
    }

    /// The record and the closed journal entry after the holder of `epoch` ends its own term.
    public static func relinquish(
        epoch: Epoch, reason: TermEndReason, current: LeadershipRecord?, openTerm: TermRecord?, now: WallTime
    ) throws(FencedWrite) -> (LeadershipRecord, TermRecord?) {
        try checkFence(epoch: epoch, current: current)
        var record = current!
        let holder = record.holder!
        record.holder = nil
        record.renewedAt = now
        var closed: TermRecord?
        if var term = openTerm, term.epoch == epoch, term.isOpen {
            term.endedAt = now
            term.endReason = reason
            term.endedBy = holder.member
            closed = term
        }
        return (record, closed)
    }
}
