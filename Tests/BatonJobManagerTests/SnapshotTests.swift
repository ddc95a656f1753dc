import BatonCore
import BatonExecutionGraph
import BatonJobGraph
import BatonJobManager
import BatonJobMaster
import BatonSimulation
import Testing

@Suite("JobManager: snapshots of a running job's ExecutionGraph")
struct SnapshotTests {
    static func snapshots(_ batches: [JobManager.Ready]) -> [ExecutionGraphSnapshot] {
        batches.flatMap(\.writes).compactMap { if case .snapshot(_, let snapshot) = $0 { snapshot } else { nil } }
    }

    static func changeSequences(_ writes: [JobManager.StoreWrite]) -> [UInt64] {
        writes.compactMap { if case .change(_, let sequence, _) = $0 { sequence } else { nil } }
    }

    @Test("every N change records a snapshot goes in the transaction of the job's last change, after it, and the store keeps only the records after it")
    func snapshotEveryN() throws {
        var term = Term.runningJob(snapshotEvery: 5)
        RestartBudgetTests.failOne(&term)
        let written = Self.changeSequences(term.batches.flatMap(\.writes))
        #expect(written == Array(0..<UInt64(written.count)), "numbered without gaps")
        let snapshots = Self.snapshots(term.batches)
        let ends = snapshots.map(\.log.next)
        #expect(ends.count >= 3, "\(ends.count) snapshots for \(written.count) records")
        #expect(zip([0] + ends, ends).allSatisfy { $1 - $0 >= 5 }, "one once 5 or more records were written since the last: \(ends)")
        for batch in term.batches {
            guard let index = batch.writes.firstIndex(where: { if case .snapshot = $0 { true } else { false } }),
                case .snapshot(_, let snapshot) = batch.writes[index]
            else { continue }
            let before = Self.changeSequences(Array(batch.writes[..<index]))
            #expect(before.last.map { $0 + 1 } == snapshot.log.next, "the snapshot covers exactly the records up to its transaction's last")
            #expect(Self.changeSequences(Array(batch.writes[index...])).isEmpty)
        }
        let graph = try #require(term.manager.dispatcher.job("lanes")).graph
        guard case .success(let (rebuilt, log)) = term.store.rebuild(Term.lanes()) else {
            Issue.record("the store does not rebuild the job")
            return
        }
        #expect(rebuilt.executionsInOrder == graph.executionsInOrder)
        #expect(log.next == UInt64(written.count))
        #expect(term.store.changeRecordCount(of: "lanes") == written.count - Int(ends.last ?? 0), "the records a snapshot covers are gone")
        #expect(term.store.changeRecordCount(of: "lanes") < 5)
        #expect(log.resets > 0, "the restarts the compacted records counted are kept")
    }

    @Test("a new leader rebuilds the graph from snapshot and tail, and numbers its records on from where they end")
    func takeoverFromSnapshot() throws {
        var first = Term.runningJob(snapshotEvery: 5)
        RestartBudgetTests.failOne(&first)
        let next = UInt64(Self.changeSequences(first.batches.flatMap(\.writes)).count)
        var second = Term(store: first.store, member: "m2", snapshotEvery: 5)
        second.register("te1", tasks: first.running(on: "te1", job: "lanes"))
        second.register("te2", tasks: first.running(on: "te2", job: "lanes"))
        #expect(second.manager.dispatcher.job("lanes")?.graph.executionsInOrder == first.manager.dispatcher.job("lanes")?.graph.executionsInOrder)
        #expect(second.manager.reconciliation?.isDone == true)
        RestartBudgetTests.failOne(&second)
        let continued = Self.changeSequences(second.batches.flatMap(\.writes))
        #expect(continued.first == next, "the new leader's first record follows the old leader's last")
        #expect(continued == Array(next..<next + UInt64(continued.count)))
        guard case .success(let (rebuilt, _)) = second.store.rebuild(Term.lanes()) else {
            Issue.record("the store does not rebuild the job")
            return
        }
        #expect(rebuilt.executionsInOrder == second.manager.dispatcher.job("lanes")?.graph.executionsInOrder)
    }

    @Test("a job taken over with N or more records since its snapshot gets one at once")
    func snapshotAtTakeover() {
        let first = Term.runningJob()
        let records = first.store.changeRecordCount(of: "lanes")
        #expect(records >= 10 && Self.snapshots(first.batches).isEmpty)
        let second = Term(store: first.store, member: "m2", snapshotEvery: 10)
        let snapshots = Self.snapshots(second.batches)
        #expect(snapshots.map(\.log.next) == [UInt64(records)])
        #expect(second.store.changeRecordCount(of: "lanes") == 0)
        let third = Term(store: second.store, member: "m3", snapshotEvery: 10)
        #expect(Self.snapshots(third.batches).isEmpty, "nothing new since: no snapshot")
    }

    @Test("the log a snapshot keeps round-trips through its bytes, and bytes that are not a snapshot are refused")
    func snapshotBytes() throws {
        let term = Term.runningJob(snapshotEvery: 3)
        let snapshot = try #require(Self.snapshots(term.batches).last)
        #expect(try ExecutionGraphSnapshot(decoding: snapshot.encoded()) == snapshot)
        #expect(throws: ExecutionGraphError.self) { try ExecutionGraphSnapshot(decoding: Array(snapshot.encoded().dropLast())) }
        #expect(throws: ExecutionGraphError.self) { try ExecutionGraphSnapshot(decoding: [9] + snapshot.encoded().dropFirst()) }
        let other = Term.lanes("other", parallelism: 3)
        #expect(throws: ExecutionGraphError.self) { try snapshot.restore(other) }
    }
}
