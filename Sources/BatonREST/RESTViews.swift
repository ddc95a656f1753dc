import BatonJobMaster
public import BatonWire

/// The REST API's JSON documents, built from what the leader reports and the store holds. Flink's
/// paths and field names wherever Flink has the same thing (its REST API's `overview`,
/// `jobs/overview`, `jobs/{jid}`, `jobs/{jid}/vertices/{vid}`, `taskmanagers`), so that a Flink
/// user reads them without a manual. Pure: no I/O.
public enum RESTViews {
    /// Counts of subtasks by state, Flink's `tasks` object (every state, 0 when none).
    public struct TaskCounts: Codable, Sendable, Hashable {
        public var counts: [String: Int]

        static let states = ["created", "scheduled", "deploying", "initializing", "running", "finished", "canceling", "canceled", "failed"]

        init(_ subtasks: [LeaderStatusReport.Subtask]) {
            var counts = Dictionary(uniqueKeysWithValues: Self.states.map { ($0, 0) })
            for subtask in subtasks { counts[subtask.state.lowercased(), default: 0] += 1 }
            counts["total"] = subtasks.count
            self.counts = counts
        }

        public init(from decoder: any Swift.Decoder) throws { counts = try [String: Int](from: decoder) }
        public func encode(to encoder: any Swift.Encoder) throws { try counts.encode(to: encoder) }
    }

    public struct Overview: Codable, Sendable, Hashable {
        public var taskmanagers: Int
        public var slotsTotal: Int
        public var slotsAvailable: Int
        public var jobsRunning: Int
        public var jobsFinished: Int
        public var jobsCancelled: Int
        public var jobsFailed: Int
        public var batonVersion: String

        enum CodingKeys: String, CodingKey {
            case taskmanagers, slotsTotal = "slots-total", slotsAvailable = "slots-available", jobsRunning = "jobs-running",
                jobsFinished = "jobs-finished", jobsCancelled = "jobs-cancelled", jobsFailed = "jobs-failed", batonVersion = "baton-version"
        }
    }

    public struct JobOverview: Codable, Sendable, Hashable {
        public var jid: String
        public var name: String
        public var state: String
        public var startTime: Int64
        public var endTime: Int64
        public var duration: Int64
        public var restarts: Int
        public var tasks: TaskCounts

        enum CodingKeys: String, CodingKey {
            case jid, name, state, startTime = "start-time", endTime = "end-time", duration, restarts, tasks
        }
    }

    public struct JobsOverview: Codable, Sendable, Hashable { public var jobs: [JobOverview] }

    /// `GET /v1/jobs`: Flink's `{ "jobs": [ { "id", "status" } ] }`.
    public struct JobList: Codable, Sendable, Hashable {
        public struct Entry: Codable, Sendable, Hashable {
            public var id: String
            public var status: String
        }
        public var jobs: [Entry]
    }

    public struct VertexSummary: Codable, Sendable, Hashable {
        public var id: String
        public var name: String
        public var parallelism: Int
        public var status: String
        public var tasks: TaskCounts
    }

    public struct JobDetail: Codable, Sendable, Hashable {
        public var jid: String
        public var name: String
        public var state: String
        public var startTime: Int64
        public var endTime: Int64
        public var duration: Int64
        public var restarts: Int
        public var failure: String?
        public var lastCheckpoint: LeaderStatusReport.Checkpoint
        public var vertices: [VertexSummary]

        enum CodingKeys: String, CodingKey {
            case jid, name, state, startTime = "start-time", endTime = "end-time", duration, restarts, failure, lastCheckpoint = "last-checkpoint",
                vertices
        }
    }

    public struct SubtaskDetail: Codable, Sendable, Hashable {
        public var subtask: Int
        public var status: String
        public var attempt: Int
        public var taskmanagerId: String?

        enum CodingKeys: String, CodingKey { case subtask, status, attempt, taskmanagerId = "taskmanager-id" }
    }

    public struct VertexDetail: Codable, Sendable, Hashable {
        public var id: String
        public var name: String
        public var parallelism: Int
        public var subtasks: [SubtaskDetail]
    }

    public struct TaskManager: Codable, Sendable, Hashable {
        public var id: String
        public var slotsNumber: Int
        public var freeSlots: Int
        public var registeredEpoch: UInt64
        public var dataPort: String
        public var totalResource: LeaderStatusReport.Resources?
        public var freeResource: LeaderStatusReport.Resources?
    }

    public struct TaskManagers: Codable, Sendable, Hashable { public var taskmanagers: [TaskManager] }

    /// Flink's error shape: `{ "errors": [ "..." ] }`.
    public struct Errors: Codable, Sendable, Hashable {
        public var errors: [String]
        public init(_ errors: [String]) { self.errors = errors }
    }

    // MARK: building them

    static func isEnded(_ state: String) -> Bool { JobState(rawValue: state)?.isTerminal ?? false }

