import BatonCore
import BatonElection
import BatonExecutionGraph
import BatonHAStore
import BatonHAStoreSQLite
import BatonJobGraph
import BatonJobManager
import BatonJobMaster
import BatonProcessControl
import BatonResourceManager
import BatonStoreRecords
import Foundation
import Testing

@Suite("a job the store does not rebuild")
struct UnreadableJobTests {
    static let now = WallTime(millisecondsSince1970: 1_795_622_731_042)

    /// A fresh SQLite store in a folder of its own, and the epoch of the term m1 won in it.
    static func leadingStore(_ name: String) async throws -> (TemporaryDirectory, HAStore, Epoch) {
        let directory = try TemporaryDirectory(name)
        let store = try HAStore.open(
            path: directory.file("ha.sqlite"), kind: SQLiteHAStoreBackend.kind, access: .readWrite, options: StoreOptions(), now: now)
        let identity = LeaderIdentity(member: "m1", incarnation: Incarnation(rawValue: 1), address: "-", pid: 1)
        guard case .won(let victory) = try await store.campaign(as: identity, expecting: .vacant(epoch: .none), leaseMillis: 1000, now: now)
        else { throw HAStoreError(.io, path: store.path, "expected to win") }
        return (directory, store, victory.record.epoch)
    }

    static func graph(_ id: JobID) -> JobGraph {
        var builder = JobGraphBuilder(id: id, configuration: JobConfiguration(scheduling: .eager, failover: .region))
        builder.addVertex("a", operators: [.sequence()], parallelism: 1)
        return try! builder.build()
    }

    @Test("a change record that does not apply fails that one job with the reason; the other jobs and the leader go on")
    func oneJobFails() async throws {
        let (directory, store, epoch) = try await Self.leadingStore("baton-unreadable-job")
        defer { directory.remove() }
        let vertex = ExecutionVertexID(jobVertex: 0, subtask: 0)
        let writes: [JobManager.StoreWrite] = [
            .job(JobRecord(graph: Self.graph("ok"), state: .running, submittedAt: Self.now, restarts: 0, failure: nil)),
            .change("ok", sequence: 0, .state(ExecutionAttemptID(vertex: vertex, attempt: 0), .scheduled, nil)),
            .job(JobRecord(graph: Self.graph("broken"), state: .running, submittedAt: Self.now, restarts: 0, failure: nil)),
            .change("broken", sequence: 0, .state(ExecutionAttemptID(vertex: vertex, attempt: 0), .scheduled, nil)),
            // Not the next attempt of that vertex: it does not apply.
            .change("broken", sequence: 1, .reset(vertex, 5)),
        ]
        try await store.write(fencedBy: epoch) { writer in for write in writes { try write.apply(to: writer, epoch: epoch) } }
        let loaded = try await store.read { try JobManager.RecoveredJob.loadAll($0) }
        let broken = try #require(loaded.first { $0.record.graph.id == "broken" })
        #expect(broken.unreadable?.contains("change 1 of job broken does not apply") == true, "\(broken.unreadable ?? "")")
        #expect(broken.nextSequence == 2, "new change records go after every one it has")
        #expect(loaded.first { $0.record.graph.id == "ok" }?.unreadable == nil)

        var manager = JobManager(
            epoch: epoch, leader: "m1",
            settings: .init(
                mode: .session, takeover: .reconcile, reconciliationWindow: .seconds(3), checkpointInterval: .seconds(1),
                checkpointTimeout: .seconds(10), retainedCheckpoints: 2, checkpointDirectory: "/cp", savepointDirectory: "/sp"))
        let batches = manager.handle(.takeOver(JobManager.Takeover(jobs: loaded)), now: MonotonicInstant(nanoseconds: 1), wall: Self.now)
        #expect(manager.history["broken"]?.state == .failed)
        #expect(manager.history["broken"]?.failure?.contains("do not rebuild it") == true)
        #expect(manager.dispatcher.job("ok")?.state == .running)
        let failedRun = batches.flatMap(\.writes).contains { if case .runEnded(let run) = $0 { run.id == "broken" && run.state == .failed } else { false } }
        #expect(failedRun, "the run goes to the history as FAILED, so no later leader tries again")
        // A task of the failed job that still runs is cancelled when its task executor reports it.
        let report = TaskReport(attempt: TaskAttempt(job: "broken", attempt: ExecutionAttemptID(vertex: vertex, attempt: 0)), state: .running, allocation: 1)
        let registered = manager.handle(
            .registered(.init(resources: TaskExecutorResources(id: "te1", total: ResourceProfile(cpuMillis: 4000, taskHeapBytes: 4 << 30), defaultSlots: 4),
                              dataAddress: "te1:1", tasks: [report])),
            now: MonotonicInstant(nanoseconds: 2), wall: Self.now)
        #expect(registered.flatMap(\.effects).contains(.send(.cancel("broken", ExecutionAttemptID(vertex: vertex, attempt: 0)), to: "te1")))
    }
}

