public import BatonCore
public import BatonElection

extension StoreReader {
    /// The leadership record, or nil when no term ever began.
    public func leadershipRecord() throws -> LeadershipRecord? {
        try value(LeadershipRecord.self, .leadership, HAStore.leadershipKey)
    }

    public func term(_ epoch: Epoch) throws -> TermRecord? {
        try value(TermRecord.self, .terms, StoreKey.uint64(epoch.rawValue))
    }

    /// Terms from `epoch` on (all when nil), ascending.
    public func terms(from epoch: Epoch? = nil) throws -> [TermRecord] {
        let after = epoch.flatMap { $0.rawValue > 0 ? StoreKey.uint64($0.rawValue - 1) : nil }
        return try values(TermRecord.self, .terms, after: after)
    }
}

extension HAStore {
    static let leadershipKey = StoreKey.text("current")
    /// The key of the leadership record in its namespace (for stores that watch it).
    public static var leadershipKeyBytes: [UInt8] { leadershipKey }

    /// The current leadership record (leader retrieval: any process may call it).
    public func leadership() async throws -> LeadershipRecord? {
        try await read { try $0.leadershipRecord() }
    }

    /// The leadership record, from a synchronous context (tools).
    public func readLeadershipBlocking() throws -> LeadershipRecord? {
        try readBlocking { try $0.leadershipRecord() }
    }

    /// The term journal from `epoch` on.
    public func terms(from epoch: Epoch? = nil) async throws -> [TermRecord] {
        try await read { try $0.terms(from: epoch) }
    }

    /// Campaigns for the next term: an atomic compare-and-set of the leadership record that also
    /// closes the previous term and opens the new one in the journal.
    public func campaign(
        as candidate: LeaderIdentity, expecting expectation: CampaignExpectation, leaseMillis: Int64, now: WallTime
    ) async throws -> LeadershipRules.CampaignOutcome {
        try await clearStaleReaders()
        return try await unfencedWrite { writer in
            let current = try writer.reader.leadershipRecord()
            let openTerm = try current.flatMap { try writer.reader.term($0.epoch) }
            let outcome = LeadershipRules.campaign(
                by: candidate, expecting: expectation, current: current, openTerm: openTerm, leaseMillis: leaseMillis,
                now: now)
            if case .won(let victory) = outcome {
                try writer.put(.leadership, HAStore.leadershipKey, victory.record)
                if let closed = victory.closedTerm {
                    try writer.put(.terms, StoreKey.uint64(closed.epoch.rawValue), closed)
                }
                try writer.put(.terms, StoreKey.uint64(victory.openedTerm.epoch.rawValue), victory.openedTerm)
            }
            return outcome
        }
    }

    /// Renews the lease of `epoch`. Throws `.fenced` when `epoch` is no longer the held term.
    public func renew(epoch: Epoch, now: WallTime) async throws {
        let path = self.path
        try await unfencedWrite { writer in
            do {
                let record = try LeadershipRules.renew(epoch: epoch, current: try writer.reader.leadershipRecord(), now: now)
                try writer.put(.leadership, HAStore.leadershipKey, record)
            } catch let fence as FencedWrite {
                throw HAStoreError.fenced(fence, path: path)
            }
        }
    }

    /// Ends the term of `epoch` (its holder resigns or steps down). Throws `.fenced` when `epoch` is
    /// no longer the held term.
    public func relinquish(epoch: Epoch, reason: TermEndReason, now: WallTime) async throws {
        let path = self.path
        try await unfencedWrite { writer in
            do {
                let current = try writer.reader.leadershipRecord()
                let (record, closed) = try LeadershipRules.relinquish(
                    epoch: epoch, reason: reason, current: current, openTerm: try writer.reader.term(epoch), now: now)
                try writer.put(.leadership, HAStore.leadershipKey, record)
                if let closed { try writer.put(.terms, StoreKey.uint64(closed.epoch.rawValue), closed) }
            } catch let fence as FencedWrite {
                throw HAStoreError.fenced(fence, path: path)
            }
        }
    }
}
