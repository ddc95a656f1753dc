import BatonConfig
import BatonChaos
import BatonCore
import BatonMemberLocks
import BatonProcessControl
import BatonStatus
import BatonTestKit
import BatonWire
import Foundation
import Synchronization
import Testing

extension ProcessTests {
    /// `baton chaos` and `baton audit` against real groups.
    @Suite("chaos and audit with real processes")
    struct ChaosProcessTests {
        /// The repository's shipped chaos job.
        static let shippedJob = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("examples/jobs/chaos-keyed-count.yaml").path

        struct Run {
            var status: Int32
            var output: String
            var object: [String: Any]
            var summary: [String: Any] { object["summary"] as? [String: Any] ?? [:] }
            var violations: [[String: Any]] { object["violations"] as? [[String: Any]] ?? [] }
            var kinds: Set<String> { Set(violations.compactMap { $0["kind"] as? String }) }
            var report: String { object["reportDirectory"] as? String ?? "" }
            var faultKinds: Set<String> { Set((object["faults"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String }) }
        }

        func chaos(_ config: String, _ arguments: [String], timeout: Duration = .seconds(240)) throws -> Run {
            let run = try BatonProcess.run(["chaos", "--config", config, "--job", Self.shippedJob, "--json"] + arguments, timeout: timeout)
            let json = run.output.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
            let object = (try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]) ?? [:]
            return Run(status: run.status, output: run.output, object: object)
        }

        @Test(
            "chaos across three hosts of its own: a leader kill, a host killed, a host stopped and a host cut off; no violation, every record once, nothing left behind",
            .enabled(if: NetnsHosts.available, "needs root and iproute2 (ip netns)"))
        func acrossHosts() throws {
            let directory = try TemporaryDirectory("baton-chaos-hosts-test")
            defer { directory.remove() }
            // Where the members of this config run is the run's own business: it makes three hosts
            // and an etcd of its own, and places the members on them as the config says.
            let config = try directory.write(
                MultiHostConfig.text(
                    hosts: ["alpha", "beta", "gamma"].enumerated().map { .init(name: $0.element, address: "192.0.2.\($0.offset + 1)") },
                    etcdEndpoints: ["http://192.0.2.1:2379"], directory: directory.path, secretFile: "cluster.secret", tlsDirectory: "tls", lease: "2s", renew: "200ms",
                    heartbeatTimeout: "2s", slots: 2, restartDelay: "100ms"),
                to: "hosts.yaml")
            let setsBefore = Set(NetnsHosts.existingSets())
            let run = try chaos(
                config, ["--kills", "4", "--faults", "kill,host-kill,host-stop,partition", "--interval", "300ms-700ms", "--seed", "7"],
                timeout: .seconds(400))
            #expect(run.status == 0, "\(run.output)")
            #expect(run.faultKinds == ["kill", "host-kill", "host-stop", "partition"], "\(run.output)")
            #expect(run.violations.isEmpty, "\(run.output)")
            #expect((run.summary["recordsCommitted"] as? Int ?? 0) > 0, "\(run.output)")
            #expect(run.summary["duplicates"] as? Int == 0 && run.summary["gaps"] as? Int == 0 && run.summary["unexpected"] as? Int == 0)
            // The kill of a leader process is a master fault: it restarted nothing.
            #expect(run.summary["taskRestartsFromMasterFaults"] as? Int == 0)
            #expect(Set(NetnsHosts.existingSets()) == setsBefore, "the run left its hosts behind")
        }

