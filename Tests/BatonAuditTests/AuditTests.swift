import BatonAudit
import BatonChaos
import BatonCheckpointing
import BatonCore
import BatonElection
import BatonExecutionGraph
import BatonHAStore
import BatonHAStoreSQLite
import BatonJobGraph
import BatonJobMaster
import BatonJobManager
import BatonStoreRecords
import BatonProcessControl
import Foundation
import Testing

/// A store written through its API with a history: terms, a job's change records, checkpoints
/// and failovers. `violate` lets a test write one thing wrong.
struct AuditedStore {
    let directory: TemporaryDirectory
    let store: HAStore
    let base = WallTime(millisecondsSince1970: 1_795_622_731_000)
    let job: JobID = "job"

    init() throws {
        directory = try TemporaryDirectory("baton-audit")
        store = try HAStore.open(
            path: directory.file("ha.sqlite"), kind: SQLiteHAStoreBackend.kind, access: .readWrite, options: StoreOptions(), now: base)
    }

    func identity(_ member: MemberID) -> LeaderIdentity {
        LeaderIdentity(member: member, incarnation: Incarnation(rawValue: 1), address: "127.0.0.1:1", pid: 1)
    }

    func term(_ epoch: UInt64, _ member: MemberID, start: Int64, end: Int64?) -> TermRecord {
        TermRecord(
            epoch: Epoch(epoch), holder: identity(member), startedAt: base + .milliseconds(start), previousEpoch: epoch > 1 ? Epoch(epoch - 1) : nil,
            endedAt: end.map { base + .milliseconds($0) }, endReason: end == nil ? nil : .holderDied, endedBy: end == nil ? nil : "m2")
    }

    func checkpoint(_ id: CheckpointID, completedAt: WallTime? = nil) -> CompletedCheckpoint {
        CompletedCheckpoint(
            job: job, id: id, isSavepoint: false, triggeredAt: base, completedAt: completedAt ?? completedTime(id), duration: .milliseconds(1),
            directory: "/cp/chk-\(id)", vertices: [], states: [:])
    }

    func failover(_ from: UInt64, _ to: UInt64, checkpoint: CheckpointID?, completedAt: WallTime? = nil, restarted: Int = 0) -> ReconciliationRecord {
        ReconciliationRecord(
            fromEpoch: Epoch(from), toEpoch: Epoch(to), leader: "m2", previousTermEndedAt: base, previousTermEnd: .holderDied, electedAt: base,
            loadedAt: base, reconciledAt: base + .milliseconds(15), reconcileMillis: 15, jobs: 1, adopted: 2, finished: 0, restarted: restarted,
            cancelled: 0, windowClosed: false,
            checkpointsAtTakeover: checkpoint.map { [job.rawValue: .init(id: $0, completedAt: completedAt ?? completedTime($0))] })
    }

    /// When the clean history commits checkpoint `id`.
    func completedTime(_ id: CheckpointID) -> WallTime {
        let number = Int64(id.rawValue)
        return base + .milliseconds(number <= 3 ? number * 100 : number <= 5 ? 1000 + number * 20 : 2100)
    }

    static func attempt(_ subtask: Int, _ number: Int32 = 0) -> ExecutionAttemptID {
        ExecutionAttemptID(vertex: ExecutionVertexID(jobVertex: 0, subtask: subtask), attempt: number)
    }

