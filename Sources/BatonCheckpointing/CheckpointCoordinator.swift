public import BatonCore
public import BatonExecutionGraph
public import BatonJobGraph

/// The CheckpointCoordinator of one job, as a pure state machine: it decides when to trigger a
/// checkpoint, which tasks must acknowledge it, when it is complete, what to keep and what to
/// discard. The leader's shell carries out its actions (fenced store writes, trigger and notify
/// messages, timers, file removal) and reports their outcomes back.
///
/// Rules:
/// - One checkpoint at a time. A trigger needs every task of the job running; otherwise the
///   trigger is retried shortly. Every id comes from the durable counter: the counter is written
///   (fenced) before the trigger goes out, so ids strictly increase across leaders.
/// - A checkpoint is complete only once its metadata is durable: all acknowledgements lead to
///   `persistCompleted`, and only `completionPersisted` makes it complete, notifies the tasks
///   (sinks commit) and discards the checkpoints beyond `retain`. A refused write is never
///   reported complete.
/// - A checkpoint is aborted (its files discarded) when it times out, a task declines it, or a
///   task it waits for stops running.
/// - A savepoint is a checkpoint taken on demand into the savepoint folder. It is not retained
///   nor used for failover restores, and sinks are not notified of it (a restore from an older
///   checkpoint would otherwise duplicate what it committed); its `_metadata` file is written and
///   its path handed to the requester.
public struct CheckpointCoordinator: Sendable {
    public struct Settings: Hashable, Sendable {
        public var interval: Duration
        public var timeout: Duration
        public var retain: Int
        /// This job's checkpoint folder (`<checkpoints.dir>/<job>`).
        public var directory: String
        /// Where savepoints go.
        public var savepointDirectory: String

        public init(interval: Duration, timeout: Duration, retain: Int, directory: String, savepointDirectory: String) {
            self.interval = interval
            self.timeout = timeout
            self.retain = max(1, retain)
            self.directory = directory
            self.savepointDirectory = savepointDirectory
        }
    }

    /// The job's tasks as the JobMaster sees them now.
    public struct Tasks: Sendable {
        /// The current attempt of every task, and whether it is running.
        public var attempts: [ExecutionVertexID: (attempt: Int32, running: Bool)]
        /// The tasks that inject barriers (those with no inputs).
        public var sources: Set<ExecutionVertexID>

        public init(attempts: [ExecutionVertexID: (attempt: Int32, running: Bool)], sources: Set<ExecutionVertexID>) {
            self.attempts = attempts
            self.sources = sources
        }

        var allRunning: Bool { !attempts.isEmpty && attempts.values.allSatisfy(\.running) }
    }

    public struct Trigger: Hashable, Sendable {
        public var id: CheckpointID
        public var timestamp: WallTime
        public var directory: String
        public var isSavepoint: Bool
        /// The source attempts to send the trigger to.
        public var sources: [ExecutionAttemptID]
    }

    public enum Timer: Hashable, Sendable {
        case trigger(generation: UInt64)
        case timeout(checkpoint: CheckpointID)
    }

    public enum Action: Hashable, Sendable {
        /// Write the id counter (the next id to use), fenced, before the trigger that follows.
        case persistCounter(next: CheckpointID)
        case trigger(Trigger)
        case startTimer(Timer, after: Duration)
        /// Write the checkpoint's metadata and delete the subsumed ones', in one fenced
        /// transaction; then report `completionPersisted` or `completionFailed`.
        case persistCompleted(CompletedCheckpoint, subsumed: [CheckpointID])
        /// Write the savepoint's `_metadata` file; then report `savepointWritten` or `completionFailed`.
        case writeSavepoint(CompletedCheckpoint)
        /// Tell every task of the job that the checkpoint completed (sinks commit).
        case notifyComplete(CheckpointID)
        /// Remove a checkpoint's folder.
        case discard(directory: String)
        case aborted(CheckpointID, reason: String)
        case completed(CompletedCheckpoint)
        case savepointFinished(request: UInt64, path: String)
        case savepointFailed(request: UInt64, reason: String)
    }

