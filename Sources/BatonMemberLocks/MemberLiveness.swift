public import BatonCore

/// Which member processes are alive, and the crash fast path of the election: a standby learns
/// that the leader's process died well before its lease would tell.
///
/// Two kinds, chosen with the store: member lock files beside an embedded store (the kernel
/// releases a dead process's lock at once), and, for etcd, a key per live process on a lease that
/// the process keeps alive, plus a death certificate that the supervisor which reaped a member's
/// process writes at once (`certifyExit`). A standby never takes a death on trust from a lapsed
/// lease: a paused or cut-off process still lives, and only its lease ends its term.
public protocol MemberLiveness: Sendable {
    /// Where the liveness records are (for messages).
    var location: String { get }

    /// Registers this process as the one live process of `info.member`, for as long as the
    /// returned registration exists. Waits up to `patience` for an earlier process of the member
    /// to be gone.
    ///
    /// - Throws: `MemberLockError` naming the live process when there is one.
    func register(_ info: MemberProcessInfo, patience: Duration) throws -> any MemberRegistration

    /// What is known about each of `members` now, blocking the calling thread (tools).
    func probeBlocking(_ members: [Identifier]) throws -> [Identifier: MemberLocks.Probe]

    /// The same, without blocking a thread of Swift's cooperative pool.
    func probe(_ members: [Identifier]) async throws -> [Identifier: MemberLocks.Probe]

    /// A watcher for a standby: it reports the death of the member it is pointed at with
    /// `onDeath(member, incarnation)` (incarnation nil: no process of the member lives, and none
    /// can start until `onDeath` returns), and, where the store can say so at once, a change of
    /// the leadership record with `onLeadershipChange`.
    func makeWatcher(
        onDeath: @escaping @Sendable (MemberID, Incarnation?) -> Void, onLeadershipChange: @escaping @Sendable () -> Void
    ) -> any HolderWatcher

    /// The supervisor that started `member`'s process `pid` on this host reaped it: record that
    /// the process is dead, so that standbys replace it at once. Best effort.
    func certifyExit(of member: Identifier, pid: Int32) async
}

/// The registration a member process holds for its whole life.
public protocol MemberRegistration: AnyObject, Sendable {
    var info: MemberProcessInfo { get }
}

/// Points at the member whose death a standby waits for.
public protocol HolderWatcher: Sendable {
    /// Watches `member` from now on (nil: no one).
    func watch(_ member: MemberID?)
    /// Ends every watch.
    func stop()
}

extension MemberLock: MemberRegistration {}
extension MemberLockWatcher: HolderWatcher {}

/// Liveness by member lock files beside an embedded store (`<store file>.members/<id>.lock`).
public struct FileMemberLiveness: MemberLiveness {
    public let directory: MemberLockDirectory

    public init(storePath: String) { directory = MemberLockDirectory(storePath: storePath) }

    public var location: String { directory.path }

    public func register(_ info: MemberProcessInfo, patience: Duration) throws -> any MemberRegistration {
        try MemberLock.acquire(in: directory, info: info, patience: patience)
    }

    public func probeBlocking(_ members: [Identifier]) -> [Identifier: MemberLocks.Probe] {
        Dictionary(members.map { ($0, MemberLocks.probe($0, in: directory)) }, uniquingKeysWith: { first, _ in first })
    }

    /// Lock probes do not wait: the same as `probeBlocking`.
    public func probe(_ members: [Identifier]) async -> [Identifier: MemberLocks.Probe] { probeBlocking(members) }

    public func makeWatcher(
        onDeath: @escaping @Sendable (MemberID, Incarnation?) -> Void, onLeadershipChange: @escaping @Sendable () -> Void
    ) -> any HolderWatcher {
        MemberLockWatcher(directory: directory) { member in onDeath(member, nil) }
    }

    /// Nothing to do: the kernel released the lock when the process died.
    public func certifyExit(of member: Identifier, pid: Int32) async {}
}
