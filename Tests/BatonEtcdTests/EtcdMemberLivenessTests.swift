import BatonCore
import BatonEtcd
import BatonHAStore
import BatonHAStoreEtcd
import BatonMemberLocks
import Foundation
import Synchronization
import Testing

@Suite("member liveness in etcd: live keys on leases, death certificates from the supervisor, against a real etcd", .serialized)
struct EtcdMemberLivenessTests {
    func info(_ member: Identifier, pid: Int32, incarnation: UInt64) -> MemberProcessInfo {
        MemberProcessInfo(
            member: member, pid: pid, incarnation: Incarnation(rawValue: incarnation), address: "127.0.0.1:1", startedAt: WallTime(millisecondsSince1970: 1),
            role: "master")
    }

    /// Deaths and leadership changes a watcher reported.
    final class Reports: Sendable {
        let deaths = Mutex<[String]>([])
        let leadershipChanges = Mutex(0)
        func died(_ member: MemberID, _ incarnation: Incarnation?) {
            deaths.withLock { $0.append("\(member)#\(incarnation.map { "\($0.rawValue)" } ?? "-")") }
        }
        func waitFor(_ condition: @escaping @Sendable ([String]) -> Bool, timeout: Duration = .seconds(5)) async -> Bool {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if deaths.withLock({ condition($0) }) { return true }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return false
        }
    }

    @Test("a member registers once: a second process of it is refused naming the first; once the first is gone it registers")
    func oneLiveProcessPerMember() async throws {
        try await withLocalEtcd { _, client in
            let liveness = EtcdMemberLiveness(client: client, prefix: "/t1/", leaseSeconds: 2)
            var first: (any MemberRegistration)? = try liveness.register(info("m1", pid: 4242, incarnation: 1), patience: .zero)
            #expect(throws: MemberLockError.self) { try liveness.register(info("m1", pid: 4343, incarnation: 2), patience: .milliseconds(300)) }
            do {
                _ = try liveness.register(info("m1", pid: 4343, incarnation: 2), patience: .milliseconds(300))
            } catch let error as MemberLockError {
                #expect(error.message.contains("already running") && error.message.contains("4242"), "\(error)")
                #expect(error.holder?.pid == 4242)
            }
            let probes = try liveness.probeBlocking(["m1", "m2"])
            guard case .alive(let alive) = probes["m1"] else { Issue.record("m1 is not alive: \(probes)"); return }
            #expect(alive?.pid == 4242)
            #expect(probes["m2"] == .neverRan)
            withExtendedLifetime(first) {}
            first = nil  // ends its keep-alive and revokes its lease
            let second = try liveness.register(info("m1", pid: 4343, incarnation: 2), patience: .seconds(3))
            #expect(second.info.pid == 4343)
        }
    }

    @Test("the supervisor's certificate ends the live key of exactly the process it reaped, and the watcher reports that incarnation")
    func certifiedDeath() async throws {
        try await withLocalEtcd { _, client in
            let liveness = EtcdMemberLiveness(client: client, prefix: "/t2/", leaseSeconds: 5)
            let m1 = try liveness.register(info("m1", pid: 5001, incarnation: 11), patience: .zero)
            let m2 = try liveness.register(info("m2", pid: 5002, incarnation: 12), patience: .zero)
            let reports = Reports()
            let watcher = liveness.makeWatcher(onDeath: reports.died, onLeadershipChange: {})
            defer { watcher.stop() }
            watcher.watch(MemberID(rawValue: "m1"))
            try await Task.sleep(for: .milliseconds(300))

            // Another pid of m1 (a process that already ended, say): nothing changes.
            await liveness.certifyExit(of: "m1", pid: 9999)
            guard case .alive = try liveness.probeBlocking(["m1"])["m1"] else { Issue.record("a wrong pid ended m1's live key"); return }
            // m2 is not watched: its certificate is noted, not reported.
            await liveness.certifyExit(of: "m2", pid: 5002)
            // m1's own process: reported with its incarnation.
            await liveness.certifyExit(of: "m1", pid: 5001)
            #expect(await reports.waitFor { $0.contains("m1#11") }, "\(reports.deaths.withLock { $0 })")
            #expect(!reports.deaths.withLock { $0 }.contains("m2#12"))
            guard case .down(let last) = try liveness.probeBlocking(["m1"])["m1"] else { Issue.record("m1 is not down"); return }
            #expect(last?.pid == 5001)
            // Pointed at m2 now, whose death was certified before: reported at once.
            watcher.watch(MemberID(rawValue: "m2"))
            #expect(await reports.waitFor { $0.contains("m2#12") })
            withExtendedLifetime((m1, m2)) {}
        }
    }