    /// A clean history, written through the real election and checkpoint code: m1 wins epoch 1 at
    /// 0 ms and renews at 500, m2 takes over from the dead m1 at 1000 (epoch 2), m3 from m2 at 2000
    /// (epoch 3); a job whose task 1 failed and restarted at epoch 2; checkpoints 1 to 3 committed
    /// at epoch 1, 4 and 5 at epoch 2 (the restarted task restored from 3 at 1050), 6 at epoch 3,
    /// with 4 to 6 retained; and the two failovers. The parameters inject one fault each.
    func writeClean(
        changes: [(UInt64, ExecutionGraphChange)]? = nil, terms: [TermRecord]? = nil, failovers: [ReconciliationRecord]? = nil,
        counter: CheckpointID = 7, renewals: [Int64] = [500], takeoverAt: Int64 = 1000, subsume: Bool = true,
        restoreFrom: CheckpointID = 3, lateCheckpointOfEpoch1At: Int64? = nil, savepointRestore: CheckpointID? = nil
    ) async throws {
        var builder = JobGraphBuilder(id: job)
        builder.addVertex("source", operators: [.sequence(keys: 2)], parallelism: 2)
        let graph = try builder.build()
        let location = TaskLocation(taskExecutor: "te1", allocation: 1)
        let history: [(UInt64, ExecutionGraphChange)] = changes ?? [
            (1, .state(Self.attempt(0), .scheduled, nil)), (1, .state(Self.attempt(0), .deploying, location)),
            (1, .state(Self.attempt(1), .scheduled, nil)), (1, .state(Self.attempt(1), .deploying, location)),
            (2, .state(Self.attempt(1), .failed, nil)), (2, .reset(Self.attempt(1).vertex, 1)),
            (3, .state(Self.attempt(1, 1), .scheduled, nil)),
        ]
        let journal = failovers ?? [failover(1, 2, checkpoint: 3), failover(2, 3, checkpoint: 5)]
        let job = self.job
        let base = self.base
        @Sendable func at(_ millis: Int64) -> WallTime { base + .milliseconds(millis) }
        func commit(_ id: CheckpointID, epoch: Epoch, at millis: Int64, fenced: Bool = true) async throws {
            let checkpoint = self.checkpoint(id, completedAt: at(millis))
            let committedAt = at(millis)
            let subsumed = subsume && id > 3 ? [id - 3] : []
            let body: @Sendable (StoreWriter) throws -> Void = { writer in
                try CheckpointRecords.writeCounter(writer, job: job, next: id + 1)
                try CheckpointRecords.writeCompleted(writer, checkpoint, subsumed: subsumed, epoch: epoch, committedAt: committedAt)
            }
            if fenced { try await store.write(fencedBy: epoch, body) } else { try await store.unfencedWrite(body) }
        }
        if let terms {
            try await store.unfencedWrite { writer in
                for record in terms { try writer.put(.terms, StoreKey.uint64(record.epoch.rawValue), record) }
            }
        } else {
            let first = try await campaign("m1", .vacant(epoch: .none), at: 0)
            if let savepoint = savepointRestore {
                // The job started from a savepoint: its first deployments restore from it.
                let startedAt = at(50)
                try await store.write(fencedBy: first) { writer in
                    for subtask in 0..<2 {
                        try CheckpointRecords.writeRestore(writer, job: job, checkpoint: savepoint, attempt: Self.attempt(subtask), epoch: first, at: startedAt)
                    }
                }
            }
            try await store.unfencedWrite { writer in
                try writer.put(.jobs, JobKeys.job(job), JobRecord(graph: graph, state: .running, submittedAt: base, restarts: 1, failure: nil))
            }
            for id in CheckpointID(1)...3 { try await commit(id, epoch: first, at: Int64(id.rawValue) * 100) }
            for renewal in renewals { try await store.renew(epoch: first, now: at(renewal)) }
            let second = try await campaign("m2", .holderDead(member: "m1"), at: takeoverAt)
            if let late = lateCheckpointOfEpoch1At { try await commit(10, epoch: first, at: late, fenced: false) }
            let restoredAt = at(takeoverAt + 50)
            try await store.write(fencedBy: second) { writer in
                try CheckpointRecords.writeRestore(
                    writer, job: job, checkpoint: restoreFrom, attempt: Self.attempt(1, 1), epoch: second, at: restoredAt)
            }
            for id in CheckpointID(4)...5 { try await commit(id, epoch: second, at: takeoverAt + Int64(id.rawValue) * 20) }
            let third = try await campaign("m3", .holderDead(member: "m2"), at: 2000)
            try await commit(6, epoch: third, at: 2100)
            if counter != 7 {
                try await store.write(fencedBy: third) { try CheckpointRecords.writeCounter($0, job: job, next: counter) }
            }
        }
        try await store.unfencedWrite { writer in
            if terms != nil {
                try writer.put(.jobs, JobKeys.job(job), JobRecord(graph: graph, state: .running, submittedAt: base, restarts: 1, failure: nil))
                try CheckpointRecords.writeCounter(writer, job: job, next: counter)
            }
            for (index, (epoch, change)) in history.enumerated() {
                try writer.put(.executionGraphs, JobKeys.change(job, UInt64(index)), bytes: ChangeRecord.value(epoch: Epoch(epoch), change))
            }
            for record in journal { try writer.put(.reconciliations, ReconciliationRecord.key(epoch: record.toEpoch), record) }
        }
    }

