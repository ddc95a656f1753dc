import BatonREST
import BatonWire
import Testing

/// The REST API's documents from a leader's report: Flink's shapes and counts.
@Suite struct RESTViewsTests {
    static func subtask(_ index: Int, _ state: String, attempt: Int = 0, on executor: String? = "te1") -> LeaderStatusReport.Subtask {
        .init(index: index, attempt: attempt, state: state, taskExecutor: executor)
    }

    static let report = LeaderStatusReport(
        taskExecutors: [
            .init(id: "te1", slots: 4, freeSlots: 1, registeredEpoch: 3, dataAddress: "127.0.0.1:1"),
            .init(id: "te2", slots: 2, freeSlots: 2, registeredEpoch: 3, dataAddress: "127.0.0.1:2"),
        ],
        jobs: [
            .init(
                id: "a", name: "A", state: "RUNNING", restarts: 1, failure: nil,
                vertices: [
                    .init(id: "source", parallelism: 2, subtasks: [subtask(0, "RUNNING"), subtask(1, "DEPLOYING", attempt: 1)]),
                    .init(id: "sink", parallelism: 1, subtasks: [subtask(0, "RUNNING", on: "te2")]),
                ], startTime: 1_000, endTime: nil,
                exceptions: [.init(vertex: "source", subtask: 1, attempt: 0, cause: "task failed: boom", taskExecutor: "te1", timestamp: 1_500)]),
            .init(id: "b", name: "B", state: "FINISHED", restarts: 0, failure: nil, vertices: [], startTime: 100, endTime: 400),
            .init(id: "c", name: "C", state: "FAILED", restarts: 3, failure: "no restart left", vertices: [], startTime: 100, endTime: 900),
            .init(id: "d", name: "D", state: "CANCELED", restarts: 0, failure: nil, vertices: []),
        ])

    @Test func theOverviewCountsTaskExecutorsSlotsAndJobsByState() {
        let overview = RESTViews.overview(Self.report, version: "x")
        #expect(overview.taskmanagers == 2 && overview.slotsTotal == 6 && overview.slotsAvailable == 3)
        #expect(overview.jobsRunning == 1 && overview.jobsFinished == 1 && overview.jobsFailed == 1 && overview.jobsCancelled == 1)
    }

    @Test func aJobsTimesAndTaskCountsFollowFlink() {
        let jobs = RESTViews.jobsOverview(Self.report, nowMillis: 2_000).jobs
        let running = jobs[0]
        #expect(running.startTime == 1_000 && running.endTime == -1 && running.duration == 1_000)
        #expect(running.tasks.counts["running"] == 2 && running.tasks.counts["deploying"] == 1 && running.tasks.counts["total"] == 3)
        #expect(running.tasks.counts["failed"] == 0)
        #expect(jobs[1].duration == 300 && jobs[1].endTime == 400)
        #expect(jobs[3].startTime == -1 && jobs[3].duration == -1)
    }

    @Test func aVertexIsAsBusyAsItsLeastAdvancedSubtask() throws {
        let job = try #require(RESTViews.job(Self.report, id: "a", nowMillis: 2_000))
        #expect(job.vertices.map(\.status) == ["RUNNING", "RUNNING"])
        let vertex = try #require(RESTViews.vertex(Self.report, job: "a", vertex: "source"))
        #expect(vertex.subtasks.map(\.attempt) == [0, 1])
        #expect(RESTViews.vertex(Self.report, job: "a", vertex: "nope") == nil)
        #expect(RESTViews.job(Self.report, id: "nope", nowMillis: 0) == nil)
    }

    @Test func exceptionsNameTheTaskAndWhereItRan() throws {
        let exceptions = try #require(RESTViews.exceptions(Self.report, job: "a"))
        let entry = try #require(exceptions.exceptionHistory.entries.first)
        #expect(entry.taskName == "source (2/2)" && entry.location == "te1" && entry.stacktrace.contains("boom"))
        #expect(exceptions.rootException == "task failed: boom")
        #expect(RESTViews.exceptions(Self.report, job: "c")?.rootException == "no restart left")
    }

    @Test func aJobWithoutCheckpointsHasEveryCountZero() throws {
        let checkpoints = try #require(RESTViews.checkpoints(Self.report, job: "b"))
        #expect(checkpoints.counts.total == 0 && checkpoints.history.isEmpty && checkpoints.latest.completed == nil)
    }
}