    private struct Pending: Sendable {
        var trigger: Trigger
        var started: MonotonicInstant
        var expected: [ExecutionVertexID: Int32]
        var acknowledged: [ExecutionVertexID: StateHandle] = [:]
        var persisting = false
        var requests: [UInt64] = []
    }

    public let job: JobID
    public let settings: Settings
    private let vertices: [CompletedCheckpoint.Vertex]
    /// The next checkpoint id (what the durable counter holds).
    public private(set) var nextID: CheckpointID
    /// The retained completed checkpoints, oldest first.
    public private(set) var completed: [CompletedCheckpoint]
    /// What a task restores from: the latest completed checkpoint, or the savepoint the job was
    /// submitted with until a checkpoint completes.
    public private(set) var restorePoint: CompletedCheckpoint?
    /// Counts, the latest checkpoints and summaries, for the operations surface.
    public private(set) var stats: CheckpointStats
    private var pending: Pending?
    private var waitingSavepoints: [UInt64] = []
    private var generation: UInt64 = 0
    private var stopped = false

    /// A coordinator that continues from the durable counter `nextID` and the retained
    /// `completed` checkpoints, or from `savepoint` when the job was submitted from one.
    public init(
        job: JobID, vertices: [CompletedCheckpoint.Vertex], settings: Settings, nextID: CheckpointID, completed: [CompletedCheckpoint] = [],
        savepoint: CompletedCheckpoint? = nil
    ) {
        self.job = job
        self.vertices = vertices
        self.settings = settings
        let sorted = completed.sorted { $0.id < $1.id }
        self.completed = sorted
        stats = CheckpointStats(retained: sorted)
        let floor = max(sorted.last?.id ?? 0, savepoint?.id ?? 0).next
        self.nextID = max(nextID, floor)
        restorePoint = sorted.last ?? savepoint
    }

    public var latestCompleted: CompletedCheckpoint? { completed.last }
    public var pendingCheckpoint: CheckpointID? { pending?.trigger.id }

    /// The state `vertex` restores from when it is deployed, with the checkpoint's id.
    public func restoreState(for vertex: ExecutionVertexID, jobVertex id: JobVertexID) -> (checkpoint: CheckpointID, state: StateHandle)? {
        guard let point = restorePoint, let state = point.state(of: id, subtask: Int(vertex.subtask)) else { return nil }
        return (point.id, state)
    }

    // MARK: events

    /// The job started: periodic triggers begin.
    public mutating func start() -> [Action] {
        guard !stopped else { return [] }
        return [scheduleTrigger(after: settings.interval)]
    }

    /// Triggers at the next chance instead of a whole interval from now (after a failover's
    /// reconciliation: a fresh checkpoint under the new leader as soon as possible).
    public mutating func triggerSoon() -> [Action] {
        guard !stopped, pending == nil else { return [] }
        return [scheduleTrigger(after: .zero)]
    }

    public mutating func timerFired(_ timer: Timer, tasks: Tasks, wall: WallTime, now: MonotonicInstant) -> [Action] {
        guard !stopped else { return [] }
        switch timer {
        case .trigger(let fired):
            guard fired == generation else { return [] }
            if pending != nil { return [scheduleTrigger(after: settings.interval)] }
            guard tasks.allRunning else { return [scheduleTrigger(after: min(settings.interval, .milliseconds(100)))] }
            return triggerCheckpoint(tasks: tasks, savepoint: false, wall: wall, now: now) + [scheduleTrigger(after: settings.interval)]
        case .timeout(let id):
            guard let pending, pending.trigger.id == id, !pending.persisting else { return [] }
            return abort("it did not complete within \(DurationText.format(settings.timeout))")
        }
    }