    /// A job's state as Flink names it (`CANCELED` is Flink's spelling too).
    static func vertexStatus(_ counts: TaskCounts, parallelism: Int) -> String {
        let c = counts.counts
        for state in ["failed", "canceling", "running", "initializing", "deploying", "scheduled"] where c[state, default: 0] > 0 {
            return state.uppercased()
        }
        if c["finished", default: 0] == parallelism { return "FINISHED" }
        if c["canceled", default: 0] > 0 { return "CANCELED" }
        return "CREATED"
    }

    static func times(_ job: LeaderStatusReport.Job, now: Int64) -> (start: Int64, end: Int64, duration: Int64) {
        let start = job.startTime ?? -1
        let end = job.endTime ?? -1
        let duration = start < 0 ? -1 : (end >= 0 ? end : now) - start
        return (start, end, duration)
    }

    public static func overview(_ report: LeaderStatusReport, version: String) -> Overview {
        let states = report.jobs.map(\.state)
        return Overview(
            taskmanagers: report.taskExecutors.count, slotsTotal: report.taskExecutors.map(\.slots).reduce(0, +),
            slotsAvailable: report.taskExecutors.map(\.freeSlots).reduce(0, +), jobsRunning: states.filter { !isEnded($0) }.count,
            jobsFinished: states.filter { $0 == "FINISHED" }.count, jobsCancelled: states.filter { $0 == "CANCELED" }.count,
            jobsFailed: states.filter { $0 == "FAILED" }.count, batonVersion: version)
    }

    public static func jobList(_ report: LeaderStatusReport) -> JobList {
        JobList(jobs: report.jobs.map { .init(id: $0.id, status: $0.state) })
    }

    public static func jobsOverview(_ report: LeaderStatusReport, nowMillis: Int64) -> JobsOverview {
        JobsOverview(
            jobs: report.jobs.map { job in
                let (start, end, duration) = times(job, now: nowMillis)
                return JobOverview(
                    jid: job.id, name: job.name, state: job.state, startTime: start, endTime: end, duration: duration, restarts: job.restarts,
                    tasks: TaskCounts(job.vertices.flatMap(\.subtasks)))
            })
    }

    public static func job(_ report: LeaderStatusReport, id: String, nowMillis: Int64) -> JobDetail? {
        guard let job = report.jobs.first(where: { $0.id == id }) else { return nil }
        let (start, end, duration) = times(job, now: nowMillis)
        return JobDetail(
            jid: job.id, name: job.name, state: job.state, startTime: start, endTime: end, duration: duration, restarts: job.restarts,
            failure: job.failure, lastCheckpoint: job.lastCheckpoint,
            vertices: job.vertices.map { vertex in
                let counts = TaskCounts(vertex.subtasks)
                return VertexSummary(
                    id: vertex.id, name: vertex.id, parallelism: vertex.parallelism, status: vertexStatus(counts, parallelism: vertex.parallelism),
                    tasks: counts)
            })
    }

    public static func vertex(_ report: LeaderStatusReport, job id: String, vertex: String) -> VertexDetail? {
        guard let job = report.jobs.first(where: { $0.id == id }), let found = job.vertices.first(where: { $0.id == vertex }) else { return nil }
        return VertexDetail(
            id: found.id, name: found.id, parallelism: found.parallelism,
            subtasks: found.subtasks.map { .init(subtask: $0.index, status: $0.state, attempt: $0.attempt, taskmanagerId: $0.taskExecutor) })
    }

    public static func taskManagers(_ report: LeaderStatusReport) -> TaskManagers {
        TaskManagers(
            taskmanagers: report.taskExecutors.map {
                TaskManager(
                    id: $0.id, slotsNumber: $0.slots, freeSlots: $0.freeSlots, registeredEpoch: $0.registeredEpoch, dataPort: $0.dataAddress,
                    totalResource: $0.totalResource, freeResource: $0.freeResource)
            })
    }
}

// MARK: checkpoints and exceptions (Flink's `jobs/{jid}/checkpoints` and `jobs/{jid}/exceptions`)

extension RESTViews {
    public struct CheckpointCounts: Codable, Sendable, Hashable {
        public var total: Int
        public var inProgress: Int
        public var completed: Int
        public var failed: Int
        enum CodingKeys: String, CodingKey { case total, inProgress = "in_progress", completed, failed }
    }

    public struct MinMaxAverage: Codable, Sendable, Hashable {
        public var min: Double
        public var max: Double
        public var avg: Double
    }

    public struct CheckpointSummary: Codable, Sendable, Hashable {
        public var stateSize: MinMaxAverage
        public var endToEndDuration: MinMaxAverage
        enum CodingKeys: String, CodingKey { case stateSize = "state_size", endToEndDuration = "end_to_end_duration" }
    }

    public struct CheckpointEntry: Codable, Sendable, Hashable {
        public var id: UInt64
        public var status: String
        public var isSavepoint: Bool
        public var triggerTimestamp: Int64
        public var latestAckTimestamp: Int64?
        public var stateSize: UInt64?
        public var endToEndDuration: Double?
        public var failureMessage: String?
        enum CodingKeys: String, CodingKey {
            case id, status, isSavepoint = "is_savepoint", triggerTimestamp = "trigger_timestamp", latestAckTimestamp = "latest_ack_timestamp",
                stateSize = "state_size", endToEndDuration = "end_to_end_duration", failureMessage = "failure_message"
        }
    }

