import BatonConfig
import BatonCore
import BatonHAStore
import BatonHAStoreSelection
import BatonJobManager
import BatonStoreRecords
import BatonProcessControl
import BatonStatus
import BatonTestKit
import BatonWire
import Foundation
import Testing

extension ProcessTests {
    /// Master failover with running jobs: the new leader reconciles, nothing restarts.
    @Suite("master failover with real processes")
    struct FailoverProcessTests {
        let checkpoints = CheckpointProcessTests()

        /// Every subtask's (vertex, index) -> attempt.
        func attempts(_ job: GroupStatus.Job) -> [String: Int] {
            var attempts: [String: Int] = [:]
            for vertex in job.vertices { for subtask in vertex.subtasks { attempts["\(vertex.id)#\(subtask.index)"] = subtask.attempt } }
            return attempts
        }

        /// Waits for the job to run under a leader newer than `epoch`, every subtask RUNNING.
        func runningUnder(_ group: GroupHarness, newerThan epoch: UInt64, timeout: Duration = .seconds(30)) async -> GroupStatus? {
            await group.waitLive(timeout: timeout) { status in
                guard let leader = status.leader, leader.epoch > epoch, let job = status.jobs.first, job.state == "RUNNING" else { return false }
                return job.vertices.flatMap(\.subtasks).allSatisfy { $0.state == "RUNNING" }
            }
        }

        /// The journal of reconciliations, oldest first.
        func journal(_ group: GroupHarness) async throws -> [ReconciliationRecord] {
            let store = try HAStoreSelection.open(group.configuration.store, access: .readOnly)
            return try await store.read { try $0.values(ReconciliationRecord.self, .reconciliations) }
        }

        /// Submits the keyed count (2,000 records/s per source subtask) once every task executor registered.
        func submitKeyedCount(_ group: GroupHarness, records: Int, output: String, taskExecutors: Int) async throws {
            let spec = try group.jobSpec(checkpoints.keyedCountSpec(id: "counts", records: records, rate: 2_000, output: output), name: "counts.yaml")
            _ = try #require(await group.waitLive { $0.taskExecutors.filter { $0.registeredEpoch != nil }.count == taskExecutors }, "\(group.logs)")
            #expect(try BatonProcess.run(["submit", "--config", group.configPath, spec]).status == 0)
        }