    /// A campaign through the store's real compare-and-set, at `millis` on the campaigner's clock.
    @discardableResult
    func campaign(_ member: MemberID, _ expectation: CampaignExpectation, at millis: Int64) async throws -> Epoch {
        guard case .won(let victory) = try await store.campaign(as: identity(member), expecting: expectation, leaseMillis: 1000, now: base + .milliseconds(millis))
        else { throw AuditFixtureError() }
        return victory.record.epoch
    }

    /// A snapshot of the job's graph after every change record it has, written as a leader of
    /// `epoch` writes one (the records it covers go), with the leader's log claiming nothing: the
    /// store keeps the log its own records give.
    func compact(epoch: UInt64 = 3) async throws {
        let job = self.job
        try await store.unfencedWrite { writer in
            let stored = try StoredChanges.read(of: job, in: writer.reader)
            let jobGraph = try writer.reader.value(JobRecord.self, .jobs, JobKeys.job(job))!.graph
            let (graph, log) = try stored.rebuild(jobGraph)
            let claim = ExecutionGraphSnapshot(graph, log: ChangeLog(next: log.next))
            try JobManager.StoreWrite.snapshot(job, claim).apply(to: writer, epoch: Epoch(epoch))
        }
        let left = try store.readBlocking { try StoredChanges.read(of: job, in: $0) }
        guard left.tail.isEmpty, left.snapshot != nil else { throw AuditFixtureError() }
    }

    func audit(retain: Int? = 3) throws -> AuditReport { Audit.check(try AuditHistory.read(store), retain: retain) }
    func kinds(retain: Int? = 3) throws -> [String] { try audit(retain: retain).violations.map(\.kind) }
}

struct AuditFixtureError: Error {}

@Suite("recovery audit")
struct AuditTests {
    @Test("a clean history has no violations and shows every term, failover and checkpoint")
    func cleanHistory() async throws {
        let fixture = try AuditedStore()
        defer { fixture.directory.remove() }
        try await fixture.writeClean()
        let report = try fixture.audit()
        #expect(report.violations.isEmpty, "\(report.violations)")
        #expect(report.terms.map(\.epoch) == [1, 2, 3])
        #expect(report.failovers.map(\.toEpoch) == [2, 3])
        #expect(report.checkpoints.first?.retained == [4, 5, 6])
        #expect(report.checkpoints.first?.restarts == 1)
    }

    @Test("a leader whose clock ran ahead renewed after its successor began: overlapping terms")
    func overlappingTermsByRenewal() async throws {
        let fixture = try AuditedStore()
        defer { fixture.directory.remove() }
        // m1's clock is 1.5 s ahead: its last renewal is stamped after m2's term began.
        try await fixture.writeClean(renewals: [500, 1600])
        #expect(try fixture.kinds() == ["overlapping-terms"])
    }

