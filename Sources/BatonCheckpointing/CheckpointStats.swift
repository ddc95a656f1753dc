public import BatonCore

/// What the operations surface shows of one job's checkpoints (Flink's CheckpointStatsTracker):
/// counts by outcome, the latest ones, and running summaries of durations and sizes. The
/// coordinator keeps it as it goes; a new leader starts it from the retained checkpoints, so
/// counts cover this leader's term plus what the store kept. Pure.
public struct CheckpointStats: Hashable, Sendable {
    public enum Status: String, Hashable, Sendable { case inProgress = "IN_PROGRESS", completed = "COMPLETED", failed = "FAILED" }

    public struct Entry: Hashable, Sendable {
        public var id: CheckpointID
        public var status: Status
        public var isSavepoint: Bool
        public var triggeredAt: WallTime
        /// When the last task acknowledged (completed ones).
        public var completedAt: WallTime?
        /// From the trigger to the last acknowledgement (completed ones).
        public var duration: Duration?
        public var sizeBytes: UInt64?
        public var failure: String?
    }

    /// Minimum, maximum and sum over the completed checkpoints counted.
    public struct Summary: Hashable, Sendable {
        public var count = 0
        public var minimum: Double = 0
        public var maximum: Double = 0
        public var sum: Double = 0
        public var average: Double { count == 0 ? 0 : sum / Double(count) }

        mutating func add(_ value: Double) {
            minimum = count == 0 ? value : min(minimum, value)
            maximum = count == 0 ? value : max(maximum, value)
            sum += value
            count += 1
        }
    }

    /// How many entries `history` keeps (Flink's `web.checkpoints.history` default is 10).
    public let historySize: Int
    public private(set) var completedCount = 0
    public private(set) var failedCount = 0
    /// The newest first.
    public private(set) var history: [Entry] = []
    public private(set) var durationMillis = Summary()
    public private(set) var sizeBytes = Summary()
    public private(set) var latestCompleted: Entry?
    public private(set) var latestSavepoint: Entry?
    public private(set) var latestFailed: Entry?

    public init(retained: [CompletedCheckpoint] = [], historySize: Int = 10) {
        self.historySize = max(1, historySize)
        for checkpoint in retained.sorted(by: { $0.id < $1.id }) {
            triggered(checkpoint.id, at: checkpoint.triggeredAt, isSavepoint: checkpoint.isSavepoint)
            completed(checkpoint)
        }
    }

    public var inProgressCount: Int { history.filter { $0.status == .inProgress }.count }
    public var totalCount: Int { completedCount + failedCount + inProgressCount }

    mutating func triggered(_ id: CheckpointID, at wall: WallTime, isSavepoint: Bool) {
        history.insert(Entry(id: id, status: .inProgress, isSavepoint: isSavepoint, triggeredAt: wall), at: 0)
        if history.count > historySize { history.removeLast(history.count - historySize) }
    }

    mutating func completed(_ checkpoint: CompletedCheckpoint) {
        let entry = Entry(
            id: checkpoint.id, status: .completed, isSavepoint: checkpoint.isSavepoint, triggeredAt: checkpoint.triggeredAt,
            completedAt: checkpoint.completedAt, duration: checkpoint.duration, sizeBytes: checkpoint.size)
        replace(entry)
        completedCount += 1
        durationMillis.add(checkpoint.duration.milliseconds)
        sizeBytes.add(Double(checkpoint.size))
        if checkpoint.isSavepoint { latestSavepoint = entry } else { latestCompleted = entry }
    }

    mutating func failed(_ id: CheckpointID, reason: String) {
        var entry = history.first { $0.id == id } ?? Entry(id: id, status: .failed, isSavepoint: false, triggeredAt: WallTime(millisecondsSince1970: 0))
        entry.status = .failed
        entry.failure = reason
        replace(entry)
        failedCount += 1
        latestFailed = entry
    }

    private mutating func replace(_ entry: Entry) {
        if let index = history.firstIndex(where: { $0.id == entry.id }) { history[index] = entry } else { history.insert(entry, at: 0) }
    }
}