        @Test("host faults need a config that places members on hosts; store-stall needs a store file")
        func hostFaultsNeedHosts() throws {
            let directory = try TemporaryDirectory("baton-chaos-test")
            defer { directory.remove() }
            let config = try directory.write(TestConfigs.group(backend: "sqlite", masters: 3, taskExecutors: 2, slots: 2), to: "ha.yaml")
            let refused = try BatonProcess.run(["chaos", "--config", config, "--job", Self.shippedJob, "--faults", "kill,partition"])
            #expect(refused.status == 2 && refused.output.contains("partition needs a config that places members on hosts"), "\(refused.output)")
            let etcd = try directory.write(
                TestConfigs.group(backend: "etcd", masters: 3, taskExecutors: 2, slots: 2, etcdEndpoints: ["http://127.0.0.1:2379"]), to: "etcd.yaml")
            let stall = try BatonProcess.run(["chaos", "--config", etcd, "--job", Self.shippedJob, "--faults", "kill,store-stall"])
            #expect(stall.status == 2 && stall.output.contains("store-stall holds a store file's write lock"), "\(stall.output)")
        }

        @Test("two chaos runs in a row on one config both pass, each in its own folder, every listed kind of fault injected", arguments: ["sqlite", "lmdb"])
        func twoRunsInARow(_ backend: String) throws {
            let directory = try TemporaryDirectory("baton-chaos-test")
            defer { directory.remove() }
            let config = try directory.write(TestConfigs.group(backend: backend, masters: 3, taskExecutors: 2, slots: 2), to: "ha.yaml")
            let first = try chaos(config, ["--kills", "5", "--interval", "300ms-700ms", "--seed", "11"])
            #expect(first.status == 0, "\(first.output)")
            #expect(first.faultKinds == ["kill", "stop", "standby-kill", "te-kill", "store-stall"], "\(first.output)")
            let second = try chaos(config, ["--kills", "3", "--faults", "kill,stop", "--interval", "300ms-700ms", "--seed", "11"])
            #expect(second.status == 0, "\(second.output)")
            for run in [first, second] {
                #expect(run.violations.isEmpty, "\(run.output)")
                #expect((run.summary["recordsCommitted"] as? Int ?? 0) > 0, "\(run.output)")
                #expect(run.summary["taskRestartsFromMasterFaults"] as? Int == 0)
                #expect(run.summary["duplicates"] as? Int == 0 && run.summary["gaps"] as? Int == 0 && run.summary["unexpected"] as? Int == 0)
                for file in ["report.json", "seed", "group.log", "chaos.yaml"] {
                    #expect(FileManager.default.fileExists(atPath: "\(run.report)/\(file)"), "\(file)")
                }
            }
            #expect(first.report != second.report && first.report.hasPrefix(directory.path) && second.report.hasPrefix(directory.path))
            // The audit of the run's store and output after the fact agrees, and catches a lost commit.
            let audit = ["audit", "--config", "\(first.report)/chaos.yaml", "--job", Self.shippedJob, "--sink", "\(first.report)/output/count", "--json"]
            let clean = try BatonProcess.run(audit)
            #expect(clean.status == 0, "\(clean.output)")
            #expect(clean.output.contains("\"failovers\"") && clean.output.contains("\"outputs\""))
            let committed = try FileManager.default.contentsOfDirectory(atPath: "\(first.report)/output/count").filter { $0.hasPrefix("part-") }.sorted()
            try FileManager.default.removeItem(atPath: "\(first.report)/output/count/\(try #require(committed.first))")
            let lost = try BatonProcess.run(audit)
            #expect(lost.status == 1 && lost.output.contains("missing-output"), "\(lost.output)")
        }

        @Test("a leader that restarts every task on failover is caught by chaos, naming the tasks, and by the audit of its store")
        func restartAllIsCaught() throws {
            let directory = try TemporaryDirectory("baton-chaos-test")
            defer { directory.remove() }
            let config = try directory.write(TestConfigs.group(backend: "sqlite", masters: 3, taskExecutors: 2, slots: 2), to: "ha.yaml")
            let run = try chaos(config, ["--kills", "2", "--faults", "kill", "--interval", "500ms", "--seed", "5", "--takeover", "restart-all"])
            #expect(run.status == 1, "\(run.output)")
            #expect(run.kinds.contains("restart-by-master-failover"), "\(run.output)")
            #expect(run.output.contains("source#0 attempt 0->1"), "\(run.output)")
            // The output is still exactly once: a full restart from the checkpoint loses nothing.
            #expect(!run.kinds.contains("missing-output") && !run.kinds.contains("duplicate-output"), "\(run.output)")
            let audit = try BatonProcess.run(["audit", "--config", "\(run.report)/chaos.yaml"])
            #expect(audit.status == 1, "\(audit.output)")
            #expect(audit.output.contains("restart-by-master-failover"), "\(audit.output)")
        }

