import BatonConfig
import BatonCore
import BatonOperators
import BatonElection
import BatonHAStore
import BatonHAStoreSelection
import BatonMemberLocks
import BatonProcessControl
import BatonRPC
import BatonStatus
import BatonTestKit
import BatonWire
import Foundation
import Logging
import Testing

extension ProcessTests {
    /// Jobs across real processes: masters, task executors, the data plane between them.
    @Suite("jobs with real processes")
    struct JobProcessTests {
        /// The words file of a test, and the counts computed directly from it.
        func wordsInput(_ group: GroupHarness) throws -> (path: String, counts: [String: Int]) {
            var random = SeededRandom(seed: 5)
            let vocabulary = (0..<60).map { "word\($0)" }
            var lines: [String] = []
            var counts: [String: Int] = [:]
            for _ in 0..<400 {
                let words = (0..<Int.random(in: 1...12, using: &random)).map { _ in vocabulary.randomElement(using: &random)! }
                for word in words { counts[word, default: 0] += 1 }
                lines.append(words.joined(separator: " "))
            }
            return (try group.directory.write(lines.joined(separator: "\n") + "\n", to: "words.txt"), counts)
        }

        func wordCountSpec(parallelism: Int) -> String {
            """
            name: word count
            scheduling: lazy-from-sources
            failover: region
            restart: { strategy: fixed-delay, attempts: 3, delay: 100ms }
            vertices:
              - id: tokenize
                parallelism: \(parallelism)
                operators:
                  - text-file: { path: words.txt }
                  - tokenize
              - id: sum
                parallelism: \(parallelism)
                operators:
                  - sum: { field: value }
                  - file-sink: { path: output, exactly-once: false }
            edges:
              - { from: tokenize, to: sum, pattern: hash, key: word, result: blocking }
            """
        }

        /// `key,value` lines of every finished part file under `directory`.
        func outputCounts(_ directory: String) throws -> [String: Int] {
            var counts: [String: Int] = [:]
            for file in try FileManager.default.contentsOfDirectory(atPath: directory) where file.hasPrefix("part-") && !file.hasSuffix(".inprogress") {
                for line in try String(contentsOfFile: directory + "/" + file, encoding: .utf8).split(separator: "\n") {
                    let parts = line.split(separator: ",")
                    #expect(counts[String(parts[0])] == nil, "key \(parts[0]) appears in two part files")
                    counts[String(parts[0])] = Int(parts[1])!
                }
            }
            return counts
        }

        @Test(
            "the batch word count's output equals a word count computed from its input",
            arguments: [(1, 1), (2, 1), (1, 2), (2, 2)] as [(Int, Int)])
        func batchWordCount(_ parallelism: Int, _ executors: Int) async throws {
            let group = try GroupHarness(backend: "sqlite", taskExecutors: executors, slots: 2)
            defer { group.stop() }
            let (_, counts) = try wordsInput(group)
            let spec = try group.jobSpec(wordCountSpec(parallelism: parallelism), name: "words.yaml")
            let run = try group.start(["group", "--config", group.configPath, "--job", spec], log: "per-job.log")
            #expect(run.wait(timeout: .seconds(120)), "the per-job group did not end:\n\(group.logs)")
            #expect(run.exitStatus == 0, "\(run.log)")
            #expect(run.log.contains("job words FINISHED"))
            #expect(try outputCounts(group.directory.file("output")) == counts)
        }

