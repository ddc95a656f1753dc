import BatonCheckpointing
import BatonCore
import BatonExecutionGraph
import BatonJobGraph
import Testing

/// A job of one source (2 subtasks) and one sink (2 subtasks), driven by hand.
struct CoordinatorHarness {
    var coordinator: CheckpointCoordinator
    var wall = WallTime(millisecondsSince1970: 1_700_000_000_000)
    var now = MonotonicInstant(nanoseconds: 1_000_000_000)
    var attempts: [ExecutionVertexID: (attempt: Int32, running: Bool)]
    let sources: Set<ExecutionVertexID> = [ExecutionVertexID(jobVertex: 0, subtask: 0), ExecutionVertexID(jobVertex: 0, subtask: 1)]

    init(retain: Int = 2, nextID: CheckpointID = 1, completed: [CompletedCheckpoint] = [], savepoint: CompletedCheckpoint? = nil) {
        let settings = CheckpointCoordinator.Settings(
            interval: .milliseconds(500), timeout: .seconds(10), retain: retain, directory: "/cp/job", savepointDirectory: "/cp/savepoints")
        coordinator = CheckpointCoordinator(
            job: "job", vertices: [.init(index: 0, id: "source", parallelism: 2), .init(index: 1, id: "sink", parallelism: 2)],
            settings: settings, nextID: nextID, completed: completed, savepoint: savepoint)
        attempts = [:]
        for vertex in 0..<2 {
            for subtask in 0..<2 { attempts[ExecutionVertexID(jobVertex: vertex, subtask: subtask)] = (0, true) }
        }
    }

    var tasks: CheckpointCoordinator.Tasks { .init(attempts: attempts, sources: sources) }

    mutating func advance(_ duration: Duration) {
        now = now + duration
        wall = wall + duration
    }

    /// Fires the trigger timer the last actions started.
    mutating func fireTrigger(_ actions: [CheckpointCoordinator.Action]) -> [CheckpointCoordinator.Action] {
        for case .startTimer(let timer, let after) in actions {
            if case .trigger = timer {
                advance(after)
                return coordinator.timerFired(timer, tasks: tasks, wall: wall, now: now)
            }
        }
        Issue.record("no trigger timer in \(actions)")
        return []
    }

    static func handle(_ vertex: Int, _ subtask: Int, _ id: CheckpointID) -> StateHandle {
        StateHandle(path: "/cp/job/chk-\(id)/\(vertex)-\(subtask)", size: 10, checksum: UInt32(id.rawValue))
    }

    /// Every task acknowledges `id`.
    mutating func acknowledgeAll(_ id: CheckpointID) -> [CheckpointCoordinator.Action] {
        var actions: [CheckpointCoordinator.Action] = []
        for vertex in attempts.keys.sorted() {
            advance(.milliseconds(1))
            actions += coordinator.acknowledge(
                ExecutionAttemptID(vertex: vertex, attempt: attempts[vertex]!.attempt), checkpoint: id,
                state: Self.handle(Int(vertex.jobVertex), Int(vertex.subtask), id), wall: wall, now: now)
        }
        return actions
    }
}

extension [CheckpointCoordinator.Action] {
    var trigger: CheckpointCoordinator.Trigger? {
        for case .trigger(let trigger) in self { return trigger }
        return nil
    }
    var persisted: (CompletedCheckpoint, [CheckpointID])? {
        for case .persistCompleted(let checkpoint, let subsumed) in self { return (checkpoint, subsumed) }
        return nil
    }
}

@Suite struct CheckpointCoordinatorTests {
    @Test func triggerWritesTheCounterBeforeTheTriggerAndAsksOnlyTheSources() {
        var harness = CoordinatorHarness()
        let actions = harness.fireTrigger(harness.coordinator.start())
        guard case .persistCounter(next: 2) = actions.first else {
            Issue.record("the counter write must come first: \(actions)")
            return
        }
        let trigger = actions.trigger
        #expect(trigger?.id == 1)
        #expect(trigger?.directory == "/cp/job/chk-1")
        #expect(trigger?.sources.map(\.vertex) == harness.sources.sorted())
        #expect(harness.coordinator.pendingCheckpoint == 1)
    }

