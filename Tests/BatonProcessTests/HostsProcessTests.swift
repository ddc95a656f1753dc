import BatonConfig
import BatonCore
import BatonElection
import BatonProcessControl
import BatonStatus
import BatonTestKit
import Foundation
import Testing

extension ProcessTests {
    /// A group across three hosts of this machine (network namespaces), each with an etcd member, a
    /// master and a task executor, under faults of processes, hosts and links. Every time: the
    /// audit finds no violation, and the job's committed output holds every record exactly once.
    @Suite("a group across three hosts (network namespaces)", .enabled(if: NetnsHosts.available, "needs root and iproute2 (ip netns)"))
    struct HostsProcessTests {
        let failover = FailoverProcessTests()

        /// A three-host group running the keyed count, and where its leader is.
        struct Running {
            let group: GroupHarness
            let output: String
            let hosts: NetnsHosts
            let status: GroupStatus
            let leader: GroupStatus.Leader
            let leaderHost: NetnsHosts.Host
        }

        /// A three-host group running the keyed count of `records` records.
        func runningGroup(records: Int) async throws -> Running {
            let group = try await GroupHarness.makeOnHosts(3)
            do {
                try group.startGroup()
                let output = group.directory.file("out")
                try await failover.submitKeyedCount(group, records: records, output: output, taskExecutors: 3)
                let status = try #require(await failover.runningUnder(group, newerThan: 0), "\(group.logs)")
                let leader = try #require(status.leader)
                return Running(
                    group: group, output: output, hosts: try #require(group.hosts), status: status, leader: leader,
                    leaderHost: try #require(group.host(ofMaster: leader.id)))
            } catch {
                group.stop()
                throw error
            }
        }

        /// The job finishes, its output holds every record exactly once, and the audit is clean.
        func expectFinishedCleanly(_ group: GroupHarness, output: String, records: Int) async throws {
            let finished = try #require(await group.waitLive(timeout: .seconds(120)) { $0.jobs.first?.state == "FINISHED" }, "\(group.logs)")
            try failover.expectExactlyOnce(output, records: records)
            let audit = try BatonProcess.run(["audit", "--config", group.configPath])
            #expect(audit.status == 0, "\(audit.output)")
            #expect(finished.masters.filter { $0.role == "leader" }.count == 1)
        }

        /// The new leader, once one newer than `epoch` leads and its process is alive.
        func newLeader(_ group: GroupHarness, after epoch: UInt64, timeout: Duration = .seconds(20)) -> GroupStatus.Leader? {
            var found: GroupStatus.Leader?
            _ = eventually(timeout: timeout, interval: .milliseconds(5)) {
                guard let leader = (try? group.status())?.leader, leader.epoch > epoch, leader.alive else { return false }
                found = leader
                return true
            }
            return found
        }

        @Test("kill -9 of the leader's process: its host's group certifies the death and a master on another host leads at once; an etcd member lost changes nothing")
        func leaderProcessKilledThenEtcdMemberLost() async throws {
            let records = 40_000
            let run = try await runningGroup(records: records)
            let (group, output, hosts, leader) = (run.group, run.output, run.hosts, run.leader)
            defer { group.stop() }
            let attempts = failover.attempts(run.status.jobs[0])

            let killedAt = ContinuousClock.now
            kill(leader.pid, SIGKILL)
            let successor = try #require(newLeader(group, after: leader.epoch), "\(group.logs)")
            let elapsed = ContinuousClock.now - killedAt
            print("three hosts: kill -9 of the leader to a new leader on etcd in \(elapsed)")
            // The lease is 2 s (an etcd member lost, even its raft leader, must not end a term): a
            // takeover well under it came through the certificate.
            #expect(elapsed < .milliseconds(900), "took \(elapsed)")
            #expect(successor.id != leader.id)
            let (_, terms) = try group.journal()
            #expect(terms.first { $0.epoch.rawValue == leader.epoch }?.endReason == .holderDied)
            let after = try #require(await failover.runningUnder(group, newerThan: leader.epoch), "\(group.logs)")
            #expect(failover.attempts(after.jobs[0]) == attempts && after.jobs[0].restarts == 0)

            // One etcd member (on a host other than the leader's) dies: etcd keeps its quorum.
            let leaderHost = try #require(group.host(ofMaster: successor.id))
            let other = try #require(hosts.hosts.first { $0 != leaderHost })
            let etcdPids = hosts.processes(on: other).filter { (try? String(contentsOfFile: "/proc/\($0)/comm", encoding: .utf8))?.hasPrefix("etcd") == true }
            #expect(etcdPids.count == 1)
            for pid in etcdPids { kill(pid, SIGKILL) }
            try await Task.sleep(for: .seconds(3))
            let status = try group.status()
            #expect(status.leader?.epoch == successor.epoch, "the leader changed when an etcd member died")
            let running = try #require(await failover.runningUnder(group, newerThan: leader.epoch), "\(group.logs)")
            #expect(failover.attempts(running.jobs[0]) == attempts && running.jobs[0].restarts == 0)
            try await expectFinishedCleanly(group, output: output, records: records)
        }

        @Test("the leader's host cut off from etcd: it stops leading, a master elsewhere leads, the cut-off leader commits nothing; then cut off from the other members: the job comes back")
        func leaderHostLinksCut() async throws {
            let records = 60_000
            let run = try await runningGroup(records: records)
            let (group, output, hosts, leader, leaderHost) = (run.group, run.output, run.hosts, run.leader, run.leaderHost)
            defer { group.stop() }

            // Cut from etcd (its own etcd member too), still reaching the task executors.
            try hosts.cut(leaderHost, [.store])
            let successor = try #require(newLeader(group, after: leader.epoch), "\(group.logs)")
            #expect(successor.id != leader.id)
            let marker = "baton.incarnation=\(leader.incarnation)"
            #expect(
                eventually(timeout: .seconds(15)) {
                    group.logs.split(separator: "\n").contains { $0.contains(marker) && $0.contains("leadership revoked") }
                }, "the cut-off leader did not stop leading:\n\(group.logs)")
            try hosts.restore(leaderHost, [.store])
            let (_, terms) = try group.journal()
            let ended = try #require(terms.first { $0.epoch.rawValue == leader.epoch })
            #expect(ended.endReason == .leaseExpired && ended.endedBy?.rawValue == successor.id)
            _ = try #require(await failover.runningUnder(group, newerThan: leader.epoch, timeout: .seconds(60)), "\(group.logs)")

            // The new leader's host cut from the other members (masters, task executors), still reaching etcd.
            let current = try #require(try group.status().leader)
            let currentHost = try #require(group.host(ofMaster: current.id))
            try hosts.cut(currentHost, [.members])
            try await Task.sleep(for: .seconds(4))
            try hosts.restore(currentHost, [.members])
            try await expectFinishedCleanly(group, output: output, records: records)
        }