        /// Checks the committed output.
        func expectExactlyOnce(_ output: String, records: Int) throws {
            let (steps, uncommitted) = try checkpoints.committed(output)
            #expect(uncommitted.isEmpty, "\(uncommitted)")
            let counts = checkpoints.expected(records: records)
            #expect(Set(steps.keys) == Set(counts.keys))
            for (key, values) in steps { #expect(values.sorted() == Array(1...counts[key]!), "key \(key): \(values.count) steps") }
        }

        @Test("kill -9 of the leader five times: the job goes on, no attempt changes, output exactly once", arguments: ["sqlite", "lmdb", "etcd"])
        func leaderKills(_ backend: String) async throws {
            let group = try await GroupHarness.make(backend: backend, masters: 3, taskExecutors: 2, slots: 2)
            defer { group.stop() }
            try group.startGroup()
            let output = group.directory.file("out")
            let records = 60_000
            try await submitKeyedCount(group, records: records, output: output, taskExecutors: 2)
            var status = try #require(await runningUnder(group, newerThan: 0), "\(group.logs)")
            let initial = attempts(status.jobs[0])
            var ids: [UInt64] = []
            var random = SystemRandomNumberGenerator()
            for round in 0..<5 {
                let leader = try #require(status.leader)
                if round == 2 {
                    // Kill it while a checkpoint is under way: a newer checkpoint folder appears.
                    let folder = group.configuration.checkpoints.directory + "/counts"
                    let last = status.jobs[0].lastCheckpoint.id ?? 0
                    _ = eventually(timeout: .seconds(5), interval: .milliseconds(1)) {
                        FileManager.default.fileExists(atPath: "\(folder)/chk-\(last + 1)")
                    }
                } else {
                    try await Task.sleep(for: .milliseconds(Int.random(in: 200...900, using: &random)))
                }
                kill(leader.pid, SIGKILL)
                status = try #require(await runningUnder(group, newerThan: leader.epoch), "round \(round):\n\(group.logs)")
                let job = status.jobs[0]
                #expect(attempts(job) == initial, "round \(round): attempts changed")
                #expect(job.restarts == 0, "round \(round)")
                ids.append(job.lastCheckpoint.id ?? 0)
            }
            let finished = try #require(await group.waitLive(timeout: .seconds(90)) { $0.jobs.first?.state == "FINISHED" }, "\(group.logs)")
            #expect(finished.jobs[0].restarts == 0)
            ids.append(finished.jobs[0].lastCheckpoint.id ?? 0)
            #expect(ids == ids.sorted() && ids.last! > ids.first!, "checkpoint ids \(ids)")
            try expectExactlyOnce(output, records: records)
            let failovers = try await journal(group)
            #expect(failovers.count >= 5, "\(failovers)")
            for failover in failovers {
                #expect(failover.restarted == 0 && failover.cancelled == 0, "\(failover)")
                #expect(failover.adopted + failover.finished == 4 && failover.jobs == 1, "\(failover)")
                #expect(failover.reconciledAt != nil)
            }
        }

        @Test("a leader stopped past its lease is replaced without restarts; woken, it changes nothing", arguments: ["sqlite", "lmdb", "etcd"])
        func leaderPaused(_ backend: String) async throws {
            let group = try await GroupHarness.make(backend: backend, masters: 3, taskExecutors: 2, slots: 2)
            defer { group.stop() }
            try group.startGroup()
            let output = group.directory.file("out")
            let records = 30_000
            try await submitKeyedCount(group, records: records, output: output, taskExecutors: 2)
            let before = try #require(await runningUnder(group, newerThan: 0), "\(group.logs)")
            try await Task.sleep(for: .milliseconds(700))
            let leader = try #require(before.leader)
            kill(leader.pid, SIGSTOP)
            let after = await runningUnder(group, newerThan: leader.epoch)
            kill(leader.pid, SIGCONT)
            let status = try #require(after, "\(group.logs)")
            #expect(attempts(status.jobs[0]) == attempts(before.jobs[0]))
            #expect(status.jobs[0].restarts == 0)
            // The woken leader steps down; its writes are refused and the job is not disturbed.
            let marker = "baton.incarnation=\(leader.incarnation)"
            #expect(
                eventually(timeout: .seconds(10)) {
                    group.logs.split(separator: "\n").contains { $0.contains(marker) && $0.contains("leadership revoked") }
                }, "\(group.logs)")
            let finished = try #require(await group.waitLive(timeout: .seconds(60)) { $0.jobs.first?.state == "FINISHED" }, "\(group.logs)")
            #expect(finished.jobs[0].restarts == 0)
            #expect(finished.masters.filter { $0.role == "leader" }.count == 1)
            try expectExactlyOnce(output, records: records)
        }

