import BatonCheckpointing
import BatonCore
import BatonJobGraph
import BatonJobManager
import BatonMetrics
import CoreMetrics

/// What one master records for `/metrics` (names and help in `BatonMetric`): its role, the
/// leader's epoch as it knows it, leader changes it saw, and its fenced store writes.
struct MasterMetrics: Sendable {
    let isLeader: Gauge
    let leaderEpoch = Gauge(label: BatonMetric.leaderEpoch.rawValue)
    let leadershipChanges = Counter(label: BatonMetric.leadershipChanges.rawValue)
    let store = StoreMetrics()

    init(member: MemberID) {
        isLeader = Gauge(label: BatonMetric.masterIsLeader.rawValue, dimensions: [("master", member.rawValue)])
        isLeader.record(0)
        leaderEpoch.record(0)
    }

    func lead(_ leads: Bool) { isLeader.record(leads ? 1 : 0) }
    func knowEpoch(_ epoch: Epoch) { leaderEpoch.record(Int64(clamping: epoch.rawValue)) }
    func changedLeader() { leadershipChanges.increment() }
}

/// A master's fenced store writes: refused ones, and how long the leader's commits take.
struct StoreMetrics: Sendable {
    let writesRefused = Counter(label: BatonMetric.storeWritesRefused.rawValue)
    let commit = Timer(label: BatonMetric.storeCommitSeconds.rawValue)

    func committed(in duration: Duration) { commit.recordNanoseconds(duration.nanosecondsClamped) }
    func refused() { writesRefused.increment() }
}

/// What the leader records, from its JobManager's state and notices: the cluster's task executors
/// and slots, running jobs, restarts, checkpoints, and how the failover that made it leader went.
struct LeaderMetrics: Sendable {
    let taskExecutors = Gauge(label: BatonMetric.taskExecutorsRegistered.rawValue)
    let slotsTotal = Gauge(label: BatonMetric.slots.rawValue)
    let slotsAvailable = Gauge(label: BatonMetric.slotsAvailable.rawValue)
    let jobsRunning = Gauge(label: BatonMetric.jobsRunning.rawValue)
    let failoverDetect = Timer(label: BatonMetric.failoverDetectSeconds.rawValue)
    let failoverReconcile = Timer(label: BatonMetric.failoverReconcileSeconds.rawValue)
    let store = StoreMetrics()

    static func labels(_ job: JobID) -> [(String, String)] { [("job", job.rawValue)] }

    /// The gauges and per-job restarts from the leader's status (restarts counted up by what is new
    /// since `counted`, which the caller keeps).
    func refresh(_ report: (executors: Int, slots: Int, free: Int, running: Int), restarts: [JobID: Int], counted: inout [JobID: Int]) {
        taskExecutors.record(report.executors)
        slotsTotal.record(report.slots)
        slotsAvailable.record(report.free)
        jobsRunning.record(report.running)
        for (job, total) in restarts where total > counted[job, default: 0] {
            Counter(label: BatonMetric.jobRestarts.rawValue, dimensions: Self.labels(job)).increment(by: total - counted[job, default: 0])
            counted[job] = total
        }
    }

    /// The failover that made this master leader: detection from the previous leader's last
    /// renewal (as the audit measures it), reconciliation from the election.
    func failedOver(_ record: ReconciliationRecord, previousRenewal: WallTime?) {
        if let renewed = previousRenewal { failoverDetect.recordMilliseconds(max(0, record.electedAt.millis(since: renewed))) }
        if let millis = record.reconcileMillis { failoverReconcile.recordNanoseconds(Int64(millis * 1_000_000)) }
    }

    func noticed(_ notice: JobManager.Notice) {
        switch notice {
        case .checkpointCompleted(let job, let checkpoint):
            let labels = Self.labels(job)
            Counter(label: BatonMetric.checkpointsCompleted.rawValue, dimensions: labels).increment()
            Gauge(label: BatonMetric.lastCheckpointDuration.rawValue, dimensions: labels).record(checkpoint.duration.milliseconds / 1000)
            Gauge(label: BatonMetric.lastCheckpointSize.rawValue, dimensions: labels).record(Double(checkpoint.size))
            Gauge(label: BatonMetric.lastCheckpointID.rawValue, dimensions: labels).record(Double(checkpoint.id.rawValue))
        case .checkpointAborted(let job, _, _):
            Counter(label: BatonMetric.checkpointsFailed.rawValue, dimensions: Self.labels(job)).increment()
        default:
            break
        }
    }
}