    @Test func aCheckpointIsCompleteOnlyOnceItsMetadataIsDurable() {
        var harness = CoordinatorHarness()
        _ = harness.fireTrigger(harness.coordinator.start())
        let actions = harness.acknowledgeAll(1)
        #expect(actions.persisted?.0.id == 1)
        #expect(!actions.contains(.notifyComplete(1)))
        #expect(harness.coordinator.latestCompleted == nil)
        let done = harness.coordinator.completionPersisted(1, wall: harness.wall, now: harness.now, tasks: harness.tasks)
        #expect(done.contains(.notifyComplete(1)))
        #expect(harness.coordinator.latestCompleted?.id == 1)
        #expect(harness.coordinator.latestCompleted?.states.count == 4)
    }

    @Test func aRefusedMetadataWriteIsNeverReportedCompleteAndItsFilesGo() {
        var harness = CoordinatorHarness()
        _ = harness.fireTrigger(harness.coordinator.start())
        _ = harness.acknowledgeAll(1)
        let actions = harness.coordinator.completionFailed(1, reason: "fenced: epoch 3 is newer than 2")
        #expect(actions.contains(.discard(directory: "/cp/job/chk-1")))
        #expect(!actions.contains(.notifyComplete(1)))
        #expect(harness.coordinator.latestCompleted == nil)
        #expect(harness.coordinator.restorePoint == nil)
        // A late persisted report for it changes nothing.
        #expect(harness.coordinator.completionPersisted(1, wall: harness.wall, now: harness.now, tasks: harness.tasks).isEmpty)
        #expect(harness.coordinator.latestCompleted == nil)
    }

    @Test func idsStrictlyIncreaseFromTheDurableCounterAndPastRetainedCheckpoints() {
        var harness = CoordinatorHarness(nextID: 7)
        let first = harness.fireTrigger(harness.coordinator.start())
        #expect(first.trigger?.id == 7)
        let old = CompletedCheckpoint(
            job: "job", id: 12, isSavepoint: false, triggeredAt: harness.wall, completedAt: harness.wall, duration: .zero,
            directory: "/cp/job/chk-12", vertices: [], states: [:])
        var resumed = CoordinatorHarness(nextID: 3, completed: [old])
        #expect(resumed.coordinator.nextID == 13)
        #expect(resumed.fireTrigger(resumed.coordinator.start()).trigger?.id == 13)
    }

    @Test func retainKeepsTheNewestAndDiscardsTheRest() {
        var harness = CoordinatorHarness(retain: 2)
        var timers = harness.coordinator.start()
        var discarded: [String] = []
        for id in CheckpointID(1)...4 {
            let trigger = harness.fireTrigger(timers)
            #expect(trigger.trigger?.id == id)
            timers = trigger
            let persisted = harness.acknowledgeAll(id).persisted
            #expect(persisted?.1 == (id >= 3 ? [id - 2] : []))
            for case .discard(let directory) in harness.coordinator.completionPersisted(id, wall: harness.wall, now: harness.now, tasks: harness.tasks) {
                discarded.append(directory)
            }
        }
        #expect(harness.coordinator.completed.map(\.id) == [3, 4])
        #expect(discarded == ["/cp/job/chk-1", "/cp/job/chk-2"])
    }

    @Test func aTaskThatStopsRunningAbortsThePendingCheckpoint() {
        var harness = CoordinatorHarness()
        _ = harness.fireTrigger(harness.coordinator.start())
        harness.attempts[ExecutionVertexID(jobVertex: 1, subtask: 1)] = (0, false)
        let actions = harness.coordinator.tasksChanged(harness.tasks)
        #expect(actions.contains(.discard(directory: "/cp/job/chk-1")))
        #expect(harness.coordinator.pendingCheckpoint == nil)
        // Late acknowledgements of the aborted checkpoint are ignored.
        #expect(harness.acknowledgeAll(1).isEmpty)
    }

    @Test func aTimeoutAbortsAndTheNextTriggerUsesANewId() {
        var harness = CoordinatorHarness()
        let first = harness.fireTrigger(harness.coordinator.start())
        harness.advance(.seconds(10))
        let aborted = harness.coordinator.timerFired(.timeout(checkpoint: 1), tasks: harness.tasks, wall: harness.wall, now: harness.now)
        #expect(aborted.contains { if case .aborted(1, _) = $0 { true } else { false } })
        #expect(harness.fireTrigger(first).trigger?.id == 2)
    }

