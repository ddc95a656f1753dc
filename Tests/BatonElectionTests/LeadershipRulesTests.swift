import BatonCore
import BatonElection
import Testing

@Suite("leadership rules")
struct LeadershipRulesTests {
    let now = WallTime(millisecondsSince1970: 1_000)
    func identity(_ member: MemberID, _ incarnation: UInt64 = 1) -> LeaderIdentity {
        LeaderIdentity(member: member, incarnation: Incarnation(rawValue: incarnation), address: "a", pid: 1)
    }

    func held(epoch: UInt64, by member: MemberID, renewals: UInt64 = 0) -> LeadershipRecord {
        LeadershipRecord(
            epoch: Epoch(epoch), holder: identity(member), renewals: renewals, termStartedAt: now, renewedAt: now, leaseMillis: 2000)
    }

    @Test("the first campaign of an empty store opens epoch 1 and closes nothing")
    func firstCampaign() {
        let outcome = LeadershipRules.campaign(
            by: identity("m1"), expecting: .vacant(epoch: .none), current: nil, openTerm: nil, leaseMillis: 2000, now: now)
        guard case .won(let victory) = outcome else { Issue.record("expected a win"); return }
        #expect(victory.record.epoch == Epoch(1))
        #expect(victory.closedTerm == nil)
        #expect(victory.openedTerm.previousEpoch == nil)
    }

    @Test("a certified death names an incarnation: a campaign on it wins only against a holder of that incarnation")
    func certifiedDeathNamesTheIncarnation() {
        var record = held(epoch: 6, by: "m2")
        record.holder = identity("m2", 9)
        let open = TermRecord(epoch: Epoch(6), holder: identity("m2", 9), startedAt: now, previousEpoch: Epoch(5))
        let earlier = LeadershipRules.campaign(
            by: identity("m1"), expecting: .holderDead(member: "m2", incarnation: Incarnation(rawValue: 8)), current: record, openTerm: open,
            leaseMillis: 2000, now: now)
        #expect(earlier == .lost(current: record))
        let same = LeadershipRules.campaign(
            by: identity("m1"), expecting: .holderDead(member: "m2", incarnation: Incarnation(rawValue: 9)), current: record, openTerm: open,
            leaseMillis: 2000, now: now)
        guard case .won(let victory) = same else { Issue.record("expected a win"); return }
        #expect(victory.closedTerm?.endReason == .holderDied)
    }

    @Test("a takeover closes the open term of the previous epoch with the observed reason")
    func takeoverClosesTerm() {
        let record = held(epoch: 4, by: "m2", renewals: 9)
        let open = TermRecord(epoch: Epoch(4), holder: identity("m2"), startedAt: now, previousEpoch: Epoch(3))
        let lapsed = LeadershipRules.campaign(
            by: identity("m1"), expecting: .leaseLapsed(epoch: Epoch(4), renewals: 9), current: record, openTerm: open,
            leaseMillis: 2000, now: now + .seconds(3))
        guard case .won(let victory) = lapsed else { Issue.record("expected a win"); return }
        #expect(victory.record.epoch == Epoch(5))
        #expect(victory.closedTerm?.endReason == .leaseExpired)
        #expect(victory.closedTerm?.endedAt == now + .seconds(3))
        #expect(victory.closedTerm?.endedBy == "m1")
        #expect(victory.openedTerm.previousEpoch == Epoch(4))
        let stale = LeadershipRules.campaign(
            by: identity("m1"), expecting: .leaseLapsed(epoch: Epoch(4), renewals: 8), current: record, openTerm: open,
            leaseMillis: 2000, now: now)
        #expect(stale == .lost(current: record))
        let vacantButHeld = LeadershipRules.campaign(
            by: identity("m1"), expecting: .vacant(epoch: Epoch(4)), current: record, openTerm: open, leaseMillis: 2000, now: now)
        #expect(vacantButHeld == .lost(current: record))
    }

    @Test("only the current held epoch passes the fence")
    func fence() {
        let record = held(epoch: 4, by: "m2")
        #expect(throws: Never.self) { try LeadershipRules.checkFence(epoch: Epoch(4), current: record) }
        #expect(throws: FencedWrite(current: Epoch(4), attempted: Epoch(3))) {
            try LeadershipRules.checkFence(epoch: Epoch(3), current: record)
        }
        #expect(throws: FencedWrite(current: Epoch(4), attempted: Epoch(5))) {
            try LeadershipRules.checkFence(epoch: Epoch(5), current: record)
        }
        #expect(throws: FencedWrite(current: .none, attempted: Epoch(1))) {
            try LeadershipRules.checkFence(epoch: Epoch(1), current: nil)
        }
        var ended = record
        ended.holder = nil
        #expect(throws: FencedWrite(current: Epoch(4), attempted: Epoch(4))) {
            try LeadershipRules.checkFence(epoch: Epoch(4), current: ended)
        }
    }

    @Test("renewing counts renewals; relinquishing empties the record but keeps its epoch")
    func renewAndRelinquish() throws {
        let record = held(epoch: 2, by: "m1", renewals: 3)
        let renewed = try LeadershipRules.renew(epoch: Epoch(2), current: record, now: now + .seconds(1))
        #expect(renewed.renewals == 4)
        #expect(renewed.renewedAt == now + .seconds(1))
        let open = TermRecord(epoch: Epoch(2), holder: identity("m1"), startedAt: now, previousEpoch: Epoch(1))
        let (vacant, closed) = try LeadershipRules.relinquish(
            epoch: Epoch(2), reason: .resigned, current: renewed, openTerm: open, now: now + .seconds(2))
        #expect(vacant.holder == nil)
        #expect(vacant.epoch == Epoch(2))
        #expect(closed?.endReason == .resigned)
        #expect(closed?.endedBy == "m1")
    }
}
