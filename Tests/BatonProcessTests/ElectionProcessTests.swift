import BatonConfig
import BatonCore
import BatonElection
import BatonStatus
import BatonProcessControl
import BatonTestKit
import Foundation
import Testing

/// Every test here starts real processes: they run one at a time, so that two groups never compete
/// for the machine's two cores and timings stay meaningful.
@Suite("real processes", .serialized)
struct ProcessTests {}

extension ProcessTests {
/// The election with real processes, real stores (files, a real etcd) and real kill -9 / SIGSTOP, on every backend.
@Suite("election with real processes")
struct ElectionProcessTests {
    static let backends = ["sqlite", "lmdb", "etcd"]

    @Test("exactly one of three candidates leads, and status shows it", arguments: backends)
    func exactlyOneLeader(_ backend: String) async throws {
        let group = try await GroupHarness.make(backend: backend)
        defer { group.stop() }
        try group.startGroup(restart: false)
        let status = try #require(group.waitForStableLeader(), "no leader elected:\n\(group.logs)")
        #expect(status.masters.filter { $0.role == "leader" }.count == 1)
        #expect(status.masters.filter { $0.role == "standby" }.count == 2)
        // It stays that way: the same term keeps being renewed.
        usleep(1_500_000)
        let later = try group.status()
        #expect(later.leader?.epoch == status.leader?.epoch)
        #expect(later.leader?.renewedAt != status.leader?.renewedAt)
        // The status command prints the contract's JSON keys.
        let run = try BatonProcess.run(["status", "--config", group.configPath, "--json"])
        #expect(run.status == 0)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any])
        let leader = try #require(json["leader"] as? [String: Any])
        #expect(leader["id"] as? String == status.leader?.id)
        #expect((leader["epoch"] as? NSNumber)?.uint64Value == status.leader?.epoch)
        let masters = try #require(json["masters"] as? [[String: Any]])
        #expect(masters.count == 3)
        for master in masters {
            #expect(master["id"] is String && master["pid"] is NSNumber && master["address"] is String)
            #expect(["leader", "standby"].contains(master["role"] as? String))
        }
        #expect(json["taskExecutors"] is [Any] && json["jobs"] is [Any])
    }

    @Test("kill -9 of the leader makes a standby leader with a higher epoch at once", arguments: backends)
    func killedLeaderIsReplaced(_ backend: String) async throws {
        let group = try await GroupHarness.make(backend: backend)
        defer { group.stop() }
        try group.startGroup()
        let before = try #require(group.waitForStableLeader(), "no leader elected:\n\(group.logs)")
        let old = try #require(before.leader)
        let killedAt = ContinuousClock.now
        kill(old.pid, SIGKILL)
        var after: GroupStatus?
        #expect(
            eventually(timeout: .seconds(10), interval: .milliseconds(2)) {
                after = try? group.status()
                return (after?.leader?.epoch ?? 0) > old.epoch && after?.leader?.alive == true
            }, "no new leader:\n\(group.logs)")
        let elapsed = ContinuousClock.now - killedAt
        #expect(after?.leader?.id != old.id || after?.leader?.pid != old.pid)
        // The crash is noticed through the member lock, not by waiting for the 1 s lease.
        #expect(elapsed < .milliseconds(900), "took \(elapsed)")
        let (_, terms) = try group.journal()
        let ended = try #require(terms.first { $0.epoch.rawValue == old.epoch })
        #expect(ended.endReason == .holderDied)
    }

