public import CoreMetrics
public import Prometheus

/// Every metric Baton exports, with its help text and (for histograms) its buckets: one catalog,
/// so that the names in the code, the exposition at `/metrics` and the README agree. Names are
/// snake_case under `baton_`; counters end in `_total`; durations are in seconds and sizes in
/// bytes. Code records through swift-metrics (`Counter`, `Gauge`, `Timer`) with these labels;
/// `MetricsExposition` bootstraps the Prometheus backend in a member process.
public enum BatonMetric: String, CaseIterable, Sendable {
    // Every master.
    case masterIsLeader = "baton_master_is_leader"
    case leaderEpoch = "baton_leader_epoch"
    case leadershipChanges = "baton_leadership_changes_total"
    case storeWritesRefused = "baton_store_writes_refused_total"
    case storeCommitSeconds = "baton_store_commit_seconds"
    // The leader.
    case failoverDetectSeconds = "baton_failover_detect_seconds"
    case failoverReconcileSeconds = "baton_failover_reconcile_seconds"
    case taskExecutorsRegistered = "baton_taskexecutors_registered"
    case slots = "baton_slots"
    case slotsAvailable = "baton_slots_available"
    case jobsRunning = "baton_jobs_running"
    case jobRestarts = "baton_job_restarts_total"
    case checkpointsCompleted = "baton_checkpoints_completed_total"
    case checkpointsFailed = "baton_checkpoints_failed_total"
    case lastCheckpointDuration = "baton_last_checkpoint_duration_seconds"
    case lastCheckpointSize = "baton_last_checkpoint_size_bytes"
    case lastCheckpointID = "baton_last_checkpoint_id"
    // Every task executor.
    case commandsRefused = "baton_taskexecutor_commands_refused_total"
    case taskRecordsIn = "baton_task_records_in_total"
    case taskRecordsOut = "baton_task_records_out_total"
    case taskBackpressured = "baton_task_backpressured_seconds_total"

    public var help: String {
        switch self {
        case .masterIsLeader: "1 while this master leads, else 0."
        case .leaderEpoch: "The epoch (fencing token) of the leader this master knows."
        case .leadershipChanges: "Changes of leader this master saw in the store."
        case .storeWritesRefused: "Store writes by this master refused by fencing (a newer term exists)."
        case .storeCommitSeconds: "Time of one fenced store transaction of the leader, from begin to durable commit."
        case .failoverDetectSeconds: "From the previous leader's last lease renewal (or its term's end) to this leader's election."
        case .failoverReconcileSeconds: "From this leader's election to every job reconciled with the task executors."
        case .taskExecutorsRegistered: "Task executors registered with the leader."
        case .slots: "Slots of the registered task executors."
        case .slotsAvailable: "Free slots of the registered task executors."
        case .jobsRunning: "Jobs not yet ended."
        case .jobRestarts: "Task attempts restarted, per job, counted by this leader."
        case .checkpointsCompleted: "Checkpoints completed under this leader, per job."
        case .checkpointsFailed: "Checkpoints aborted under this leader, per job."
        case .lastCheckpointDuration: "From trigger to durable commit, of the job's latest completed checkpoint."
        case .lastCheckpointSize: "State size of the job's latest completed checkpoint."
        case .lastCheckpointID: "Id of the job's latest completed checkpoint."
        case .commandsRefused: "Commands refused by this task executor (from a stale leader, or malformed)."
        case .taskRecordsIn: "Records a task took from its inputs."
        case .taskRecordsOut: "Records a task handed to its outputs."
        case .taskBackpressured: "Time a task waited to hand over output (its consumers were behind)."
        }
    }

    /// Histogram buckets (durations).
    var buckets: [Duration] {
        switch self {
        case .storeCommitSeconds:
            [.microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
             .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1)]
        default:
            [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
             .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30)]
        }
    }

    var descriptor: MetricNameDescriptor { MetricNameDescriptor(metricName: rawValue, helpText: help) }
}

/// The swift-metrics backend of a member process: Prometheus, with every metric's help text from
/// the catalog (a name not in it is a programming error and is exported with its name as help).
public struct BatonMetricsFactory: MetricsFactory {
    public let registry: PrometheusCollectorRegistry

    public init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    private func descriptor(_ label: String) -> MetricNameDescriptor {
        BatonMetric(rawValue: label)?.descriptor ?? MetricNameDescriptor(metricName: label, helpText: label)
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let buckets = BatonMetric(rawValue: label)?.buckets ?? BatonMetric.storeCommitSeconds.buckets
        return registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions, buckets: buckets)
    }

    public func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyRecorder(_ handler: any RecorderHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    public func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    public func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}

/// The Prometheus exposition of a member process.
public enum MetricsExposition {
    /// Makes Prometheus the process's swift-metrics backend (once per process) and returns its
    /// registry, which `/metrics` renders.
    public static func bootstrap() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(BatonMetricsFactory(registry: registry))
        return registry
    }

    /// The content type of the text exposition format.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}
