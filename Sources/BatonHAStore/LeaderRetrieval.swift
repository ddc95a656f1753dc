public import BatonCore
import BatonElection

/// Who leads, as a process that does not take part in the election needs to know it (task
/// executors, clients, `baton status`): the holder's id, RPC address and epoch.
public struct LeaderInfo: Hashable, Sendable, CustomStringConvertible {
    public var member: MemberID
    public var address: String
    public var epoch: Epoch
    public var incarnation: Incarnation

    public var description: String { "\(member)@\(address) epoch \(epoch)" }
}

/// Leader retrieval over the HA store: any process reads the current leader from the leadership
/// record, or follows its changes.
///
/// Not guaranteed: that the leader named is still alive (its term may be about to be taken over);
/// a process that acts on the answer must carry the epoch, so that a stale leader's commands and a
/// stale leader's store writes are refused.
public struct LeaderRetrieval: Sendable {
    public let store: HAStore

    public init(store: HAStore) { self.store = store }

    /// The leader now, or nil when no term is held.
    public func currentLeader() async throws -> LeaderInfo? {
        Self.leader(in: try await store.leadership())
    }

    static func leader(in record: LeadershipRecord?) -> LeaderInfo? {
        guard let record, let holder = record.holder else { return nil }
        return LeaderInfo(member: holder.member, address: holder.address, epoch: record.epoch, incarnation: holder.incarnation)
    }

    /// The leader now, then each change of leader (a new epoch, or no leader), reading the store
    /// every `interval`. The sequence ends when the consuming task is cancelled.
    public func changes(every interval: Duration) -> AsyncThrowingStream<LeaderInfo?, any Error> {
        let store = self.store
        let last = LastSeen()
        return AsyncThrowingStream(unfolding: {
            while !Task.isCancelled {
                let leader = LeaderRetrieval.leader(in: try await store.leadership())
                if last.replace(with: leader) { return .some(leader) }
                try await Task.sleep(for: interval)
            }
            return nil
        })
    }
}

/// The last leader a `changes` sequence yielded (read and written by its one consumer).
private final class LastSeen: @unchecked Sendable {
    // @unchecked: the unfolding closure runs for one consumer, one call at a time.
    private var value: LeaderInfo??

    /// Stores `leader`; true when it differs from the last one (or is the first).
    func replace(with leader: LeaderInfo?) -> Bool {
        if let value, value == leader { return false }
        value = .some(leader)
        return true
    }
}