        @Test("a slow sink makes an unbounded source wait: task executor memory stays within 24 MiB of its start, and no record is lost")
        func slowSink() async throws {
            let group = try GroupHarness(backend: "sqlite", taskExecutors: 2, slots: 1)
            defer { group.stop() }
            try group.startGroup()
            let spec = try group.jobSpec(
                """
                id: slow
                scheduling: eager
                restart: { strategy: none }
                vertices:
                  - id: source
                    parallelism: 1
                    slotSharingGroup: sources
                    operators:
                      - sequence: { from: 0, keys: 10 }
                  - id: sink
                    parallelism: 1
                    slotSharingGroup: sinks
                    operators:
                      - throttle: { rate: 50000 }
                      - count
                      - file-sink: { path: slow-output, exactly-once: true }
                edges:
                  - { from: source, to: sink, pattern: hash, key: key }
                """, name: "slow.yaml")
            let up = try #require(await group.waitLive { $0.taskExecutors.allSatisfy { $0.registeredEpoch != nil } }, "no task executors:\n\(group.logs)")
            let baseline = Dictionary(uniqueKeysWithValues: up.taskExecutors.compactMap { executor in executor.pid.map { ($0, residentBytes($0)) } })
            let submit = try BatonProcess.run(["submit", "--config", group.configPath, spec])
            #expect(submit.status == 0, "\(submit.output)")
            // Unthrottled, the source emits millions of records a second: 24 MiB would not hold
            // one second of them. Held back by credits, it stays a few batches ahead of the sink.
            try await Task.sleep(for: .milliseconds(1500))
            let running = try #require(await group.waitLive(timeout: .seconds(5)) { $0.jobs.first?.state == "RUNNING" })
            #expect(running.jobs[0].vertices[0].subtasks[0].state == "RUNNING", "the source must still be running")
            for (pid, before) in baseline {
                let grown = residentBytes(pid) - before
                #expect(grown < 24 << 20, "task executor \(pid) grew by \(grown >> 20) MiB")
            }
            // Stop with drain: every record the source emitted reaches the sink, once.
            let stop = try BatonProcess.run(["stop", "--config", group.configPath, "slow", "--wait"], timeout: .seconds(60))
            #expect(stop.status == 0, "\(stop.output)\n\(group.logs)")
            let audit = try BatonProcess.run(["audit", "--config", group.configPath, "--job", spec, "--json"])
            #expect(audit.status == 0, "\(audit.output)")
            let json = audit.output.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            let output = try #require((object["outputs"] as? [[String: Any]])?.first, "\(audit.output)")
            #expect((output["records"] as? Int ?? 0) >= 50_000 && output["records"] as? Int == output["expectedRecords"] as? Int, "\(output)")
        }

        @Test("a three-stage batch job whose blocking results all spill, each stage's released once the next has read it, counts right")
        func threeStagesSpilledAndReleased() async throws {
            let group = try GroupHarness(backend: "sqlite", taskExecutors: 2, slots: 2)
            defer { group.stop() }
            let (_, counts) = try wordsInput(group)
            let spilling = try group.directory.write(
                try String(contentsOfFile: group.configPath, encoding: .utf8) + "\nblockingResults: { memory: 0 }\n", to: "spilling.yaml")
            let spec = try group.jobSpec(
                """
                id: stages
                scheduling: lazy-from-sources
                failover: region
                vertices:
                  - id: tokenize
                    parallelism: 2
                    operators:
                      - text-file: { path: words.txt }
                      - tokenize
                  - id: sum
                    parallelism: 2
                    operators:
                      - sum: { field: value }
                  - id: write
                    parallelism: 2
                    operators:
                      - map: { function: identity }
                      - file-sink: { path: output, exactly-once: false }
                edges:
                  - { from: tokenize, to: sum, pattern: hash, key: word, result: blocking }
                  - { from: sum, to: write, pattern: forward, result: blocking }
                """, name: "stages.yaml")
            let run = try group.start(["group", "--config", spilling, "--job", spec], log: "stages.log")
            #expect(run.wait(timeout: .seconds(120)), "the per-job group did not end:\n\(group.logs)")
            #expect(run.exitStatus == 0 && run.log.contains("job stages FINISHED"), "\(run.log)")
            #expect(try outputCounts(group.directory.file("output")) == counts)
        }