    @Test("an old leader that committed a checkpoint after its successor began (a store that did not fence it): overlapping terms")
    func overlappingTermsByStaleCommit() async throws {
        let fixture = try AuditedStore()
        defer { fixture.directory.remove() }
        try await fixture.writeClean(lateCheckpointOfEpoch1At: 1300)
        #expect(try fixture.kinds().contains("overlapping-terms"))
    }

    @Test("a term that never ended while a later one began, or one that ended after its successor began, overlaps")
    func overlappingTermRecords() async throws {
        for terms in [
            [AuditedStore.termStub(1, end: nil), AuditedStore.termStub(2, end: nil)],
            [AuditedStore.termStub(1, end: 1500), AuditedStore.termStub(2, start: 1000, end: nil)],
        ] {
            let fixture = try AuditedStore()
            defer { fixture.directory.remove() }
            try await fixture.writeClean(terms: terms.map { fixture.term($0.epoch, "m1", start: $0.start, end: $0.end) }, failovers: [])
            #expect(try fixture.kinds() == ["overlapping-terms"])
        }
    }

    @Test("a campaign stamped before the term it follows began (a clock that went back) is an epoch that did not increase in time")
    func epochNotIncreasing() async throws {
        let fixture = try AuditedStore()
        defer { fixture.directory.remove() }
        try await fixture.writeClean(renewals: [], takeoverAt: -500)
        #expect(try fixture.kinds().contains("epoch-not-increasing"))
    }

    @Test("a store with no term has nothing to audit: a violation, not a pass")
    func emptyHistory() throws {
        let fixture = try AuditedStore()
        defer { fixture.directory.remove() }
        #expect(try fixture.kinds() == ["empty-history"])
    }

    @Test("a change written at an older epoch after a newer one's is a stale write")
    func staleWrite() async throws {
        let fixture = try AuditedStore()
        defer { fixture.directory.remove() }
        let location = TaskLocation(taskExecutor: "te1", allocation: 1)
        try await fixture.writeClean(changes: [
            (2, .state(AuditedStore.attempt(0), .scheduled, nil)), (1, .state(AuditedStore.attempt(0), .deploying, location)),
        ])
        #expect(try fixture.kinds() == ["stale-write"])
    }

    @Test("a task restarted with no task failure is a restart caused by the master failover")
    func restartByMasterFailover() async throws {
        let fixture = try AuditedStore()
        defer { fixture.directory.remove() }
        let location = TaskLocation(taskExecutor: "te1", allocation: 1)
        try await fixture.writeClean(changes: [
            (1, .state(AuditedStore.attempt(0), .scheduled, nil)), (1, .state(AuditedStore.attempt(0), .deploying, location)),
            (1, .state(AuditedStore.attempt(0), .initializing, nil)), (1, .state(AuditedStore.attempt(0), .running, nil)),
            (2, .state(AuditedStore.attempt(0), .canceling, nil)), (2, .state(AuditedStore.attempt(0), .canceled, nil)),
            (2, .reset(AuditedStore.attempt(0).vertex, 1)),
        ])
        #expect(try fixture.kinds() == ["restart-by-master-failover"])
    }

    @Test("a stale write and a restart by the master failover are still flagged once a snapshot replaced their records, whatever the leader's snapshot claims")
    func findingsSurviveCompaction() async throws {
        let location = TaskLocation(taskExecutor: "te1", allocation: 1)
        let faults: [(String, [(UInt64, ExecutionGraphChange)])] = [
            ("stale-write", [(2, .state(AuditedStore.attempt(0), .scheduled, nil)), (1, .state(AuditedStore.attempt(0), .deploying, location))]),
            (
                "restart-by-master-failover",
                [
                    (1, .state(AuditedStore.attempt(0), .scheduled, nil)), (1, .state(AuditedStore.attempt(0), .deploying, location)),
                    (1, .state(AuditedStore.attempt(0), .initializing, nil)), (1, .state(AuditedStore.attempt(0), .running, nil)),
                    (2, .state(AuditedStore.attempt(0), .canceling, nil)),
                    (2, .state(AuditedStore.attempt(0), .canceled, nil)), (2, .reset(AuditedStore.attempt(0).vertex, 1)),
                ]
            ),
        ]
        for (kind, changes) in faults {
            let fixture = try AuditedStore()
            defer { fixture.directory.remove() }
            try await fixture.writeClean(changes: changes)
            try await fixture.compact()
            #expect(try fixture.kinds() == [kind])
        }
    }