    /// A savepoint is asked for: it is triggered now, or after the checkpoint under way.
    public mutating func requestSavepoint(_ request: UInt64, tasks: Tasks, wall: WallTime, now: MonotonicInstant) -> [Action] {
        guard !stopped else { return [.savepointFailed(request: request, reason: "the job is not running")] }
        if pending != nil {
            waitingSavepoints.append(request)
            return []
        }
        guard tasks.allRunning else {
            return [.savepointFailed(request: request, reason: "not every task of the job is running")]
        }
        var actions = triggerCheckpoint(tasks: tasks, savepoint: true, wall: wall, now: now)
        pending?.requests.append(request)
        if pending == nil { actions.append(.savepointFailed(request: request, reason: "the job has no source task to trigger")) }
        return actions
    }

    /// A task acknowledged checkpoint `id` with its state.
    public mutating func acknowledge(
        _ attempt: ExecutionAttemptID, checkpoint id: CheckpointID, state: StateHandle, wall: WallTime, now: MonotonicInstant
    ) -> [Action] {
        guard var pending, pending.trigger.id == id, !pending.persisting, pending.expected[attempt.vertex] == attempt.attempt else { return [] }
        pending.acknowledged[attempt.vertex] = state
        guard pending.acknowledged.count == pending.expected.count else {
            self.pending = pending
            return []
        }
        pending.persisting = true
        self.pending = pending
        let checkpoint = CompletedCheckpoint(
            job: job, id: id, isSavepoint: pending.trigger.isSavepoint, triggeredAt: pending.trigger.timestamp, completedAt: wall,
            duration: now.since(pending.started), directory: pending.trigger.directory, vertices: vertices, states: pending.acknowledged)
        if checkpoint.isSavepoint { return [.writeSavepoint(checkpoint)] }
        let kept = completed.count + 1 - settings.retain
        let subsumed = kept > 0 ? completed.prefix(kept).map(\.id) : []
        return [.persistCompleted(checkpoint, subsumed: subsumed)]
    }

    /// A task could not take checkpoint `id`.
    public mutating func decline(_ attempt: ExecutionAttemptID, checkpoint id: CheckpointID, reason: String) -> [Action] {
        guard let pending, pending.trigger.id == id, !pending.persisting, pending.expected[attempt.vertex] == attempt.attempt else { return [] }
        return abort("task \(attempt) declined it: \(reason)")
    }

    /// The tasks changed (a failover, a task finished): a checkpoint that waits for a task that
    /// no longer runs is aborted.
    public mutating func tasksChanged(_ tasks: Tasks) -> [Action] {
        guard let pending, !pending.persisting else { return [] }
        for (vertex, attempt) in pending.expected.sorted(by: { $0.key < $1.key }) {
            guard let current = tasks.attempts[vertex], current.attempt == attempt, current.running else {
                return abort("task \(vertex)@\(attempt) stopped running")
            }
        }
        return []
    }

    /// The metadata of checkpoint `id` is durable: it is complete.
    public mutating func completionPersisted(_ id: CheckpointID, wall: WallTime, now: MonotonicInstant, tasks: Tasks) -> [Action] {
        guard let finished = pending, finished.trigger.id == id, finished.persisting, !finished.trigger.isSavepoint else { return [] }
        pending = nil
        let checkpoint = CompletedCheckpoint(
            job: job, id: id, isSavepoint: false, triggeredAt: finished.trigger.timestamp, completedAt: wall,
            duration: now.since(finished.started), directory: finished.trigger.directory, vertices: vertices,
            states: finished.acknowledged)
        completed.append(checkpoint)
        stats.completed(checkpoint)
        restorePoint = checkpoint
        var actions: [Action] = [.completed(checkpoint), .notifyComplete(id)]
        while completed.count > settings.retain {
            actions.append(.discard(directory: completed.removeFirst().directory))
        }
        return actions + nextSavepoint(tasks: tasks, wall: wall, now: now)
    }