        @Test("a per-job group runs the same job twice in a row on one store, FINISHED both times (a job id runs again once it ended)")
        func perJobTwice() async throws {
            let group = try GroupHarness(backend: "sqlite", taskExecutors: 1, slots: 2)
            defer { group.stop() }
            let (_, counts) = try wordsInput(group)
            let spec = try group.jobSpec(wordCountSpec(parallelism: 1), name: "words.yaml")
            // The second round keeps no blocking result in memory: every batch goes through a spill file.
            let spilling = try group.directory.write(
                try String(contentsOfFile: group.configPath, encoding: .utf8) + "\nblockingResults: { memory: 0, dir: spill-round-2 }\n", to: "spilling.yaml")
            for round in 1...2 {
                let config = round == 1 ? group.configPath : spilling
                let run = try group.start(["group", "--config", config, "--job", spec], log: "per-job-\(round).log")
                #expect(run.wait(timeout: .seconds(120)), "round \(round): the per-job group did not end:\n\(group.logs)")
                #expect(run.exitStatus == 0, "round \(round): \(run.log)")
                #expect(run.log.contains("job words FINISHED"), "round \(round)")
                #expect(try outputCounts(group.directory.file("output")) == counts, "round \(round)")
            }
            #expect(FileManager.default.fileExists(atPath: group.directory.file("spill-round-2/te1")), "the task executor spilled where its config said")
            // The history keeps both runs; `baton status --all` lists them, the latest first.
            let status = try BatonProcess.run(["status", "--config", group.configPath, "--all", "--json"])
            #expect(status.status == 0, "\(status.output)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any])
            let history = try #require(json["history"] as? [[String: Any]], "\(status.output)")
            #expect(history.map { $0["run"] as? Int } == [2, 1])
            #expect(history.allSatisfy { $0["id"] as? String == "words" && $0["state"] as? String == "FINISHED" })
        }

        @Test("a new run of a job forgets the source ranges an earlier run with its id left, so its output audit judges this run")
        func newRunForgetsOldSourceRanges() async throws {
            let group = try GroupHarness(backend: "sqlite", masters: 1, taskExecutors: 1, slots: 2)
            defer { group.stop() }
            let spec = try group.jobSpec(
                CheckpointProcessTests().keyedCountSpec(id: "again", records: 3_000, rate: 100_000, output: group.directory.file("again-out")),
                name: "again.yaml")
            // What an earlier run (since wiped from the store) left: a later attempt with another end.
            var state = BinaryWriter(capacity: 9)
            state.write(signed: 99_999)
            try SourceRanges.write(
                SourceRange(vertex: "source", subtask: 0, attempt: 7, start: state.bytes, end: state.bytes, ending: .inputEnded),
                to: SourceRanges.directory(checkpoints: group.configuration.checkpoints.directory, job: "again"))
            try group.startGroup()
            _ = try #require(await group.waitLive { $0.taskExecutors.allSatisfy { $0.registeredEpoch != nil } }, "\(group.logs)")
            let submit = try BatonProcess.run(["submit", "--config", group.configPath, spec, "--wait"], timeout: .seconds(60))
            #expect(submit.status == 0, "\(submit.output)")
            let audit = try BatonProcess.run(["audit", "--config", group.configPath, "--job", spec])
            #expect(audit.status == 0, "\(audit.output)")
        }

