public import BatonCore
public import BatonEtcd
public import BatonMemberLocks
import BatonHAStore
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Member liveness in etcd, for groups whose members run on several machines.
///
/// - A live process of member M holds `<prefix>members/live/M` (its `MemberProcessInfo`) on a
///   lease of its own that it keeps alive: created only when absent, so two processes of M never
///   both run; it goes when the process's lease ends.
/// - The supervisor that reaped process P of M (`baton group` on P's host) writes
///   `<prefix>members/dead/M` (a death certificate: M, P's incarnation, pid, host, when) and
///   deletes P's live key in one transaction, then revokes P's lease: a standby watching the
///   certificates campaigns to replace exactly that incarnation at once.
/// - A lease that lapsed proves nothing (the process may be paused or cut off): it only frees
///   the member's name. The term of a leader nobody certified dead ends by the election's lease.
public final class EtcdMemberLiveness: MemberLiveness {
    public let client: EtcdClient
    public let prefix: String
    /// The TTL of each process's lease, in whole seconds (etcd's unit).
    public let leaseSeconds: Int64
    /// The key of the leadership record (watched so that standbys read it at once when it changes).
    let leadershipKey: [UInt8]

    public init(client: EtcdClient, prefix: String, leaseSeconds: Int64) {
        self.client = client
        self.prefix = prefix
        self.leaseSeconds = max(1, leaseSeconds)
        leadershipKey = Array(prefix.utf8) + [StoreNamespace.leadership.number] + HAStore.leadershipKeyBytes
    }

    public var location: String { "etcd://\(client.endpoints.joined(separator: ","))\(prefix)members/" }

    func liveKey(_ member: Identifier) -> [UInt8] { Array("\(prefix)members/live/\(member.rawValue)".utf8) }
    func deadKey(_ member: Identifier) -> [UInt8] { Array("\(prefix)members/dead/\(member.rawValue)".utf8) }
    var deadPrefix: [UInt8] { Array("\(prefix)members/dead/".utf8) }
    /// Every member key, live and dead: what a probe reads.
    var membersPrefix: [UInt8] { Array("\(prefix)members/".utf8) }

    // MARK: registration

    public func register(_ info: MemberProcessInfo, patience: Duration) throws -> any MemberRegistration {
        let etcd = client.waiting
        let key = liveKey(info.member)
        let value = try JSONEncoder().encode(info)
        let deadline = ContinuousClock.now + patience
        let lease = try etcd.grantLease(ttlSeconds: leaseSeconds).id
        while true {
            let result = try etcd.txn(
                compare: [.revision(key, .create, .equal, 0)], success: [.put(key: key, value: Array(value), lease: lease)],
                failure: [.range(key: key, rangeEnd: nil)])
            if result.succeeded {
                return EtcdMemberRegistration(info: info, key: key, value: Array(value), lease: lease, liveness: self)
            }
            let holder = result.ranges.first?.first.flatMap { try? JSONDecoder().decode(MemberProcessInfo.self, from: Data($0.value)) }
            if ContinuousClock.now >= deadline {
                try? etcd.revoke(lease: lease)
                throw MemberLockError(
                    path: location,
                    message: "member \(info.member) is already running"
                        + (holder.map { " (pid \($0.pid)\($0.host.map { " on \($0)" } ?? ""))" } ?? "") + "; stop it first or use another id",
                    holder: holder)
            }
            usleep(100_000)
        }
    }

    // MARK: probes

    public func probeBlocking(_ members: [Identifier]) throws -> [Identifier: MemberLocks.Probe] {
        let found = try client.waiting.range(membersPrefix, rangeEnd: StoreKey.prefixUpperBound(membersPrefix))
        return probes(members, from: found.keyValues)
    }

    public func probe(_ members: [Identifier]) async throws -> [Identifier: MemberLocks.Probe] {
        let found = try await client.range(membersPrefix, rangeEnd: StoreKey.prefixUpperBound(membersPrefix))
        return probes(members, from: found.keyValues)
    }

    private func probes(_ members: [Identifier], from keyValues: [EtcdKeyValue]) -> [Identifier: MemberLocks.Probe] {
        let values = Dictionary(keyValues.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
        func info(_ bytes: [UInt8]?) -> MemberProcessInfo? {
            bytes.flatMap { try? JSONDecoder().decode(MemberProcessInfo.self, from: Data($0)) }
        }
        var probes: [Identifier: MemberLocks.Probe] = [:]
        for member in members {
            if let live = values[liveKey(member)] {
                probes[member] = .alive(info(live))
            } else if let dead = values[deadKey(member)] {
                let certificate = try? JSONDecoder().decode(DeathCertificate.self, from: Data(dead))
                probes[member] = .down(last: certificate?.process)
            } else {
                probes[member] = .neverRan
            }
        }
        return probes
    }

    // MARK: deaths

    /// What the supervisor writes when it reaped a member's process.
    struct DeathCertificate: Codable, Sendable {
        var process: MemberProcessInfo
        var diedAt: WallTime
    }

    public func certifyExit(of member: Identifier, pid: Int32) async {
        let key = liveKey(member)
        guard let live = try? await client.range(key).keyValues.first,
            let info = try? JSONDecoder().decode(MemberProcessInfo.self, from: Data(live.value)),
            info.pid == pid, info.host == MemberProcessInfo.thisHost,
            let certificate = try? JSONEncoder().encode(DeathCertificate(process: info, diedAt: SystemTimeSource().wallNow()))
        else { return }
        // Only if the live key is still that process's: a successor's is never deleted.
        _ = try? await client.txn(
            compare: [.revision(key, .mod, .equal, live.modRevision)],
            success: [.delete(key: key, rangeEnd: nil), .put(key: deadKey(member), value: Array(certificate), lease: nil)])
        if live.lease != 0 { try? await client.revoke(lease: live.lease) }
    }

    public func makeWatcher(
        onDeath: @escaping @Sendable (MemberID, Incarnation?) -> Void, onLeadershipChange: @escaping @Sendable () -> Void
    ) -> any HolderWatcher {
        EtcdHolderWatcher(liveness: self, onDeath: onDeath, onLeadershipChange: onLeadershipChange)
    }
}

/// A process's live key and the loop that keeps its lease alive.
final class EtcdMemberRegistration: MemberRegistration {
    let info: MemberProcessInfo
    private let keeper: Task<Void, Never>