    @Test("a paused leader is replaced after its lease; on waking it steps down and its writes are fenced", arguments: backends)
    func pausedLeaderIsFenced(_ backend: String) async throws {
        let group = try await GroupHarness.make(backend: backend)
        defer { group.stop() }
        try group.startGroup()
        let before = try #require(group.waitForStableLeader(), "no leader elected:\n\(group.logs)")
        let old = try #require(before.leader)
        kill(old.pid, SIGSTOP)
        let stoppedAt = ContinuousClock.now
        var after: GroupStatus?
        let replaced = eventually(timeout: .seconds(15)) {
            after = try? group.status()
            return (after?.leader?.epoch ?? 0) > old.epoch
        }
        let elapsed = ContinuousClock.now - stoppedAt
        kill(old.pid, SIGCONT)
        try #require(replaced, "no takeover while the leader was stopped:\n\(group.logs)")
        // A hung leader keeps its lock: only the lease (1 s here) ends its term.
        #expect(elapsed >= .milliseconds(900), "took over after only \(elapsed)")
        let successor = try #require(after?.leader)
        // After SIGCONT the old leader revokes its leadership and its write is refused as fenced.
        let marker = "baton.incarnation=\(old.incarnation)"
        #expect(
            eventually(timeout: .seconds(10)) {
                let lines = group.logs.split(separator: "\n").filter { $0.contains(marker) }
                return lines.contains { $0.contains("leadership revoked") }
                    && lines.contains { $0.contains("write refused as fenced") }
            }, "the woken leader did not step down:\n\(group.logs)")
        let (record, terms) = try group.journal()
        #expect(record?.epoch.rawValue == successor.epoch)
        #expect(record?.holder?.member.rawValue == successor.id)
        let ended = try #require(terms.first { $0.epoch.rawValue == old.epoch })
        #expect(ended.endReason == .leaseExpired)
        #expect(ended.endedBy?.rawValue != old.id || successor.id == old.id)
        // The woken master is a standby again, not a second leader.
        #expect(
            eventually(timeout: .seconds(5)) {
                (try? group.status())?.masters.filter { $0.role == "leader" }.count == 1
            })
    }

    @Test("epochs never repeat over 20 successive kills of the leader", arguments: backends)
    func twentyKills(_ backend: String) async throws {
        let group = try await GroupHarness.make(backend: backend)
        defer { group.stop() }
        try group.startGroup()
        var epochs: [UInt64] = []
        for round in 1...20 {
            let status = try #require(
                group.waitForStableLeader(newerThan: epochs.last ?? 0), "round \(round): no leader:\n\(group.logs)")
            let leader = try #require(status.leader)
            epochs.append(leader.epoch)
            kill(leader.pid, SIGKILL)
        }
        let final = try #require(group.waitForStableLeader(newerThan: epochs.last!), "no leader after the last kill")
        epochs.append(final.leader!.epoch)
        #expect(zip(epochs, epochs.dropFirst()).allSatisfy { $0 < $1 }, "epochs \(epochs)")
        let (_, terms) = try group.journal()
        #expect(terms.map(\.epoch.rawValue) == Array(1...UInt64(terms.count)), "journal \(terms.map(\.epoch))")
        #expect(Set(terms.map(\.epoch)).count == terms.count)
        for epoch in epochs.dropLast() {
            let term = try #require(terms.first { $0.epoch.rawValue == epoch })
            #expect(term.endReason == .holderDied, "term \(epoch) ended \(String(describing: term.endReason))")
        }
    }

    @Test("a master resigns on SIGTERM, and a standby takes over at once", arguments: backends)
    func resignOnSigterm(_ backend: String) async throws {
        let group = try await GroupHarness.make(backend: backend)
        defer { group.stop() }
        for id in ["m1", "m2", "m3"] { try group.startMaster(id) }
        let before = try #require(group.waitForStableLeader(), "no leader elected:\n\(group.logs)")
        let old = try #require(before.leader)
        let process = try #require(group.processes.first { $0.pid == old.pid })
        process.signal(SIGTERM)
        #expect(process.wait(timeout: .seconds(10)))
        #expect(process.exitStatus == 0)
        #expect(
            eventually(timeout: .seconds(5)) {
                guard let status = try? group.status(), let leader = status.leader else { return false }
                return leader.epoch > old.epoch && leader.alive
            })
        let (_, terms) = try group.journal()
        #expect(terms.first { $0.epoch.rawValue == old.epoch }?.endReason == .resigned)
    }

    @Test("the group restarts a member that dies; with --no-restart it does not", arguments: ["sqlite"])
    func groupRestarts(_ backend: String) throws {
        for restart in [true, false] {
            let group = try GroupHarness(backend: backend)
            defer { group.stop() }
            let supervisor = try group.startGroup(restart: restart)
            let status = try #require(group.waitForStableLeader())
            let standby = try #require(status.masters.first { $0.role == "standby" })
            kill(standby.pid!, SIGKILL)
            let back = eventually(timeout: .seconds(5)) {
                (try? group.status())?.masters.first { $0.id == standby.id }.map { $0.role != "down" && $0.pid != standby.pid }
                    ?? false
            }
            #expect(back == restart)
            let leading = try #require(try group.status().leader)
            supervisor.signal(SIGTERM)
            #expect(supervisor.wait(timeout: .seconds(15)), "the group did not stop")
            #expect(supervisor.exitStatus == 0)
            let down = eventually(timeout: .seconds(5)) { (try? group.status())?.masters.allSatisfy { $0.role == "down" } ?? false }
            #expect(down, "members outlived the group")
            // Standbys stop first, then the leader resigns: no cascade of short terms on the way down.
            let (record, terms) = try group.journal()
            #expect(record?.epoch.rawValue == leading.epoch && record?.holder == nil)
            #expect(terms.last?.endReason == .resigned)
        }
    }

    @Test("a master whose group is killed with SIGKILL ends itself")
    func orphanedMembersExit() throws {
        let group = try GroupHarness(backend: "sqlite")
        defer { group.stop() }
        let supervisor = try group.startGroup()
        _ = try #require(group.waitForStableLeader())
        supervisor.kill()
        #expect(eventually(timeout: .seconds(5)) { (try? group.status())?.masters.allSatisfy { $0.role == "down" } ?? false })
    }
}
}
