public import BatonCore
public import BatonExecutionGraph
public import BatonJobGraph

/// A task executor's decisions, as a pure instance (Flink's TaskSlotTable, with the fencing of
/// `TaskExecutorFencing`): which leader's commands it admits, which tasks it holds and in which
/// state, what it reports, what it keeps of ended tasks for the next leader, and how soon it
/// looks for a leader after losing one. Events in (with `now` where time matters), actions out;
/// `TaskExecutorService` carries the actions out (it owns the connections, the running tasks and
/// the outbox of reports).
///
/// Guarantees: a command is carried out only when its epoch is the epoch of the leader this task
/// executor registered with, and never from an epoch older than the newest seen; a deployment of
/// an attempt it already holds is acknowledged and not started twice; a cancellation of an attempt
/// it does not hold is answered with a CANCELED report (so the leader can move on); a checkpoint
/// trigger for an attempt that is not RUNNING here is declined with the reason; every state change
/// of a task is reported, in order; the last report of each of the latest `endedReportsKept`
/// ended tasks is kept and sent with the next registration (a report sent to a leader that died
/// before reading it is not lost with it).
///
/// Not guaranteed: that a report reaches a leader (the shell buffers them while there is none,
/// within its outbox's capacity); that reports of more ended tasks than `endedReportsKept` survive
/// a long leaderless period.
public struct TaskSlotTable: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// Ended tasks whose last report is kept for the next registration.
        public var endedReportsKept: Int
        /// How often to look for a leader right after losing one (a new leader is elected within
        /// milliseconds of a crash), for `quickRetryPeriod`, and how often after that.
        public var quickRetryDelay: Duration
        public var quickRetryPeriod: Duration
        public var retryDelay: Duration

        public init(
            endedReportsKept: Int = 10_000, quickRetryDelay: Duration = .milliseconds(10), quickRetryPeriod: Duration = .seconds(3),
            retryDelay: Duration = .milliseconds(100)
        ) {
            self.endedReportsKept = endedReportsKept
            self.quickRetryDelay = quickRetryDelay
            self.quickRetryPeriod = quickRetryPeriod
            self.retryDelay = retryDelay
        }
    }

    /// A leader's command, as far as the decisions go (the shell keeps the payload).
    public enum Command: Hashable, Sendable {
        case deploy(TaskAttempt, allocation: AllocationID)
        case cancel(TaskAttempt)
        case updatePartitionInfo(consumer: TaskAttempt)
        case releasePartitions(JobID)
        case triggerCheckpoint(TaskAttempt, checkpoint: CheckpointID)
        case endInput(TaskAttempt)
        case notifyCheckpointComplete(JobID, checkpoint: CheckpointID)
    }

    public enum Action: Hashable, Sendable {
        /// Answer the command with this refusal (it is not carried out).
        case refuse(String)
        /// Answer the command: carried out.
        case acknowledge
        /// Start running the deployed task.
        case startTask(TaskAttempt)
        /// Cancel the running task.
        case stopTask(TaskAttempt)
        /// Hand the command's payload to these running tasks.
        case forward([TaskAttempt])
        /// Release the job's kept result partitions.
        case releasePartitions(JobID)
        /// Queue this report for the leader.
        case report(TaskReport)
        /// Queue a decline of the checkpoint for the leader.
        case declineCheckpoint(TaskAttempt, checkpoint: CheckpointID, reason: String)
        /// The task ended: free what the shell holds for it.
        case closeTask(TaskAttempt)
    }

    public let taskExecutor: ResourceID
    public let configuration: Configuration
    public private(set) var fencing = TaskExecutorFencing()
    private var tasks: [TaskAttempt: TaskReport] = [:]
    private var ended: [TaskAttempt: TaskReport] = [:]
    private var endedOrder: [TaskAttempt] = []
    private var endedStart = 0
    /// When the last leader was lost (nil: never registered, or registered now).
    private var lostLeaderAt: MonotonicInstant?

    public init(taskExecutor: ResourceID, configuration: Configuration = Configuration()) {
        self.taskExecutor = taskExecutor
        self.configuration = configuration
    }

    /// The attempts this task executor runs, in order.
    public var runningAttempts: [TaskAttempt] { tasks.keys.sorted() }
    public func state(of attempt: TaskAttempt) -> ExecutionState? { tasks[attempt]?.state }

    // MARK: leaders

    /// The store names a leader at `epoch`: whether to connect to it (never back to an older one,
    /// not again to the one it is registered with).
    public func shouldConnect(toLeaderAt epoch: Epoch) -> Bool { fencing.shouldConnect(toLeaderAt: epoch) }

    /// The store or a peer showed `epoch`.
    public mutating func observed(epoch: Epoch) { fencing.observed(epoch: epoch) }

    /// The store names the leader of `epoch` while this task executor is registered: true when
    /// that is another term, and the task executor must leave the leader it registered with.
    public mutating func storeNamesLeader(at epoch: Epoch) -> Bool {
        guard let registered = fencing.registeredEpoch, epoch != registered else { return false }
        fencing.observed(epoch: epoch)
        return true
    }

    /// Registration with the leader of `epoch` completed; false when a newer epoch was seen meanwhile.
    public mutating func registered(epoch: Epoch) -> Bool {
        guard fencing.registered(epoch: epoch) else { return false }
        lostLeaderAt = nil
        return true
    }

    /// The connection to the leader ended; true when this task executor was registered (a leader
    /// was lost, not a connection attempt that failed).
    public mutating func disconnected(now: MonotonicInstant) -> Bool {
        let wasRegistered = fencing.registeredEpoch != nil
        if wasRegistered { lostLeaderAt = now }
        fencing.disconnected()
        return wasRegistered
    }

    /// How long to wait before looking for a leader again.
    public func retryDelay(now: MonotonicInstant) -> Duration {
        guard let lostLeaderAt, now.since(lostLeaderAt) < configuration.quickRetryPeriod else { return configuration.retryDelay }
        return configuration.quickRetryDelay
    }

    /// What to tell a leader at registration: every attempt held, then the last reports of ended ones.
    public var registrationReports: [TaskReport] {
        tasks.keys.sorted().map { tasks[$0]! } + endedOrder[endedStart...].compactMap { ended[$0] }
    }

    // MARK: commands

    /// A leader's command carrying `epoch`.
    public mutating func command(_ command: Command, epoch: Epoch) -> [Action] {
        if case .refuse(let reason) = fencing.admit(commandEpoch: epoch) { return [.refuse(reason)] }
        switch command {
        case .deploy(let attempt, let allocation):
            guard tasks[attempt] == nil else { return [.acknowledge] }
            tasks[attempt] = TaskReport(attempt: attempt, state: .deploying, allocation: allocation)
            return [.startTask(attempt), .acknowledge]
        case .cancel(let attempt):
            guard tasks[attempt] != nil else {
                // Unknown here (never deployed, or already gone): say so, so the leader can move on.
                return [.report(ended[attempt] ?? TaskReport(attempt: attempt, state: .canceled, allocation: 0)), .acknowledge]
            }
            return [.stopTask(attempt), .acknowledge]
        case .updatePartitionInfo(let consumer), .endInput(let consumer):
            return (tasks[consumer] == nil ? [] : [.forward([consumer])]) + [.acknowledge]
        case .releasePartitions(let job):
            return [.releasePartitions(job), .acknowledge]
        case .triggerCheckpoint(let attempt, let checkpoint):
            guard tasks[attempt]?.state == .running else {
                let state = tasks[attempt].map { "is \($0.state)" } ?? "runs no such task"
                return [.declineCheckpoint(attempt, checkpoint: checkpoint, reason: "task executor \(taskExecutor) \(state) (\(attempt))"), .acknowledge]
            }
            return [.forward([attempt]), .acknowledge]
        case .notifyCheckpointComplete(let job, _):
            let attempts = tasks.keys.filter { $0.job == job }.sorted()
            return (attempts.isEmpty ? [] : [.forward(attempts)]) + [.acknowledge]
        }
    }

    // MARK: tasks

    /// A running task changed state: report it; once it ended, keep its last report and free it.
    public mutating func taskChanged(_ attempt: TaskAttempt, to state: ExecutionState, failure: String? = nil) -> [Action] {
        guard var report = tasks[attempt] else { return [] }
        report.state = state
        report.failure = failure
        guard state.isTerminal else {
            tasks[attempt] = report
            return [.report(report)]
        }
        tasks[attempt] = nil
        remember(report)
        return [.report(report), .closeTask(attempt)]
    }

    private mutating func remember(_ report: TaskReport) {
        if ended.updateValue(report, forKey: report.attempt) == nil { endedOrder.append(report.attempt) }
        while endedOrder.count - endedStart > configuration.endedReportsKept {
            ended[endedOrder[endedStart]] = nil
            endedStart += 1
        }
        if endedStart > 1024, endedStart * 2 > endedOrder.count {
            endedOrder.removeFirst(endedStart)
            endedStart = 0
        }
    }
}