    init(info: MemberProcessInfo, key: [UInt8], value: [UInt8], lease: Int64, liveness: EtcdMemberLiveness) {
        self.info = info
        let client = liveness.client
        let ttl = liveness.leaseSeconds
        keeper = Task.detached {
            var lease = lease
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(ttl * 1000 / 3))
                guard !Task.isCancelled else { break }
                guard let remaining = try? await client.keepAlive(lease: lease) else { continue }
                if remaining > 0 { continue }
                // The lease lapsed (this process was paused or cut off for longer than the TTL):
                // take the member's name again under a new lease, unless another process took it.
                guard let fresh = try? await client.grantLease(ttlSeconds: ttl).id else { continue }
                let result = try? await client.txn(
                    compare: [.revision(key, .create, .equal, 0)], success: [.put(key: key, value: value, lease: fresh)])
                if result?.succeeded == true { lease = fresh } else { try? await client.revoke(lease: fresh) }
            }
            try? await client.revoke(lease: lease)
        }
    }

    deinit { keeper.cancel() }
}

/// A standby's watch on etcd: death certificates (for the member it is pointed at) and the
/// leadership record. Each watch reads its keys first, then follows changes from the revision of
/// that read; a watch that broke starts again from the last revision it saw, and one whose
/// history was compacted reads the keys again.
final class EtcdHolderWatcher: HolderWatcher {
    private struct Watching: Sendable {
        var target: MemberID?
        /// The last certificate seen of each member: pointing at a member already certified dead
        /// reports it at once.
        var certified: [MemberID: Incarnation] = [:]
    }
    private final class Shared: Sendable {
        let state = Mutex(Watching())
    }
    private let shared = Shared()
    private let onDeath: @Sendable (MemberID, Incarnation?) -> Void
    private let tasks = Mutex<[Task<Void, Never>]>([])

    init(
        liveness: EtcdMemberLiveness, onDeath: @escaping @Sendable (MemberID, Incarnation?) -> Void,
        onLeadershipChange: @escaping @Sendable () -> Void
    ) {
        self.onDeath = onDeath
        let client = liveness.client
        let shared = self.shared
        let deaths = Task.detached {
            await Self.follow(client, liveness.deadPrefix, rangeEnd: StoreKey.prefixUpperBound(liveness.deadPrefix)) { keyValue, _ in
                guard let certificate = try? JSONDecoder().decode(EtcdMemberLiveness.DeathCertificate.self, from: Data(keyValue.value)),
                    let member = MemberID(rawValue: certificate.process.member.rawValue)
                else { return }
                let watched = shared.state.withLock { state in
                    state.certified[member] = certificate.process.incarnation
                    return state.target == member
                }
                if watched { onDeath(member, certificate.process.incarnation) }
            }
        }
        let leadership = Task.detached {
            await Self.follow(client, liveness.leadershipKey, rangeEnd: nil) { _, initial in
                if !initial { onLeadershipChange() }
            }
        }
        tasks.withLock { $0 = [deaths, leadership] }
    }

    func watch(_ member: MemberID?) {
        let certified = shared.state.withLock { state -> Incarnation? in
            state.target = member
            return member.flatMap { state.certified[$0] }
        }
        // Reported on a task of its own: never from inside the caller (the master's loop).
        if let member, let certified {
            let onDeath = self.onDeath
            Task.detached { onDeath(member, certified) }
        }
    }

    func stop() {
        shared.state.withLock { $0.target = nil }
        for task in tasks.withLock({ $0 }) { task.cancel() }
    }

    /// Calls `deliver(keyValue, initial)` for each key present at the first read (`initial`) and
    /// for each one put after it, until cancelled.
    static func follow(
        _ client: EtcdClient, _ key: [UInt8], rangeEnd: [UInt8]?, deliver: @escaping @Sendable (EtcdKeyValue, Bool) -> Void
    ) async {
        var next: Int64?
        while !Task.isCancelled {
            do {
                if next == nil {
                    let found = try await client.range(key, rangeEnd: rangeEnd)
                    for keyValue in found.keyValues { deliver(keyValue, true) }
                    next = found.revision + 1
                }
                for try await message in client.watch(key, rangeEnd: rangeEnd, startRevision: next, lifetime: .seconds(120)) {
                    switch message {
                    case .created:
                        continue
                    case .events(let events, _):
                        for event in events {
                            next = max(next ?? 0, event.keyValue.modRevision + 1)
                            if event.kind == .put { deliver(event.keyValue, false) }
                        }
                    case .compacted:
                        next = nil
                    }
                }
            } catch {
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }
}
