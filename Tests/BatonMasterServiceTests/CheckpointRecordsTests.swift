import BatonCheckpointing
import BatonCore
import BatonElection
import BatonExecutionGraph
import BatonHAStore
import BatonHAStoreSQLite
import BatonStoreRecords
import BatonProcessControl
import Testing

@Suite("checkpoint metadata in the HA store")
struct CheckpointRecordsTests {
    static let now = WallTime(millisecondsSince1970: 1_795_622_731_042)

    func identity(_ member: MemberID) -> LeaderIdentity {
        LeaderIdentity(member: member, incarnation: Incarnation(rawValue: 1), address: "127.0.0.1:1", pid: 1)
    }

    func checkpoint(_ id: CheckpointID) -> CompletedCheckpoint {
        CompletedCheckpoint(
            job: "job", id: id, isSavepoint: false, triggeredAt: Self.now, completedAt: Self.now, duration: .milliseconds(3),
            directory: "/cp/job/chk-\(id)", vertices: [.init(index: 0, id: "source", parallelism: 1)],
            states: [ExecutionVertexID(jobVertex: 0, subtask: 0): StateHandle(path: "/cp/job/chk-\(id)/source-0.state", size: 20, checksum: 7)])
    }

    func withStore(_ body: (HAStore) async throws -> Void) async throws {
        let directory = try TemporaryDirectory("baton-checkpoint-records")
        defer { directory.remove() }
        let store = try HAStore.open(
            path: directory.file("ha.sqlite"), kind: SQLiteHAStoreBackend.kind, access: .readWrite, options: StoreOptions(), now: Self.now)
        try await body(store)
    }

    func win(_ store: HAStore, _ member: MemberID) async throws -> Epoch {
        let record = try await store.leadership()
        let expectation: CampaignExpectation =
            record?.holder == nil ? .vacant(epoch: record?.epoch ?? .none) : .leaseLapsed(epoch: record!.epoch, renewals: record!.renewals)
        guard case .won(let victory) = try await store.campaign(as: identity(member), expecting: expectation, leaseMillis: 1000, now: Self.now)
        else { throw HAStoreError(.io, path: store.path, "expected to win") }
        return victory.record.epoch
    }

    @Test("the counter and the retained checkpoints round-trip; subsumed ones are deleted in the same transaction")
    func roundTrip() async throws {
        try await withStore { store in
            let epoch = try await win(store, "m1")
            for id in CheckpointID(1)...3 {
                try await store.write(fencedBy: epoch) { writer in
                    try CheckpointRecords.writeCounter(writer, job: "job", next: id + 1)
                    try CheckpointRecords.writeCompleted(writer, checkpoint(id), subsumed: id > 2 ? [id - 2] : [], epoch: epoch, committedAt: Self.now)
                }
            }
            let (next, completed) = try await store.read { try CheckpointRecords.read($0, job: "job") }
            #expect(next == 4)
            #expect(completed.map(\.id) == [2, 3])
            #expect(completed.last == checkpoint(3))
            let other = try await store.read { try CheckpointRecords.read($0, job: "other") }
            #expect(other.nextID == 1 && other.completed.isEmpty)
        }
    }

    @Test("a checkpoint whose metadata write is refused as fenced is neither stored nor reported complete")
    func fencedCompletion() async throws {
        try await withStore { store in
            let old = try await win(store, "m1")
            let settings = CheckpointCoordinator.Settings(
                interval: .seconds(1), timeout: .seconds(10), retain: 3, directory: "/cp/job", savepointDirectory: "/cp/savepoints")
            var coordinator = CheckpointCoordinator(
                job: "job", vertices: [.init(index: 0, id: "source", parallelism: 1)], settings: settings, nextID: 1)
            let tasks = CheckpointCoordinator.Tasks(
                attempts: [ExecutionVertexID(jobVertex: 0, subtask: 0): (0, true)], sources: [ExecutionVertexID(jobVertex: 0, subtask: 0)])
            let mono = MonotonicInstant(nanoseconds: 5)
            _ = coordinator.start()
            var actions = coordinator.timerFired(.trigger(generation: 1), tasks: tasks, wall: Self.now, now: mono)
            #expect(actions.contains { if case .trigger = $0 { true } else { false } })
            actions = coordinator.acknowledge(
                ExecutionAttemptID(vertex: ExecutionVertexID(jobVertex: 0, subtask: 0), attempt: 0), checkpoint: 1,
                state: StateHandle(path: "/cp/job/chk-1/source-0.state", size: 20, checksum: 7), wall: Self.now, now: mono)
            guard case .persistCompleted(let completed, let subsumed) = actions.first else {
                Issue.record("expected the metadata write: \(actions)")
                return
            }
            // Meanwhile another master took over.
            _ = try await win(store, "m2")
            let refusal = await #expect(throws: HAStoreError.self) {
                try await store.write(fencedBy: old) { try CheckpointRecords.writeCompleted($0, completed, subsumed: subsumed, epoch: old, committedAt: Self.now) }
            }
            #expect(refusal?.code == .fenced)
            let after = coordinator.completionFailed(1, reason: refusal?.message ?? "fenced")
            #expect(!after.contains(.notifyComplete(1)))
            #expect(coordinator.latestCompleted == nil)
            #expect(try await store.read { try CheckpointRecords.read($0, job: "job") }.completed.isEmpty)
        }
    }
}
