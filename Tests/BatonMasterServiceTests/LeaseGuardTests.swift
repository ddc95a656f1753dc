import BatonCore
import BatonElection
@testable import BatonMasterService
import BatonWire
import Synchronization
import Testing

@Suite("a leader's commands leave only while its lease holds")
struct LeaseGuardTests {
    /// A time source the test moves by hand.
    final class HandTime: TimeSource, Sendable {
        let now = Mutex<UInt64>(1_000_000_000)
        func monotonicNow() -> MonotonicInstant { MonotonicInstant(nanoseconds: now.withLock { $0 }) }
        func wallNow() -> WallTime { WallTime(millisecondsSince1970: Int64(now.withLock { $0 } / 1_000_000)) }
        func advance(_ duration: Duration) { now.withLock { $0 += UInt64(duration.nanosecondsClamped) } }
    }

    @Test("the outbox sends while the lease holds; past it every run is dropped, with one warning per lapse; a renewal lets commands out again")
    func outboxHoldsBackPastTheLease() async throws {
        let time = HandTime()
        let lease = LeaseGuard()
        lease.set(time.monotonicNow() + .seconds(1))
        let commands = BatchQueue<WireEnvelope>()
        let sent = Mutex<[Int]>([])
        let warnings = Mutex(0)
        let drained = Task {
            await LeaderRuntime.drain(commands, while: lease, time: time) { run in
                sent.withLock { $0.append(run.count) }
            } heldBack: { _ in
                warnings.withLock { $0 += 1 }
            }
        }
        func post(_ count: Int) async throws {
            for _ in 0..<count { _ = commands.post(WireEnvelope()) }
            try await Task.sleep(for: .milliseconds(50))
        }
        try await post(2)
        time.advance(.milliseconds(1500))  // the lease ran out; the store did not answer yet
        try await post(3)
        try await post(1)
        #expect(warnings.withLock { $0 } == 1)
        lease.set(time.monotonicNow() + .seconds(1))  // renewed
        try await post(4)
        lease.set(nil)  // stepped down
        try await post(5)
        commands.finish()
        await drained.value
        #expect(sent.withLock { $0 } == [2, 4])
        #expect(warnings.withLock { $0 } == 2)
    }

    @Test("the election's lease expiry: none while following, the lease less its margin from the campaign's start, moved by each renewal, gone on stepping down")
    func electionLeaseExpiry() {
        let configuration = LeaderElection.Configuration(leaseDuration: .seconds(2), renewInterval: .milliseconds(500))
        var election = LeaderElection(
            identity: LeaderIdentity(member: "m1", incarnation: Incarnation(rawValue: 1), address: "a", pid: 1), configuration: configuration)
        let start = MonotonicInstant(nanoseconds: 1_000_000_000)
        _ = election.start(now: start)
        #expect(election.leaseExpiry == nil)
        _ = election.observed(nil, now: start + .milliseconds(1))
        let record = LeadershipRecord(
            epoch: Epoch(1), holder: election.identity, renewals: 0, termStartedAt: WallTime(millisecondsSince1970: 0),
            renewedAt: WallTime(millisecondsSince1970: 0), leaseMillis: 2000)
        _ = election.campaignCompleted(.won(record), now: start + .milliseconds(5))
        #expect(election.leaseExpiry == start + .milliseconds(1) + .milliseconds(1800))
        _ = election.tick(now: start + .milliseconds(600))
        _ = election.renewCompleted(.renewed, epoch: Epoch(1), now: start + .milliseconds(610))
        #expect(election.leaseExpiry == start + .milliseconds(600) + .milliseconds(1800))
        _ = election.tick(now: start + .milliseconds(1200))
        _ = election.renewCompleted(.fenced(current: Epoch(2)), epoch: Epoch(1), now: start + .milliseconds(1210))
        #expect(election.leaseExpiry == nil)
    }
}