extension UnreadableJobTests {
    @Test("a job record that does not decode at all fails that one run (to the history as FAILED, its record gone); the other jobs and the leader go on")
    func undecodableRecordFailsItsRun() async throws {
        let (directory, store, epoch) = try await Self.leadingStore("baton-undecodable-job")
        defer { directory.remove() }
        try await store.write(fencedBy: epoch) { writer in
            try JobManager.StoreWrite.job(JobRecord(graph: Self.graph("ok"), state: .running, submittedAt: Self.now, restarts: 0, failure: nil))
                .apply(to: writer, epoch: epoch)
            try writer.put(.jobs, JobKeys.job("garbled"), bytes: Array("{\"graph\": 7}".utf8))
        }
        let (loaded, undecodable) = try await store.read { try JobManager.RecoveredJob.load($0) }
        #expect(loaded.map(\.record.graph.id) == ["ok"])
        #expect(undecodable["garbled"]?.contains("garbled") == true, "the reason names the record: \(undecodable)")
        var takeover = JobManager.Takeover(jobs: loaded)
        takeover.undecodableJobs = undecodable
        var manager = JobManager(
            epoch: epoch, leader: "m1",
            settings: .init(
                mode: .session, takeover: .reconcile, reconciliationWindow: .seconds(3), checkpointInterval: .seconds(1),
                checkpointTimeout: .seconds(10), retainedCheckpoints: 2, checkpointDirectory: "/cp", savepointDirectory: "/sp"))
        let batches = manager.handle(.takeOver(takeover), now: MonotonicInstant(nanoseconds: 1), wall: Self.now)
        #expect(manager.history["garbled"]?.state == .failed)
        #expect(manager.history["garbled"]?.failure?.contains("does not decode") == true)
        #expect(manager.dispatcher.job("ok")?.state == .running)
        let writes = batches.flatMap(\.writes)
        try await store.write(fencedBy: epoch) { writer in for write in writes { try write.apply(to: writer, epoch: epoch) } }
        let after = try await store.read { try JobManager.RecoveredJob.load($0) }
        #expect(after.undecodable.isEmpty && after.jobs.map(\.record.graph.id) == ["ok"], "no later leader meets the record again")
        let summaries = try await store.read { try JobSummary.latestRuns($0) }
        #expect(summaries.map(\.id) == ["garbled"] && summaries.first?.state == .failed)
    }
}