    @Test func noTriggerWhileATaskIsNotRunning() {
        var harness = CoordinatorHarness()
        harness.attempts[ExecutionVertexID(jobVertex: 0, subtask: 0)] = (1, false)
        let actions = harness.fireTrigger(harness.coordinator.start())
        #expect(actions.trigger == nil)
        #expect(harness.coordinator.nextID == 1)
    }

    @Test func acknowledgementsFromAnOlderAttemptDoNotCount() {
        var harness = CoordinatorHarness()
        harness.attempts[ExecutionVertexID(jobVertex: 1, subtask: 0)] = (2, true)
        _ = harness.fireTrigger(harness.coordinator.start())
        let stale = harness.coordinator.acknowledge(
            ExecutionAttemptID(vertex: ExecutionVertexID(jobVertex: 1, subtask: 0), attempt: 1), checkpoint: 1,
            state: CoordinatorHarness.handle(1, 0, 1), wall: harness.wall, now: harness.now)
        #expect(stale.isEmpty)
        #expect(harness.acknowledgeAll(1).persisted != nil)
    }

    @Test func aSavepointIsWrittenToItsFolderAndNeitherRetainedNorNotified() {
        var harness = CoordinatorHarness()
        _ = harness.coordinator.start()
        let actions = harness.coordinator.requestSavepoint(41, tasks: harness.tasks, wall: harness.wall, now: harness.now)
        #expect(actions.trigger?.isSavepoint == true)
        #expect(actions.trigger?.directory == "/cp/savepoints/savepoint-job-1")
        let acks = harness.acknowledgeAll(1)
        guard case .writeSavepoint(let savepoint) = acks.first else {
            Issue.record("expected the savepoint file write: \(acks)")
            return
        }
        #expect(savepoint.isSavepoint)
        let done = harness.coordinator.savepointWritten(1, wall: harness.wall, now: harness.now, tasks: harness.tasks)
        #expect(done == [.savepointFinished(request: 41, path: "/cp/savepoints/savepoint-job-1")])
        #expect(harness.coordinator.completed.isEmpty)
    }

    @Test func aSavepointAskedDuringACheckpointFollowsIt() {
        var harness = CoordinatorHarness()
        _ = harness.fireTrigger(harness.coordinator.start())
        #expect(harness.coordinator.requestSavepoint(5, tasks: harness.tasks, wall: harness.wall, now: harness.now).isEmpty)
        _ = harness.acknowledgeAll(1)
        let next = harness.coordinator.completionPersisted(1, wall: harness.wall, now: harness.now, tasks: harness.tasks)
        #expect(next.trigger?.id == 2)
        #expect(next.trigger?.isSavepoint == true)
    }

    @Test func aJobFromASavepointRestoresFromItUntilACheckpointCompletes() {
        let savepoint = CompletedCheckpoint(
            job: "old", id: 9, isSavepoint: true, triggeredAt: .init(millisecondsSince1970: 0), completedAt: .init(millisecondsSince1970: 1),
            duration: .milliseconds(1), directory: "/cp/savepoints/savepoint-old-9",
            vertices: [.init(index: 0, id: "source", parallelism: 2), .init(index: 1, id: "sink", parallelism: 2)],
            states: [ExecutionVertexID(jobVertex: 1, subtask: 1): CoordinatorHarness.handle(1, 1, 9)])
        var harness = CoordinatorHarness(savepoint: savepoint)
        #expect(harness.coordinator.nextID == 10)
        let restore = harness.coordinator.restoreState(for: ExecutionVertexID(jobVertex: 1, subtask: 1), jobVertex: "sink")
        #expect(restore?.checkpoint == 9)
        #expect(restore?.state == CoordinatorHarness.handle(1, 1, 9))
        _ = harness.fireTrigger(harness.coordinator.start())
        _ = harness.acknowledgeAll(10)
        _ = harness.coordinator.completionPersisted(10, wall: harness.wall, now: harness.now, tasks: harness.tasks)
        #expect(harness.coordinator.restoreState(for: ExecutionVertexID(jobVertex: 1, subtask: 1), jobVertex: "sink")?.checkpoint == 10)
    }