        @Test("a group that cannot elect a new leader fails chaos on liveness: no leader, the job not running, faults not injected")
        func livenessViolations() throws {
            let directory = try TemporaryDirectory("baton-chaos-test")
            defer { directory.remove() }
            // One master, restarted only after 10 minutes: once it is killed nobody leads.
            let config = try directory.write(
                TestConfigs.group(backend: "sqlite", masters: 1, lease: "500ms", renew: "100ms", poll: "50ms", restartDelay: "600s", taskExecutors: 2, slots: 2),
                to: "ha.yaml")
            // A seed whose plan hits the (missing) standby first, then kills the only master.
            let seed = try #require((UInt64(0)..<100).first { seed in
                ChaosPlan(seed: seed, kinds: [.standbyKill, .kill], count: 2, interval: .milliseconds(300)...Duration.milliseconds(300)).faults.map(\.kind)
                    == [.standbyKill, .kill]
            })
            let run = try chaos(
                config, ["--kills", "2", "--faults", "standby-kill,kill", "--interval", "300ms", "--seed", "\(seed)"], timeout: .seconds(300))
            #expect(run.status == 1, "\(run.output)")
            for kind in ["fault-not-injected", "no-leader", "job-not-running", "restart-count-unknown", "job-not-finished", "output-unchecked"] {
                #expect(run.kinds.contains(kind), "\(kind): \(run.output)")
            }
        }

        @Test("a task executor frozen through a leader kill keeps reconciliation from finishing in its window: reconciliation-timeout")
        func reconciliationTimeout() async throws {
            let directory = try TemporaryDirectory("baton-chaos-test")
            defer { directory.remove() }
            // Heartbeats time out after 10 s: the frozen task executor is not declared lost before the kill.
            let config = try directory.write(
                TestConfigs.group(backend: "sqlite", masters: 3, taskExecutors: 2, slots: 2, heartbeatTimeout: "10s"), to: "ha.yaml")
            let report = directory.file("report")
            let chaos = try BatonProcess(
                executable: BatonProcess.executable("baton"),
                arguments: ["chaos", "--config", config, "--job", Self.shippedJob, "--kills", "1", "--faults", "kill", "--interval", "3s", "--seed", "2",
                            "--report", report, "--json"],
                logPath: directory.file("chaos.log"))
            defer { chaos.stop(timeout: .seconds(5)) }
            // Once the job runs, watch the leader's member lock as a standby does: the instant the
            // chaos kill ends the leader, freeze a task executor that holds tasks, so that it cannot
            // report to the new leader. Thaw it a few seconds later.
            var watcher: MemberLockWatcher?
            defer { watcher?.stop() }
            let frozen = Mutex<Int32?>(nil)
            let deadline = ContinuousClock.now + .seconds(60)
            while watcher == nil, ContinuousClock.now < deadline, chaos.isRunning {
                if let configuration = try? HAConfiguration.load(path: "\(report)/chaos.yaml"), let status = try? await GroupStatus.readLive(configuration),
                    let leader = status.leader, let job = status.jobs.first, (job.lastCheckpoint.id ?? 0) >= 1,
                    job.vertices.flatMap(\.subtasks).allSatisfy({ $0.state == "RUNNING" }),
                    let host = job.vertices.first?.subtasks.first?.taskExecutor, let pid = status.taskExecutors.first(where: { $0.id == host })?.pid
                {
                    let watching = MemberLockWatcher(directory: MemberLockDirectory(storePath: configuration.store.path)) { _ in
                        kill(pid, SIGSTOP)
                        frozen.withLock { $0 = pid }
                    }
                    watching.watch(MemberID(rawValue: leader.id))
                    watcher = watching
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            _ = try #require(watcher, "the job never ran: \(chaos.log)")
            while frozen.withLock({ $0 }) == nil, ContinuousClock.now < deadline, chaos.isRunning { try await Task.sleep(for: .milliseconds(20)) }
            let pid = try #require(frozen.withLock { $0 }, "the leader was never killed: \(chaos.log)")
            watcher?.stop()
            try await Task.sleep(for: .seconds(3))
            kill(pid, SIGCONT)
            #expect(chaos.wait(timeout: .seconds(240)), "chaos did not end")
            #expect(chaos.exitStatus == 1, "\(chaos.log)")
            #expect(chaos.log.contains("reconciliation-timeout"), "\(chaos.log)")
        }

        @Test("a task executor killed under a job that may not restart: no task failover, and the job does not run again")
        func noTaskFailover() throws {
            let directory = try TemporaryDirectory("baton-chaos-test")
            defer { directory.remove() }
            let config = try directory.write(
                TestConfigs.group(backend: "sqlite", masters: 2, lease: "500ms", renew: "100ms", poll: "50ms", taskExecutors: 2, slots: 2), to: "ha.yaml")
            let job = try directory.write(
                try String(contentsOfFile: Self.shippedJob, encoding: .utf8).replacingOccurrences(
                    of: "restart: { strategy: fixed-delay, attempts: 1000, delay: 200ms }", with: "restart: { strategy: none }"),
                to: "no-restart.yaml")
            let run = try BatonProcess.run(
                ["chaos", "--config", config, "--job", job, "--kills", "1", "--faults", "te-kill", "--interval", "300ms", "--seed", "3", "--json"],
                timeout: .seconds(240))
            #expect(run.status == 1, "\(run.output)")
            #expect(run.output.contains("no-task-failover") && run.output.contains("job-not-running"), "\(run.output)")
        }

        @Test("chaos refuses, with exit 2, a job whose output it cannot predict, and a report folder that is not empty")
        func refusals() throws {
            let directory = try TemporaryDirectory("baton-chaos-test")
            defer { directory.remove() }
            let config = try directory.write(TestConfigs.group(backend: "sqlite", masters: 1, taskExecutors: 1), to: "ha.yaml")
            let words = try directory.write(
                """
                vertices:
                  - id: words
                    parallelism: 1
                    operators: [ { sequence: { keys: 4 } }, tokenize, { file-sink: { path: out } } ]
                """, to: "words.yaml")
            let refused = try BatonProcess.run(["chaos", "--config", config, "--job", words])
            #expect(refused.status == 2 && refused.output.contains("'tokenize'"), "\(refused.output)")
            try FileManager.default.createDirectory(atPath: directory.file("used"), withIntermediateDirectories: true)
            _ = try directory.write("left over", to: "used/file")
            let used = try BatonProcess.run(["chaos", "--config", config, "--job", Self.shippedJob, "--report", directory.file("used")])
            #expect(used.status == 2 && used.output.contains("not empty"), "\(used.output)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == ["ha.yaml", "used", "words.yaml"])
        }

        @Test("the audit of a path with no store exits 2 and creates nothing")
        func auditWithoutStore() throws {
            let directory = try TemporaryDirectory("baton-chaos-test")
            defer { directory.remove() }
            let config = try directory.write(TestConfigs.group(backend: "sqlite", masters: 1), to: "ha.yaml")
            let audit = try BatonProcess.run(["audit", "--config", config])
            #expect(audit.status == 2 && audit.output.contains("no store"), "\(audit.output)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["ha.yaml"])
        }
    }
}