        @Test("restart-individual into the exactly-once sink is refused: submit exits 1, a per-job group exits 2, both naming the vertex and the fix")
        func restartIndividualRefused() throws {
            let directory = try TemporaryDirectory("baton-refusal-test")
            defer { directory.remove() }
            let config = try directory.write(TestConfigs.group(backend: "sqlite", masters: 1, taskExecutors: 1), to: "ha.yaml")
            let spec = try directory.write(
                CheckpointProcessTests().keyedCountSpec(id: "ri", records: 100, rate: 100, output: "out").replacingOccurrences(
                    of: "failover: region", with: "failover: restart-individual"), to: "ri.yaml")
            let submit = try BatonProcess.run(["submit", "--config", config, spec])
            #expect(submit.status == 1 && submit.output.contains("vertex 'count'") && submit.output.contains("failover: region"), "\(submit.output)")
            // A failover strategy that does not exist is a spec error, exit 2, not a refusal.
            let bogus = try directory.write(try String(contentsOfFile: spec, encoding: .utf8).replacingOccurrences(
                of: "failover: restart-individual", with: "failover: bogus"), to: "bogus.yaml")
            let badSpec = try BatonProcess.run(["submit", "--config", config, bogus])
            #expect(badSpec.status == 2, "\(badSpec.output)")
            try FileManager.default.removeItem(atPath: bogus)
            let perJob = try BatonProcess.run(["group", "--config", config, "--job", spec])
            #expect(perJob.status == 2 && perJob.output.contains("restart-individual"), "\(perJob.output)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == ["ha.yaml", "ri.yaml"])
        }