    public struct LatestCheckpoints: Codable, Sendable, Hashable {
        public var completed: CheckpointEntry?
        public var savepoint: CheckpointEntry?
        public var failed: CheckpointEntry?

        public func encode(to encoder: any Swift.Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(completed, forKey: .completed)
            try container.encode(savepoint, forKey: .savepoint)
            try container.encode(failed, forKey: .failed)
        }
    }

    public struct Checkpoints: Codable, Sendable, Hashable {
        public var counts: CheckpointCounts
        public var summary: CheckpointSummary
        public var latest: LatestCheckpoints
        public var history: [CheckpointEntry]
    }

    public struct ExceptionEntry: Codable, Sendable, Hashable {
        public var exceptionName: String
        public var stacktrace: String
        public var timestamp: Int64
        public var taskName: String
        public var location: String?
        public var attempt: Int
    }

    public struct ExceptionHistory: Codable, Sendable, Hashable {
        public var entries: [ExceptionEntry]
        public var truncated: Bool
    }

    public struct Exceptions: Codable, Sendable, Hashable {
        public var rootException: String?
        public var timestamp: Int64?
        public var exceptionHistory: ExceptionHistory
        enum CodingKeys: String, CodingKey { case rootException = "root-exception", timestamp, exceptionHistory }
    }

    static func entry(_ entry: LeaderStatusReport.CheckpointEntry) -> CheckpointEntry {
        CheckpointEntry(
            id: entry.id, status: entry.status, isSavepoint: entry.isSavepoint, triggerTimestamp: entry.triggerTimestamp,
            latestAckTimestamp: entry.latestAckTimestamp, stateSize: entry.sizeBytes, endToEndDuration: entry.durationMillis,
            failureMessage: entry.failure)
    }

    /// A job's checkpoint statistics; a job without checkpoints (blocking exchanges, or ended under
    /// an earlier leader) has every count 0.
    public static func checkpoints(_ report: LeaderStatusReport, job id: String) -> Checkpoints? {
        guard let job = report.jobs.first(where: { $0.id == id }) else { return nil }
        let stats = job.checkpoints
        func range(_ summary: LeaderStatusReport.Summary?) -> MinMaxAverage {
            MinMaxAverage(min: summary?.min ?? 0, max: summary?.max ?? 0, avg: summary?.avg ?? 0)
        }
        let counts = CheckpointCounts(
            total: (stats?.completed ?? 0) + (stats?.failed ?? 0) + (stats?.inProgress ?? 0), inProgress: stats?.inProgress ?? 0,
            completed: stats?.completed ?? 0, failed: stats?.failed ?? 0)
        return Checkpoints(
            counts: counts, summary: CheckpointSummary(stateSize: range(stats?.sizeBytes), endToEndDuration: range(stats?.durationMillis)),
            latest: LatestCheckpoints(
                completed: stats?.latestCompleted.map(entry), savepoint: stats?.latestSavepoint.map(entry), failed: stats?.latestFailed.map(entry)),
            history: (stats?.history ?? []).map(entry))
    }

    public static func exceptions(_ report: LeaderStatusReport, job id: String) -> Exceptions? {
        guard let job = report.jobs.first(where: { $0.id == id }) else { return nil }
        let parallelism = Dictionary(job.vertices.map { ($0.id, $0.parallelism) }, uniquingKeysWith: { a, _ in a })
        let entries = (job.exceptions ?? []).map { failure in
            ExceptionEntry(
                exceptionName: "TaskFailure", stacktrace: failure.cause, timestamp: failure.timestamp,
                taskName: "\(failure.vertex) (\(failure.subtask + 1)/\(parallelism[failure.vertex] ?? 0))", location: failure.taskExecutor,
                attempt: failure.attempt)
        }
        return Exceptions(
            rootException: job.failure ?? entries.first?.stacktrace, timestamp: job.failure != nil ? job.endTime : entries.first?.timestamp,
            exceptionHistory: ExceptionHistory(entries: entries, truncated: false))
    }
}

extension RESTViews {
    /// Flink's asynchronous operation result: `status.id` IN_PROGRESS or COMPLETED, and once
    /// completed `operation.location` or `operation.failure-cause`.
    public struct SavepointStatus: Encodable, Sendable {
        struct Status: Encodable { var id: String }
        struct FailureCause: Encodable {
            var message: String
            enum CodingKeys: String, CodingKey { case message = "stack-trace" }
        }
        struct Operation: Encodable {
            var location: String?
            var failureCause: FailureCause?
            enum CodingKeys: String, CodingKey { case location, failureCause = "failure-cause" }
        }
        var status: Status
        var operation: Operation?

        init(_ outcome: SavepointOperations.Outcome) {
            switch outcome {
            case .inProgress: status = Status(id: "IN_PROGRESS")
            case .completed(let location):
                status = Status(id: "COMPLETED")
                operation = Operation(location: location)
            case .failed(let message):
                status = Status(id: "COMPLETED")
                operation = Operation(failureCause: FailureCause(message: message))
            }
        }
    }
}
