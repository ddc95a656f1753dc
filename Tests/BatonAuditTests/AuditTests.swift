import BatonAudit
import BatonChaos
import BatonCheckpointing
import BatonCore
import BatonElection
import BatonExecutionGraph
import BatonHAStore
import BatonHAStoreSQLite
import BatonJobGraph
import BatonMasterService
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

    func checkpoint(_ id: UInt64) -> CompletedCheckpoint {
        CompletedCheckpoint(
            job: job, id: id, isSavepoint: false, triggeredAt: base, completedAt: base + .milliseconds(Int64(id)), duration: .milliseconds(1),
            directory: "/cp/chk-\(id)", vertices: [], states: [:])
    }

    func failover(_ from: UInt64, _ to: UInt64, checkpoint: UInt64?, completedAt: WallTime? = nil, restarted: Int = 0) -> ReconciliationRecord {
        ReconciliationRecord(
            fromEpoch: from, toEpoch: to, leader: "m2", previousTermEndedAt: base, previousTermEnd: "holderDied", electedAt: base,
            loadedAt: base, reconciledAt: base + .milliseconds(15), reconcileMillis: 15, jobs: 1, adopted: 2, finished: 0, restarted: restarted,
            cancelled: 0, windowClosed: false,
            checkpointsAtTakeover: checkpoint.map { [job.rawValue: .init(id: $0, completedAt: completedAt ?? base + .milliseconds(Int64($0)))] })
    }

    static func attempt(_ subtask: Int, _ number: Int32 = 0) -> ExecutionAttemptID {
        ExecutionAttemptID(vertex: ExecutionVertexID(jobVertex: 0, subtask: subtask), attempt: number)
    }

    /// A clean history: three terms (two kills), a job whose task 1 failed and restarted at epoch
    /// 2, checkpoints 1 to 6 (4 to 6 retained), and the two failovers.
    func writeClean(changes: [(UInt64, ExecutionGraphChange)]? = nil, terms: [TermRecord]? = nil, failovers: [ReconciliationRecord]? = nil,
                    counter: UInt64 = 7, retained: [UInt64] = [4, 5, 6]) async throws {
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
        let termList = terms ?? [term(1, "m1", start: 0, end: 1000), term(2, "m2", start: 1000, end: 2000), term(3, "m3", start: 2000, end: nil)]
        let journal = failovers ?? [failover(1, 2, checkpoint: 3), failover(2, 3, checkpoint: 5)]
        let completed = retained.map(checkpoint)
        try await store.unfencedWrite { writer in
            for record in termList { try writer.put(.terms, StoreKey.uint64(record.epoch.rawValue), record) }
            try writer.put(.jobs, JobKeys.job(job), JobRecord(graph: graph, state: "RUNNING", submittedAt: base, restarts: 1, failure: nil))
            for (index, (epoch, change)) in history.enumerated() {
                try writer.put(.executionGraphs, JobKeys.change(job, UInt64(index)), bytes: ChangeRecord.value(epoch: Epoch(epoch), change))
            }
            try CheckpointRecords.writeCounter(writer, job: job, next: counter)
            for checkpoint in completed { try CheckpointRecords.writeCompleted(writer, checkpoint, subsumed: []) }
            for record in journal { try writer.put(.reconciliations, ReconciliationRecord.key(epoch: record.toEpoch), record) }
        }
    }

    func audit() throws -> AuditReport { Audit.check(try AuditHistory.read(store)) }
    func kinds() throws -> [String] { try audit().violations.map(\.kind) }
}

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

    @Test("a term that never ended while a later one began, or one that ended after its successor began, overlaps")
    func overlappingTerms() async throws {
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

    @Test("a term that began before the one it follows is an epoch that did not increase")
    func epochNotIncreasing() async throws {
        let fixture = try AuditedStore()
        defer { fixture.directory.remove() }
        try await fixture.writeClean(
            terms: [fixture.term(1, "m1", start: 5000, end: 900), fixture.term(2, "m2", start: 1000, end: nil)], failovers: [])
        #expect(try fixture.kinds().contains("epoch-not-increasing"))
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

    @Test("a completed checkpoint the store no longer has, or a checkpoint id used twice, is flagged")
    func checkpointContinuity() async throws {
        let missing = try AuditedStore()
        defer { missing.directory.remove() }
        try await missing.writeClean(failovers: [missing.failover(1, 2, checkpoint: 9)], counter: 10)
        #expect(try missing.kinds() == ["missing-checkpoint"])

        let reused = try AuditedStore()
        defer { reused.directory.remove() }
        try await reused.writeClean(counter: 5)
        #expect(try reused.kinds() == ["reused-checkpoint-id"])

        let twice = try AuditedStore()
        defer { twice.directory.remove() }
        try await twice.writeClean(failovers: [
            twice.failover(1, 2, checkpoint: 5, completedAt: twice.base + .seconds(9)), twice.failover(2, 3, checkpoint: 6),
        ])
        #expect(try twice.kinds() == ["reused-checkpoint-id"])
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

    @Test("bad fault lists and intervals are refused")
    func parsing() {
        #expect(ChaosPlan.kinds("kill,explode") == nil)
        #expect(ChaosPlan.interval("5s-2s") == nil)
        #expect(ChaosPlan.interval("soon") == nil)
        #expect(ChaosPlan.interval("1s") == Duration.seconds(1)...Duration.seconds(1))
        #expect(FaultKind.teKill.isMasterFault == false && FaultKind.storeStall.isMasterFault)
    }
}