        @Test("a task executor killed mid-run: only the tasks its failover strategy names restart, on free slots")
        func taskExecutorKilled() async throws {
            let group = try GroupHarness(backend: "lmdb", taskExecutors: 3, slots: 1)
            defer { group.stop() }
            try group.startGroup()
            // Two independent lanes (forward edges): two pipelined regions, one slot each.
            let spec = try group.jobSpec(
                """
                name: lanes
                scheduling: eager
                failover: region
                restart: { strategy: fixed-delay, attempts: 5, delay: 100ms }
                vertices:
                  - id: source
                    parallelism: 2
                    operators:
                      - sequence: { keys: 4, rate: 2000 }
                  - id: sink
                    parallelism: 2
                    operators:
                      - count
                      - discard
                edges:
                  - { from: source, to: sink, pattern: forward }
                """, name: "lanes.yaml")
            _ = try #require(await group.waitLive { $0.taskExecutors.filter { $0.registeredEpoch != nil }.count == 3 }, "\(group.logs)")
            let submit = try BatonProcess.run(["submit", "--config", group.configPath, spec])
            #expect(submit.status == 0, "\(submit.output)")
            let running = try #require(await group.waitLive { status in
                status.jobs.first?.vertices.flatMap(\.subtasks).allSatisfy { $0.state == "RUNNING" } == true
            }, "\(group.logs)")
            let lanes = running.jobs[0].vertices.flatMap(\.subtasks)
            let victim = try #require(lanes.first { $0.index == 1 }?.taskExecutor)
            let survivor = try #require(lanes.first { $0.index == 0 }?.taskExecutor)
            #expect(victim != survivor)
            let pid = try #require(running.taskExecutors.first { $0.id == victim }?.pid)
            kill(pid, SIGKILL)
            let recovered = try #require(await group.waitLive(timeout: .seconds(30)) { status in
                guard let job = status.jobs.first else { return false }
                let subtasks = job.vertices.flatMap(\.subtasks)
                return subtasks.allSatisfy { $0.state == "RUNNING" } && subtasks.filter { $0.index == 1 }.allSatisfy { $0.attempt == 1 }
            }, "\(group.logs)")
            let job = recovered.jobs[0]
            for vertex in job.vertices {
                #expect(vertex.subtasks[0].attempt == 0, "lane 0 must not restart: \(vertex)")
                #expect(vertex.subtasks[0].taskExecutor == survivor)
                #expect(vertex.subtasks[1].attempt == 1)
            }
            #expect(job.restarts == 2)
            #expect(job.state == "RUNNING")
        }

        @Test("a task executor refuses commands of an epoch other than its leader's")
        func staleEpochRefused() async throws {
            let group = try GroupHarness(backend: "sqlite", masters: 1, taskExecutors: 1)
            defer { group.stop() }
            // This test plays the leader: it wins epoch 1 in the store, then epoch 2, naming its
            // own RPC server, and talks to a real task executor process.
            let store = try HAStoreSelection.open(group.configuration.store, access: .readWrite)
            let recorder = LeaderRecorder()
            let rpc = RPCConfiguration(secret: group.configuration.rpc.secret, heartbeatInterval: .milliseconds(200), heartbeatTimeout: .seconds(3))
            let server = try await RPCServer.bind(host: "127.0.0.1", port: 0, identity: RPCPeer(id: "fake", role: .master), configuration: rpc, logger: Logger(label: "fake"))
            let identity = LeaderIdentity(member: "m1", incarnation: Incarnation(rawValue: 9), address: "127.0.0.1:\(server.localPort)", pid: getpid())
            for expected in [Epoch(1), Epoch(2)] {
                let record = try await store.leadership()
                let outcome = try await store.campaign(
                    as: identity, expecting: record?.holder == nil ? .vacant(epoch: record?.epoch ?? .none) : .leaseLapsed(epoch: record!.epoch, renewals: record!.renewals),
                    leaseMillis: 60_000, now: WallTime(millisecondsSince1970: 0))
                guard case .won(let victory) = outcome, victory.record.epoch == expected else { Issue.record("could not take epoch \(expected)"); return }
            }
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask {
                    try await server.run { connection in await recorder.serve(connection, epoch: 2) }
                }
                try group.start(["taskexecutor", "--config", group.configPath, "--id", "te1"], log: "te1.log")
                let replies = try #require(await recorder.waitForReplies(timeout: .seconds(30)), "the task executor never registered:\n\(group.logs)")
                #expect(replies.stale.contains("stale epoch 1"), "\(replies)")
                #expect(replies.current == "ack", "\(replies)")
                server.close()
                tasks.cancelAll()
            }
            #expect(group.logs.contains("refused a command"))
        }

        @Test("a peer without the secret is refused and garbage frames do not take a process down")
        func hostilePeers() async throws {
            let group = try GroupHarness(backend: "sqlite", masters: 1, taskExecutors: 1)
            defer { group.stop() }
            try group.startGroup()
            let ready = try #require(await group.waitLive { $0.taskExecutors.first?.registeredEpoch != nil }, "\(group.logs)")
            let master = group.configuration.masters[0].rpc
            let wrong = RPCConfiguration(secret: Array("not-the-secret".utf8))
            await #expect(throws: RPCError.self) {
                try await RPCClient.connect(host: master.host, port: master.port, identity: RPCPeer(id: "intruder", role: .client), configuration: wrong, logger: Logger(label: "t")) { _ in 0 }
            }
            let data = group.configuration.taskExecutors[0].data
            for endpoint in [master, data] {
                for garbage: [UInt8] in [[0, 0, 0, 9] + Array("not proto".utf8), [0xFF, 0xFF, 0xFF, 0xFF, 0], Array("GET / HTTP/1.1\r\n\r\n".utf8)] {
                    try sendRaw(garbage, to: endpoint)
                }
            }
            #expect(eventually(timeout: .seconds(5)) { group.logs.contains("does not know the cluster secret") })
            // Everyone is still there and serving.
            let after = try #require(await group.waitLive { $0.taskExecutors.first?.registeredEpoch != nil && $0.leader?.alive == true })
            #expect(after.masters[0].pid == ready.masters[0].pid)
            #expect(after.taskExecutors[0].pid == ready.taskExecutors[0].pid)
        }

        func sendRaw(_ bytes: [UInt8], to endpoint: Endpoint) throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return }
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(endpoint.port).bigEndian)
            address.sin_addr.s_addr = inet_addr(endpoint.host)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { return }
            _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            usleep(100_000)
        }

        func residentBytes(_ pid: Int32) -> Int64 {
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
            else { return 0 }
            return (Int64(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
        }
    }
}