        @Test("a task executor killed while there is no leader: only its region restarts, from the latest checkpoint")
        func taskExecutorLostWithoutLeader() async throws {
            let group = try GroupHarness(backend: "lmdb", masters: 2, taskExecutors: 3, slots: 1)
            defer { group.stop() }
            try group.startGroup(restart: false)
            let output = group.directory.file("out")
            let records = 30_000
            try await submitKeyedCount(group, records: records, output: output, taskExecutors: 3)
            let before = try #require(await group.waitLive { status in
                guard let job = status.jobs.first, (job.lastCheckpoint.id ?? 0) >= 2 else { return false }
                return job.vertices.flatMap(\.subtasks).allSatisfy { $0.state == "RUNNING" }
            }, "\(group.logs)")
            let leader = try #require(before.leader)
            let standby = try #require(before.masters.first { $0.role == "standby" }?.pid)
            let victim = try #require(before.jobs[0].vertices[0].subtasks[0].taskExecutor)
            let victimPid = try #require(before.taskExecutors.first { $0.id == victim }?.pid)
            // No leader: the standby is stopped, the leader killed; then a task executor dies.
            kill(standby, SIGSTOP)
            kill(leader.pid, SIGKILL)
            kill(victimPid, SIGKILL)
            try await Task.sleep(for: .milliseconds(300))
            kill(standby, SIGCONT)
            let recovered = try #require(await group.waitLive(timeout: .seconds(40)) { status in
                guard let job = status.jobs.first, job.state == "RUNNING", (status.leader?.epoch ?? 0) > leader.epoch else { return false }
                return job.restarts > 0 && job.vertices.flatMap(\.subtasks).allSatisfy { $0.state == "RUNNING" }
            }, "\(group.logs)")
            // Source and count are one pipelined region (hash edge): its 4 tasks restart, once each.
            #expect(recovered.jobs[0].restarts == 4)
            #expect(recovered.jobs[0].vertices.flatMap(\.subtasks).allSatisfy { $0.taskExecutor != victim })
            _ = try #require(await group.waitLive(timeout: .seconds(60)) { $0.jobs.first?.state == "FINISHED" }, "\(group.logs)")
            try expectExactlyOnce(output, records: records)
            let failover = try #require(try await journal(group).last)
            #expect(failover.windowClosed)
            #expect(failover.restarted >= 1)
        }

        @Test("bench failover: 0 task restarts and 0 records emitted twice, and both above 0 when a new leader restarts every task")
        func failoverBenchmarkSeesRestarts() throws {
            let directory = try TemporaryDirectory("baton-bench-test")
            defer { directory.remove() }
            let config = try directory.write(TestConfigs.group(backend: "sqlite", masters: 3), to: "ha.yaml")
            func bench(_ extra: [String]) throws -> [String: Any] {
                let run = try BatonProcess.run(["bench", "failover", "--config", config, "--kills", "2", "--json"] + extra, timeout: .seconds(180))
                #expect(run.status == 0, "\(run.output)")
                let json = run.output.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
                return (try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]) ?? [:]
            }
            let reconciled = try bench([])
            #expect(reconciled["taskRestarts"] as? Int == 0 && reconciled["reprocessedRecords"] as? Int == 0, "\(reconciled)")
            #expect(reconciled["failedKills"] as? Int == 0)
            let restarted = try bench(["--takeover", "restart-all"])
            #expect((restarted["taskRestarts"] as? Int ?? 0) > 0 && (restarted["reprocessedRecords"] as? Int ?? 0) > 0, "\(restarted)")
            #expect(restarted["takeover"] as? String == "restart-all")
            // The benchmark wrote only inside its own temporary folder.
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["ha.yaml"])
        }

        @Test("bench recovery: one row per history size, with the history it wrote, the running job's records compacted, every kill reconciled")
        func recoveryBenchmarkRows() throws {
            let directory = try TemporaryDirectory("baton-bench-recovery-test")
            defer { directory.remove() }
            let config = try directory.write(TestConfigs.group(backend: "sqlite", masters: 3) + "jobs: { snapshotEvery: 200 }\n", to: "ha.yaml")
            let run = try BatonProcess.run(
                [
                    "bench", "recovery", "--config", config, "--ended-jobs", "0", "300", "--changes", "3000", "--changes-per-ended-job", "10", "--kills", "1",
                    "--json",
                ],
                timeout: .seconds(180))
            #expect(run.status == 0, "\(run.output)")
            let rows = run.output.split(separator: "\n").filter { $0.hasPrefix("{") }.compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            #expect(rows.map { $0["endedJobs"] as? Int } == [0, 300])
            let running = rows.map { $0["runningJobChangeRecords"] as? Int ?? 0 }
            #expect(running.allSatisfy { $0 >= 3000 }, "\(running)")
            #expect(rows.map { $0["changeRecords"] as? Int ?? 0 } == [running[0], 3000 + running[1]])
            let stored = rows.map { $0["storedRunningJobChangeRecords"] as? Int ?? -1 }
            #expect(stored.allSatisfy { $0 >= 0 && $0 < 200 + 100 }, "a snapshot every 200 records leaves a short tail: \(stored)")
            #expect(rows.allSatisfy { $0["failedKills"] as? Int == 0 && ($0["leaderRssBytes"] as? Int ?? 0) > 0 })
            #expect((rows.last?["storeBytes"] as? Int ?? 0) > (rows.first?["storeBytes"] as? Int ?? 0), "the history takes room in the store")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["ha.yaml"])
        }

        @Test("a job record that does not decode fails that one run, to the history; the leader takes over and goes on")
        func undecodableJobRecordFailsItsRun() async throws {
            let group = try GroupHarness(backend: "sqlite", masters: 1)
            defer { group.stop() }
            let store = try HAStoreSelection.open(group.configuration.store, access: .readWrite)
            try await store.unfencedWrite { try $0.put(.jobs, JobKeys.job("broken"), bytes: Array("not a job record".utf8)) }
            let master = try group.startMaster("m1")
            let ended = eventually(timeout: .seconds(30)) {
                (try? GroupStatus.readHistory(group.configuration).contains {
                    $0.id == "broken" && $0.state == "FAILED" && ($0.failure ?? "").contains("does not decode")
                }) == true
            }
            #expect(ended, "\((try? GroupStatus.readHistory(group.configuration)) ?? [])\n\(group.logs)")
            #expect(master.isRunning, "the leader goes on: \(master.log)")
            #expect(try group.status().leader?.alive == true)
        }
    }
}