    @Test("a clean history compacted into a snapshot stays clean and keeps its restart count")
    func cleanHistoryCompacted() async throws {
        let fixture = try AuditedStore()
        defer { fixture.directory.remove() }
        try await fixture.writeClean()
        try await fixture.compact()
        let report = try fixture.audit()
        #expect(report.violations.isEmpty, "\(report.violations)")
        #expect(report.checkpoints.first?.restarts == 1)
    }

    @Test("a completed checkpoint the store no longer has, or a checkpoint id used twice, is flagged")
    func checkpointContinuity() async throws {
        let missing = try AuditedStore()
        defer { missing.directory.remove() }
        try await missing.writeClean(failovers: [missing.failover(1, 2, checkpoint: 9)], counter: 10)
        #expect(try missing.kinds() == ["missing-checkpoint"])

        let reused = try AuditedStore()
        defer { reused.directory.remove() }
        try await reused.writeClean(counter: 5)
        #expect(try reused.kinds() == ["reused-checkpoint-id", "reused-checkpoint-id"])

        let twice = try AuditedStore()
        defer { twice.directory.remove() }
        try await twice.writeClean(failovers: [
            twice.failover(1, 2, checkpoint: 5, completedAt: twice.base + .seconds(9)), twice.failover(2, 3, checkpoint: 6),
        ])
        #expect(try twice.kinds() == ["reused-checkpoint-id"])
    }

    @Test("a committed checkpoint that later vanished from the store is missing, whatever the takeovers saw")
    func vanishedCheckpoint() async throws {
        let fixture = try AuditedStore()
        defer { fixture.directory.remove() }
        try await fixture.writeClean(failovers: [])
        // A lost write: the newest checkpoint's metadata is gone.
        try await fixture.store.unfencedWrite { try $0.delete(.checkpoints, CheckpointRecords.checkpointKey(fixture.job, 6)) }
        #expect(try fixture.kinds() == ["missing-checkpoint"])
    }

    @Test("a leader that kept checkpoints it should have subsumed retains a set that is not the latest completed")
    func retainedNotLatest() async throws {
        let fixture = try AuditedStore()
        defer { fixture.directory.remove() }
        try await fixture.writeClean(subsume: false)
        #expect(try fixture.kinds() == ["retained-not-latest"])
        // Without the config's retain only the newest is required: the same history passes.
        #expect(try fixture.kinds(retain: nil) == [])
    }

    @Test("a job started from a savepoint restores from it before its first checkpoint: no violation")
    func savepointRestoreIsSilent() async throws {
        let fixture = try AuditedStore()
        defer { fixture.directory.remove() }
        try await fixture.writeClean(savepointRestore: 0)
        #expect(try fixture.kinds() == [])
    }

    @Test("a task restored from an older checkpoint than the latest committed is flagged")
    func restoreNotLatest() async throws {
        let fixture = try AuditedStore()
        defer { fixture.directory.remove() }
        try await fixture.writeClean(restoreFrom: 2)
        #expect(try fixture.kinds() == ["restore-not-latest"])
    }