/// A fake leader: accepts a task executor's registration at `epoch`, then sends it a command at
/// a stale epoch and one at the current epoch, and records the replies.
final class LeaderRecorder: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = NSLock()
    private var replies: (stale: String, current: String)?

    func serve(_ connection: RPCConnection, epoch: UInt64) async {
        for await message in connection.messages {
            guard case .registerTaskExecutor = message.body else { continue }
            var registered = WireEnvelope()
            registered.epoch = epoch
            registered.registered = .with { $0.leaderID = "m1" }
            try? await connection.reply(to: message, with: registered)
            func command(_ epoch: UInt64) async -> String {
                var release = WireEnvelope()
                release.epoch = epoch
                release.releasePartitions = .with { $0.job = "nothing" }
                guard let reply = try? await connection.request(release) else { return "no reply" }
                switch reply.body {
                case .failure(let failure): return failure.message
                case .ack: return "ack"
                default: return "other"
                }
            }
            let stale = await command(epoch - 1)
            let current = await command(epoch)
            lock.withLock { replies = (stale, current) }
        }
    }

    func waitForReplies(timeout: Duration) async -> (stale: String, current: String)? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let replies = lock.withLock({ replies }) { return replies }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }
}

extension ProcessTests.JobProcessTests {
    @Test("a task that throws goes to failover; when restarts run out the job fails and submit --wait exits 1")
    func failingTask() async throws {
        let group = try GroupHarness(backend: "sqlite", masters: 1, taskExecutors: 1)
        defer { group.stop() }
        try group.startGroup()
        let spec = try group.jobSpec(
            """
            name: broken
            scheduling: eager
            restart: { strategy: fixed-delay, attempts: 2, delay: 50ms }
            vertices:
              - id: source
                parallelism: 1
                operators:
                  - text-file: { path: does-not-exist.txt }
                  - discard
            """, name: "broken.yaml")
        _ = try #require(await group.waitLive { $0.taskExecutors.first?.registeredEpoch != nil }, "\(group.logs)")
        let submit = try BatonProcess.run(["submit", "--config", group.configPath, spec, "--wait"], timeout: .seconds(60))
        #expect(submit.status == 1, "\(submit.output)")
        #expect(submit.output.contains("job broken FAILED"), "\(submit.output)")
        #expect(submit.output.contains("cannot read"), "\(submit.output)")
        let status = try #require(await group.waitLive { $0.jobs.first?.state == "FAILED" })
        #expect(status.jobs[0].restarts == 2)
        #expect(status.jobs[0].vertices[0].subtasks[0].attempt == 2)
    }

    @Test("cancel ends a running job CANCELED and frees its slots")
    func cancelJob() async throws {
        let group = try GroupHarness(backend: "lmdb", masters: 1, taskExecutors: 1, slots: 2)
        defer { group.stop() }
        try group.startGroup()
        let spec = try group.jobSpec(
            """
            name: endless
            vertices:
              - id: source
                parallelism: 2
                operators:
                  - sequence: { keys: 4, rate: 1000 }
                  - discard
            """, name: "endless.yaml")
        _ = try #require(await group.waitLive { $0.taskExecutors.first?.registeredEpoch != nil }, "\(group.logs)")
        #expect(try BatonProcess.run(["submit", "--config", group.configPath, spec]).status == 0)
        _ = try #require(await group.waitLive { $0.jobs.first?.vertices.first?.subtasks.allSatisfy { $0.state == "RUNNING" } == true })
        #expect(try await group.liveStatus().taskExecutors[0].freeSlots == 0)
        let cancel = try BatonProcess.run(["cancel", "--config", group.configPath, "endless"])
        #expect(cancel.status == 0, "\(cancel.output)")
        let canceled = try #require(await group.waitLive { $0.jobs.first?.state == "CANCELED" }, "\(group.logs)")
        #expect(canceled.jobs[0].vertices[0].subtasks.allSatisfy { $0.state == "CANCELED" })
        #expect(canceled.taskExecutors[0].freeSlots == 2)
        let unknown = try BatonProcess.run(["cancel", "--config", group.configPath, "nothing"])
        #expect(unknown.status == 1 && unknown.output.contains("no job 'nothing'"), "\(unknown.output)")
    }
}