    @Test("a lease that lapses is no death certificate: the watcher reports nothing (the process may be paused)")
    func lapsedLeaseIsNoDeath() async throws {
        try await withLocalEtcd { _, client in
            let liveness = EtcdMemberLiveness(client: client, prefix: "/t3/", leaseSeconds: 5)
            let m1 = try liveness.register(info("m1", pid: 6001, incarnation: 21), patience: .zero)
            let reports = Reports()
            let watcher = liveness.makeWatcher(onDeath: reports.died, onLeadershipChange: {})
            defer { watcher.stop() }
            watcher.watch(MemberID(rawValue: "m1"))
            // The lease ends without the supervisor (as when the host stops): the live key goes.
            let live = try #require(try await client.range(Array("/t3/members/live/m1".utf8)).keyValues.first)
            try await client.revoke(lease: live.lease)
            #expect(try await client.range(Array("/t3/members/live/m1".utf8)).keyValues.isEmpty)
            #expect(!(await reports.waitFor({ !$0.isEmpty }, timeout: .seconds(1))), "\(reports.deaths.withLock { $0 })")
            withExtendedLifetime(m1) {}
        }
    }

    @Test("a live process whose lease lapsed (paused, cut off) takes its member's name again under a new lease")
    func lapsedLeaseIsTakenAgain() async throws {
        try await withLocalEtcd { _, client in
            let liveness = EtcdMemberLiveness(client: client, prefix: "/t5/", leaseSeconds: 1)
            let key = Array("/t5/members/live/m1".utf8)
            let m1 = try liveness.register(info("m1", pid: 7001, incarnation: 31), patience: .zero)
            let first = try #require(try await client.range(key).keyValues.first)
            try await client.revoke(lease: first.lease)
            var again: EtcdKeyValue?
            let deadline = ContinuousClock.now + .seconds(5)
            while again == nil, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                again = try await client.range(key).keyValues.first
            }
            let back = try #require(again, "the live key did not come back")
            #expect(back.lease != first.lease)
            #expect(try JSONDecoder().decode(MemberProcessInfo.self, from: Data(back.value)).pid == 7001)

            withExtendedLifetime(m1) {}
        }
    }

    @Test("a write of the leadership record is reported to the watcher at once")
    func leadershipChanges() async throws {
        try await withLocalEtcd { _, client in
            let liveness = EtcdMemberLiveness(client: client, prefix: "/t4/", leaseSeconds: 5)
            let reports = Reports()
            let watcher = liveness.makeWatcher(onDeath: reports.died, onLeadershipChange: { reports.leadershipChanges.withLock { $0 += 1 } })
            defer { watcher.stop() }
            try await Task.sleep(for: .milliseconds(300))
            let key = Array("/t4/".utf8) + [StoreNamespace.leadership.number] + HAStore.leadershipKeyBytes
            try await client.put(key, bytes("a record"))
            let deadline = ContinuousClock.now + .seconds(5)
            while reports.leadershipChanges.withLock({ $0 }) == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(reports.leadershipChanges.withLock { $0 } == 1)
        }
    }
}
