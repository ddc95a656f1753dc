import BatonCore
import Synchronization

/// Where a leader's lease ends, readable from any thread: the leader's commands leave only while
/// it holds. The election decides the lease on the master's loop, which waits for each store call;
/// when the store does not answer (a stalled disk, an etcd that cannot be reached) the loop only
/// learns that the lease ran out once the call returns. The outboxes ask the guard instead, so a
/// leader whose lease ran out sends nothing more, however long its store takes to answer.
final class LeaseGuard: Sendable {
    /// The monotonic instant the lease ends, in nanoseconds; 0: no lease (not leading).
    private let expiry = Atomic<UInt64>(0)
    private let warned = Atomic<Bool>(false)

    /// The lease now ends at `instant` (nil: it ended).
    func set(_ instant: MonotonicInstant?) {
        expiry.store(instant?.nanoseconds ?? 0, ordering: .releasing)
        if instant != nil { warned.store(false, ordering: .relaxed) }
    }

    /// Whether the lease still holds at `now`.
    func holds(at now: MonotonicInstant) -> Bool {
        now.nanoseconds < expiry.load(ordering: .acquiring)
    }

    /// A lease that never ends (a runtime driven without an election, in tests).
    static var holdingForever: LeaseGuard {
        let lease = LeaseGuard()
        lease.set(MonotonicInstant(nanoseconds: .max))
        return lease
    }

    /// True the first time it is asked after the lease ran out (for one warning per lapse).
    func firstLapse() -> Bool { !warned.exchange(true, ordering: .relaxed) }
}
