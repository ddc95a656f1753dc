import BatonCore
import BatonDataPlane
import BatonMetrics
import CoreMetrics

/// A running task's records in and out and the time it waited to hand over output (Flink's
/// numRecordsIn, numRecordsOut and backPressuredTime), as swift-metrics counters labelled by job,
/// vertex and subtask. The task publishes what is new once per batch; its series go when it ends.
final class TaskIOMetrics: @unchecked Sendable {
    // @unchecked: used by the one Swift task that runs the task.
    private let recordsIn: Counter
    private let recordsOut: Counter
    private let backpressured: FloatingPointCounter
    private var countedOut = 0
    private var countedWait: Duration = .zero

    init(_ spec: TaskSpec) {
        let labels = [("job", spec.attempt.job.rawValue), ("vertex", spec.vertexID.rawValue), ("subtask", "\(spec.attempt.subtask)")]
        recordsIn = Counter(label: BatonMetric.taskRecordsIn.rawValue, dimensions: labels)
        recordsOut = Counter(label: BatonMetric.taskRecordsOut.rawValue, dimensions: labels)
        backpressured = FloatingPointCounter(label: BatonMetric.taskBackpressured.rawValue, dimensions: labels)
    }

    func took(_ records: Int) { recordsIn.increment(by: records) }

    /// Counts what the writers handed over, and waited, since the last call.
    func publish(_ writers: [ResultPartitionWriter]) {
        var out = 0
        var wait = Duration.zero
        for writer in writers {
            out += writer.recordsWritten
            wait += writer.handOverWait
        }
        if out > countedOut {
            recordsOut.increment(by: out - countedOut)
            countedOut = out
        }
        if wait > countedWait {
            let (seconds, attoseconds) = (wait - countedWait).components
            backpressured.increment(by: Double(seconds) + Double(attoseconds) / 1e18)
            countedWait = wait
        }
    }

    /// The task ended: its series leave the exposition.
    func remove() {
        recordsIn.destroy()
        recordsOut.destroy()
        backpressured.destroy()
    }
}
