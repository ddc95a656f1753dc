import BatonCheckpointing
import BatonCore
import Testing

/// The statistics the operations surface shows, kept by the coordinator as it goes.
@Suite struct CheckpointStatsTests {
    @Test func completedAndAbortedCheckpointsAreCountedWithTheirDurationsAndSizes() {
        var harness = CoordinatorHarness()
        var actions = harness.fireTrigger(harness.coordinator.start())
        #expect(harness.coordinator.stats.inProgressCount == 1)
        #expect(harness.coordinator.stats.history.first?.status == .inProgress)
        _ = harness.acknowledgeAll(1)
        _ = harness.coordinator.completionPersisted(1, wall: harness.wall, now: harness.now, tasks: harness.tasks)
        actions = harness.fireTrigger(actions)
        _ = harness.coordinator.completionFailed(2, reason: "fenced")
        let stats = harness.coordinator.stats
        #expect(stats.completedCount == 1 && stats.failedCount == 1 && stats.inProgressCount == 0 && stats.totalCount == 2)
        #expect(stats.history.map(\.id) == [2, 1])
        #expect(stats.history.map(\.status) == [.failed, .completed])
        #expect(stats.latestCompleted?.sizeBytes == 40)
        #expect(stats.latestCompleted?.duration == .milliseconds(4))
        #expect(stats.latestFailed?.failure?.contains("fenced") == true)
        #expect(stats.durationMillis.count == 1 && stats.durationMillis.average == 4)
        #expect(stats.sizeBytes.minimum == 40 && stats.sizeBytes.maximum == 40)
    }

    @Test func theHistoryKeepsTheLatestOnlyAndANewLeaderStartsFromTheRetainedCheckpoints() {
        var harness = CoordinatorHarness(retain: 3)
        var actions = harness.coordinator.start()
        for id in 1...12 {
            actions = harness.fireTrigger(actions)
            _ = harness.acknowledgeAll(CheckpointID(rawValue: UInt64(id)))
            _ = harness.coordinator.completionPersisted(CheckpointID(rawValue: UInt64(id)), wall: harness.wall, now: harness.now, tasks: harness.tasks)
        }
        let stats = harness.coordinator.stats
        #expect(stats.completedCount == 12)
        #expect(stats.history.count == 10)
        #expect(stats.history.first?.id == 12 && stats.history.last?.id == 3)
        // A leader that takes the job over counts what the store retained.
        let next = CoordinatorHarness(retain: 3, nextID: 13, completed: harness.coordinator.completed)
        #expect(next.coordinator.stats.completedCount == 3)
        #expect(next.coordinator.stats.history.map(\.id) == [12, 11, 10])
        #expect(next.coordinator.stats.latestCompleted?.id == 12)
    }
}