@Suite("snapshots in the store")
struct StoredSnapshotTests {
    @Test("a job is rebuilt from its snapshot and the records after it; a snapshot that does not decode fails that one job")
    func snapshotAndTail() async throws {
        let (directory, store, epoch) = try await UnreadableJobTests.leadingStore("baton-stored-snapshot")
        defer { directory.remove() }
        let now = UnreadableJobTests.now
        let attempt = ExecutionAttemptID(vertex: ExecutionVertexID(jobVertex: 0, subtask: 0), attempt: 0)
        let location = TaskLocation(taskExecutor: "te1", allocation: 7)
        let changes: [ExecutionGraphChange] = [
            .state(attempt, .scheduled, nil), .state(attempt, .deploying, location), .state(attempt, .initializing, nil), .state(attempt, .running, nil),
            .state(attempt, .failed, nil), .reset(attempt.vertex, 1),
        ]
        var expected = ExecutionGraph(jobGraph: UnreadableJobTests.graph("ok"))
        var log = ChangeLog()
        var writes: [JobManager.StoreWrite] = []
        for id in ["ok", "broken"] as [JobID] {
            writes.append(.job(JobRecord(graph: UnreadableJobTests.graph(id), state: .running, submittedAt: now, restarts: 0, failure: nil)))
        }
        for (sequence, change) in changes.enumerated() {
            for id in ["ok", "broken"] as [JobID] { writes.append(.change(id, sequence: UInt64(sequence), change)) }
            try expected.apply(change)
            log.fold(sequence: UInt64(sequence), epoch: epoch, change)
            // A snapshot after the failure: the reset stays in the tail.
            if sequence == 4 {
                writes.append(.snapshot("ok", ExecutionGraphSnapshot(expected, log: log)))
                writes.append(.snapshot("broken", ExecutionGraphSnapshot(expected, log: log)))
            }
        }
        let all = writes
        try await store.write(fencedBy: epoch) { writer in
            for write in all { try write.apply(to: writer, epoch: epoch) }
            try writer.put(.executionGraphs, JobKeys.snapshot("broken"), bytes: [1, 2, 3])
        }
        let stored = try await store.read { try StoredChanges.read(of: "ok", in: $0) }
        #expect(stored.snapshot?.log.next == 5 && stored.tail.map(\.sequence) == [5], "the records the snapshot covers are gone")
        let loaded = try await store.read { try JobManager.RecoveredJob.loadAll($0) }
        let ok = try #require(loaded.first { $0.record.graph.id == "ok" })
        #expect(ok.unreadable == nil)
        #expect(ok.graph.executionsInOrder == expected.executionsInOrder)
        #expect(ok.nextSequence == 6 && ok.snapshotEnd == 5 && ok.changeLog.resets == 1)
        let broken = try #require(loaded.first { $0.record.graph.id == "broken" })
        #expect(broken.unreadable?.contains("the snapshot of job broken does not decode") == true, "\(broken.unreadable ?? "")")
        #expect(broken.nextSequence == 6, "new change records go after every one it has")
    }
}

@Suite("checkpoint folders a previous leader left")
struct LeftoverCheckpointFolderTests {
    @Test("a takeover whose counter is far past the latest completed checkpoint discards the leftovers in one effect, not one per id")
    func oneEffectWhateverTheGap() {
        var manager = JobManager(
            epoch: Epoch(2), leader: "m2",
            settings: .init(
                mode: .session, takeover: .reconcile, reconciliationWindow: .seconds(3), checkpointInterval: .seconds(1),
                checkpointTimeout: .seconds(10), retainedCheckpoints: 2, checkpointDirectory: "/cp", savepointDirectory: "/sp"))
        let graph = UnreadableJobTests.graph("far")
        let recovered = JobManager.RecoveredJob(
            record: JobRecord(graph: graph, state: .running, submittedAt: UnreadableJobTests.now, restarts: 0, failure: nil),
            graph: ExecutionGraph(jobGraph: graph), changeLog: ChangeLog(), nextCheckpointID: 100_000, completed: [])
        let effects = manager.handle(.takeOver(.init(jobs: [recovered])), now: MonotonicInstant(nanoseconds: 1), wall: UnreadableJobTests.now)
            .flatMap(\.effects)
        let discards = effects.filter { if case .discardCheckpoint = $0 { true } else if case .discardCheckpoints = $0 { true } else { false } }
        #expect(discards == [.discardCheckpoints(directory: "/cp/far", above: 0, below: 100_000)])
    }

    @Test("leftover folders between the latest completed checkpoint and the counter are removed, nothing else")
    func removesOnlyLeftovers() throws {
        let directory = try TemporaryDirectory("baton-leftover-checkpoints")
        defer { directory.remove() }
        let names = ["chk-1", "chk-2", "chk-3", "chk-4", "chk-5", "sources", "chk-x"]
        for name in names { try FileManager.default.createDirectory(atPath: directory.file(name), withIntermediateDirectories: true) }
        CheckpointFolders.removeLeftovers(in: directory.path, above: 2, below: 5)
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: directory.path)) == ["chk-1", "chk-2", "chk-5", "sources", "chk-x"])
    }
}