        @Test("the leader's host stopped past the lease (every process in it): a master elsewhere leads; woken, the old leader steps down and its writes are fenced")
        func leaderHostStopped() async throws {
            let records = 40_000
            let run = try await runningGroup(records: records)
            let (group, output, hosts, leader, leaderHost) = (run.group, run.output, run.hosts, run.leader, run.leaderHost)
            defer { group.stop() }
            let stoppedAt = ContinuousClock.now
            let stopped = hosts.signalAll(on: leaderHost, SIGSTOP)
            #expect(stopped.count >= 4, "group, master, task executor and etcd member: \(stopped)")
            let successor = newLeader(group, after: leader.epoch)
            let elapsed = ContinuousClock.now - stoppedAt
            hosts.signalAll(on: leaderHost, SIGCONT)
            let taken = try #require(successor, "\(group.logs)")
            // Nobody certified a death: only the lease (2 s) ended the term.
            #expect(elapsed >= .milliseconds(1800), "took over after only \(elapsed)")
            #expect(taken.id != leader.id)
            let marker = "baton.incarnation=\(leader.incarnation)"
            #expect(
                eventually(timeout: .seconds(15)) {
                    let lines = group.logs.split(separator: "\n").filter { $0.contains(marker) }
                    return lines.contains { $0.contains("leadership revoked") } && lines.contains { $0.contains("refused as fenced") }
                }, "the woken leader did not step down, or its write was not refused:\n\(group.logs)")
            let (_, terms) = try group.journal()
            #expect(terms.first { $0.epoch.rawValue == leader.epoch }?.endReason == .leaseExpired)
            try await expectFinishedCleanly(group, output: output, records: records)
        }

        @Test("the leader's host killed whole (its group, master, task executor and etcd member): a master elsewhere leads within the lease and the job comes back")
        func leaderHostKilled() async throws {
            let records = 40_000
            let run = try await runningGroup(records: records)
            let (group, output, hosts, leader, leaderHost) = (run.group, run.output, run.hosts, run.leader, run.leaderHost)
            defer { group.stop() }
            let killedAt = ContinuousClock.now
            #expect(hosts.signalAll(on: leaderHost, SIGKILL).count >= 4)
            let successor = try #require(newLeader(group, after: leader.epoch), "\(group.logs)")
            let elapsed = ContinuousClock.now - killedAt
            print("three hosts: the leader's whole host killed to a new leader in \(elapsed)")
            #expect(successor.id != leader.id)
            #expect(elapsed < .seconds(10))
            let (_, terms) = try group.journal()
            #expect(terms.first { $0.epoch.rawValue == leader.epoch }?.endReason == .leaseExpired)
            // Two etcd members hold the quorum; two task executors take the lost one's tasks.
            try await expectFinishedCleanly(group, output: output, records: records)
        }
    }
}