    @Test func metadataRoundTripsAndAChangedOrForeignSavepointFileIsRefused() throws {
        let checkpoint = CompletedCheckpoint(
            job: "job", id: 3, isSavepoint: true, triggeredAt: .init(millisecondsSince1970: 5), completedAt: .init(millisecondsSince1970: 9),
            duration: .milliseconds(4), directory: "/x", vertices: [.init(index: 0, id: "source", parallelism: 2)],
            states: [ExecutionVertexID(jobVertex: 0, subtask: 1): StateHandle(path: "/x/0-1", size: 3, checksum: 77)])
        #expect(try CompletedCheckpointCodec.decode(CompletedCheckpointCodec.encode(checkpoint)) == checkpoint)
        let key = Array("the cluster's secret".utf8)
        let file = CompletedCheckpointCodec.encodeFile(checkpoint, key: key)
        #expect(try CompletedCheckpointCodec.decodeFile(file, key: key) == checkpoint)
        // Any byte changed, the file cut short, or another cluster's key: refused before decoding.
        for index in [0, 9, 20, file.count - 40, file.count - 1] {
            var damaged = file
            damaged[index] ^= 0xFF
            #expect(throws: BinaryDecodingError.self) { try CompletedCheckpointCodec.decodeFile(damaged, key: key) }
        }
        #expect(throws: BinaryDecodingError.self) { try CompletedCheckpointCodec.decodeFile(Array(file.dropLast(5)), key: key) }
        let foreign = #expect(throws: BinaryDecodingError.self) { try CompletedCheckpointCodec.decodeFile(file, key: Array("another cluster".utf8)) }
        #expect(foreign?.problem.contains("signature") == true)
        #expect(throws: BinaryDecodingError.self) { try CompletedCheckpointCodec.decodeFile(Array("hello world".utf8), key: key) }
    }
}

@Suite struct CheckpointMetadataTests {
    @Test func numbersOutOfRangeAreDecodingErrorsNotCrashes() {
        for (index, subtask) in [(UInt64.max, UInt64(0)), (UInt64(0), UInt64(1) << 40)] {
            var writer = BinaryWriter()
            writer.write(UInt8(1))
            writer.write("job")
            writer.write(UInt64(1))
            writer.write(false)
            writer.write(signed: 0)
            writer.write(signed: 0)
            writer.write(signed: 0)
            writer.write("/x")
            writer.write(UInt64(0))
            writer.write(UInt64(1))
            writer.write(index)
            writer.write(subtask)
            writer.write("/x/s")
            writer.write(UInt64(1))
            writer.write(UInt64(1))
            #expect(throws: BinaryDecodingError.self) { try CompletedCheckpointCodec.decode(writer.bytes) }
        }
    }
}

@Suite struct BarrierAlignerTests {
    @Test func aSingleChannelAlignsAtOnce() {
        var aligner = BarrierAligner(channels: 1)
        #expect(aligner.barrier(1, channel: 0) == .init(aligned: 1, release: [0]))
    }

    @Test func channelsAreHeldUntilEveryChannelDeliveredTheBarrier() {
        var aligner = BarrierAligner(channels: 3)
        #expect(aligner.barrier(4, channel: 2) == .init())
        #expect(aligner.barrier(4, channel: 0) == .init())
        #expect(aligner.barrier(4, channel: 1) == .init(aligned: 4, release: [0, 1, 2]))
    }

    @Test func anEndedChannelNoLongerHoldsBackAlignment() {
        var aligner = BarrierAligner(channels: 2)
        #expect(aligner.barrier(1, channel: 0) == .init())
        #expect(aligner.channelEnded(1) == .init(aligned: 1, release: [0]))
        #expect(aligner.barrier(2, channel: 0) == .init(aligned: 2, release: [0]))
    }

    @Test func aNewerBarrierAbandonsTheOlderAlignmentAndStaleBarriersPass() {
        var aligner = BarrierAligner(channels: 2)
        #expect(aligner.barrier(1, channel: 0) == .init())
        #expect(aligner.barrier(2, channel: 1) == .init(abandoned: 1, release: [0]))
        #expect(aligner.barrier(2, channel: 0) == .init(aligned: 2, release: [0, 1]))
        #expect(aligner.barrier(1, channel: 1) == .init(release: [1]))
        #expect(aligner.barrier(2, channel: 0) == .init(release: [0]))
    }
}