    @Test("a job record whose state is no job state is an error naming it, never read as some default")
    func unreadableJobState() async throws {
        let fixture = try AuditedStore()
        defer { fixture.directory.remove() }
        try await fixture.writeClean()
        var builder = JobGraphBuilder(id: "odd")
        builder.addVertex("source", operators: [.sequence(keys: 2)], parallelism: 1)
        let record = JobRecord(graph: try builder.build(), state: .running, submittedAt: fixture.base, restarts: 0, failure: nil)
        let bytes = Array(String(decoding: try RecordCodec.encode(record), as: UTF8.self).replacingOccurrences(of: "\"RUNNING\"", with: "\"SLEEPING\"").utf8)
        try await fixture.store.unfencedWrite { try $0.put(.jobs, JobKeys.job("odd"), bytes: bytes) }
        let error = #expect(throws: HAStoreError.self) { _ = try AuditHistory.read(fixture.store) }
        #expect(error?.description.contains("jobs") == true, "\(error.map { "\($0)" } ?? "")")
    }

    @Test("a corrupt store is refused with the file named")
    func corruptStore() throws {
        let directory = try TemporaryDirectory("baton-audit")
        defer { directory.remove() }
        let path = try directory.write(String(repeating: "not a store ", count: 400), to: "ha.sqlite")
        let error = #expect(throws: HAStoreError.self) {
            _ = try HAStore.open(path: path, kind: SQLiteHAStoreBackend.kind, access: .readOnly, options: StoreOptions(), now: WallTime(millisecondsSince1970: 0))
        }
        #expect(error?.description.contains(path) == true)
    }
}

extension AuditedStore {
    static func termStub(_ epoch: UInt64, start: Int64? = nil, end: Int64?) -> (epoch: UInt64, start: Int64, end: Int64?) {
        (epoch, start ?? Int64(epoch - 1) * 1000, end)
    }
}

@Suite("chaos plan")
struct ChaosPlanTests {
    @Test("the same seed gives the same faults, delays and targets; another seed another schedule")
    func seededSchedule() throws {
        let kinds = try #require(ChaosPlan.kinds("kill,stop,te-kill"))
        let interval = try #require(ChaosPlan.interval("2s-5s"))
        let first = ChaosPlan(seed: 42, kinds: kinds, count: 20, interval: interval)
        #expect(first == ChaosPlan(seed: 42, kinds: kinds, count: 20, interval: interval))
        #expect(first != ChaosPlan(seed: 43, kinds: kinds, count: 20, interval: interval))
        #expect(first.faults.allSatisfy { interval.contains($0.delay) && kinds.contains($0.kind) })
        #expect(Set(first.faults.map(\.kind)).count == 3)
    }

    @Test("a plan of at least as many faults as kinds draws every kind, whatever the seed")
    func coverage() throws {
        let kinds = FaultKind.allCases
        for seed in UInt64(0)..<200 {
            let plan = ChaosPlan(seed: seed, kinds: kinds, count: kinds.count, interval: .seconds(1)...Duration.seconds(1))
            #expect(Set(plan.faults.map(\.kind)) == Set(kinds), "seed \(seed)")
        }
        let two = ChaosPlan(seed: 3, kinds: [.kill, .stop], count: 7, interval: .seconds(1)...Duration.seconds(1))
        #expect(Set(two.faults.map(\.kind)) == [.kill, .stop] && two.faults.count == 7)
    }

    @Test("bad fault lists and intervals are refused")
    func parsing() {
        #expect(ChaosPlan.kinds("kill,explode") == nil)
        #expect(ChaosPlan.interval("5s-2s") == nil)
        #expect(ChaosPlan.interval("soon") == nil)
        #expect(ChaosPlan.interval("") == nil && ChaosPlan.interval("-") == nil && ChaosPlan.interval("1s-") == nil)
        #expect(ChaosPlan.interval("1s") == Duration.seconds(1)...Duration.seconds(1))
        #expect(FaultKind.teKill.isMasterFault == false && FaultKind.storeStall.isMasterFault)
    }
}