    /// The savepoint's `_metadata` file is durable.
    public mutating func savepointWritten(_ id: CheckpointID, wall: WallTime, now: MonotonicInstant, tasks: Tasks) -> [Action] {
        guard let finished = pending, finished.trigger.id == id, finished.persisting, finished.trigger.isSavepoint else { return [] }
        pending = nil
        stats.completed(
            CompletedCheckpoint(
                job: job, id: id, isSavepoint: true, triggeredAt: finished.trigger.timestamp, completedAt: wall,
                duration: now.since(finished.started), directory: finished.trigger.directory, vertices: vertices,
                states: finished.acknowledged))
        var actions: [Action] = []
        for request in finished.requests { actions.append(.savepointFinished(request: request, path: finished.trigger.directory)) }
        return actions + nextSavepoint(tasks: tasks, wall: wall, now: now)
    }

    /// Writing checkpoint `id`'s metadata failed: it is not complete, and its files go.
    public mutating func completionFailed(_ id: CheckpointID, reason: String) -> [Action] {
        guard let pending, pending.trigger.id == id else { return [] }
        return abort("its metadata could not be written: \(reason)")
    }

    /// The job ended or the leader's term did: nothing more is triggered; what is pending is
    /// aborted (and savepoint requests fail).
    public mutating func stop(reason: String) -> [Action] {
        guard !stopped else { return [] }
        stopped = true
        generation += 1
        var actions: [Action] = []
        if let pending, !pending.persisting { actions += abort(reason) }
        for request in waitingSavepoints { actions.append(.savepointFailed(request: request, reason: reason)) }
        waitingSavepoints.removeAll()
        return actions
    }

    // MARK: helpers

    private mutating func scheduleTrigger(after delay: Duration) -> Action {
        generation += 1
        return .startTimer(.trigger(generation: generation), after: delay)
    }

    private mutating func triggerCheckpoint(tasks: Tasks, savepoint: Bool, wall: WallTime, now: MonotonicInstant) -> [Action] {
        let sources = tasks.sources.sorted().compactMap { vertex in
            tasks.attempts[vertex].map { ExecutionAttemptID(vertex: vertex, attempt: $0.attempt) }
        }
        guard !sources.isEmpty else { return [] }
        let id = nextID
        nextID = nextID.next
        let directory = savepoint ? "\(settings.savepointDirectory)/savepoint-\(job)-\(id)" : "\(settings.directory)/chk-\(id)"
        let trigger = Trigger(id: id, timestamp: wall, directory: directory, isSavepoint: savepoint, sources: sources)
        pending = Pending(trigger: trigger, started: now, expected: tasks.attempts.mapValues(\.attempt))
        stats.triggered(id, at: wall, isSavepoint: savepoint)
        return [.persistCounter(next: nextID), .trigger(trigger), .startTimer(.timeout(checkpoint: id), after: settings.timeout)]
    }

    private mutating func abort(_ reason: String) -> [Action] {
        guard let aborted = pending else { return [] }
        pending = nil
        stats.failed(aborted.trigger.id, reason: reason)
        var actions: [Action] = [.aborted(aborted.trigger.id, reason: reason), .discard(directory: aborted.trigger.directory)]
        for request in aborted.requests {
            actions.append(.savepointFailed(request: request, reason: "savepoint \(aborted.trigger.id) was aborted: \(reason)"))
        }
        return actions
    }

    private mutating func nextSavepoint(tasks: Tasks, wall: WallTime, now: MonotonicInstant) -> [Action] {
        guard !waitingSavepoints.isEmpty, !stopped else { return [] }
        let requests = waitingSavepoints
        waitingSavepoints.removeAll()
        guard tasks.allRunning else {
            return requests.map { .savepointFailed(request: $0, reason: "not every task of the job is running") }
        }
        let actions = triggerCheckpoint(tasks: tasks, savepoint: true, wall: wall, now: now)
        pending?.requests = requests
        return actions
    }
}
