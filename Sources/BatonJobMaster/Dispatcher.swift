public import BatonCore
public import BatonJobGraph

/// Accepts jobs and runs a JobMaster per job. In session mode many jobs share the cluster's
/// slots; in per-job mode the dispatcher runs one job and asks the cluster to shut down with the
/// job's outcome when it ends.
public struct Dispatcher: Sendable {
    public enum Mode: String, Hashable, Sendable {
        case session
        case perJob = "per-job"
    }

    public struct DispatcherError: Error, Hashable, Sendable, CustomStringConvertible {
        public var message: String
        public var invalidJob: JobGraphError?
        public var description: String { message }
    }

    public enum Action: Hashable, Sendable {
        /// An action of one job's JobMaster.
        case job(JobID, JobMaster.Action)
        case jobEnded(JobID, JobState)
        /// Per-job mode: the only job ended; the cluster shuts down with its outcome.
        case shutDown(JobState)
    }

    public let mode: Mode
    private var masters: [JobID: JobMaster] = [:]
    public private(set) var submissionOrder: [JobID] = []
    /// In per-job mode, the job this cluster runs: submitted to it, or recovered as submitted to
    /// a per-job cluster. Its end ends the cluster.
    public private(set) var perJobTarget: JobID?
    private let options: JobMaster.Options

    public init(mode: Mode, options: JobMaster.Options = JobMaster.Options()) {
        self.mode = mode
        self.options = options
    }

    public var jobs: [JobMaster] { submissionOrder.compactMap { masters[$0] } }
    public func job(_ id: JobID) -> JobMaster? { masters[id] }

    /// Validates `graph` (against the task executors' resources when given), creates its
    /// JobMaster and starts it.
    public mutating func submit(_ graph: JobGraph, taskExecutors: [ResourceProfile]? = nil, now: MonotonicInstant)
        throws(DispatcherError) -> [Action]
    {
        if let running = masters[graph.id], !running.state.isTerminal {
            throw DispatcherError(message: "job '\(graph.id)' is already running (\(running.state)); it can run again once it ended")
        }
        if mode == .perJob, let target = perJobTarget, target != graph.id, masters[target]?.state.isTerminal == false {
            throw DispatcherError(message: "this per-job cluster runs job '\(target)' only, not '\(graph.id)'")
        }
        // A new run of a job id whose earlier run ended takes its place.
        if masters[graph.id] != nil { submissionOrder.removeAll { $0 == graph.id } }
        do {
            try graph.validate(taskExecutors: taskExecutors)
        } catch {
            throw DispatcherError(message: "job '\(graph.id)' is invalid: \(error)", invalidJob: error)
        }
        masters[graph.id] = JobMaster(jobGraph: graph, options: options)
        submissionOrder.append(graph.id)
        if mode == .perJob { perJobTarget = graph.id }
        return route(graph.id) { $0.start(now: now) }
    }

    /// Takes over a job a previous leader ran (its JobMaster rebuilt from the store) and carries
    /// on what was under way.
    public mutating func recover(_ master: JobMaster, asPerJobTarget: Bool = false, now: MonotonicInstant) -> [Action] {
        guard masters[master.id] == nil else { return [] }
        masters[master.id] = master
        submissionOrder.append(master.id)
        if mode == .perJob, asPerJobTarget { perJobTarget = master.id }
        return route(master.id) { $0.recover(now: now) }
    }

    /// Forgets an ended job (the history let it go).
    public mutating func forget(_ id: JobID) {
        guard masters[id]?.state.isTerminal == true else { return }
        masters[id] = nil
        submissionOrder.removeAll { $0 == id }
    }

    /// Cancels a job.
    public mutating func cancel(_ id: JobID, now: MonotonicInstant) throws(DispatcherError) -> [Action] {
        guard masters[id] != nil else { throw DispatcherError(message: "no job '\(id)'") }
        return route(id) { $0.cancel(now: now) }
    }

    /// Hands an event to one job's JobMaster and tags its actions; adds `jobEnded` (and, in
    /// per-job mode, `shutDown`) when the job reaches a terminal state. Unknown jobs are ignored.
    /// The JobMaster is changed where it is stored (never copied out and back: a copy would cost
    /// a job's whole execution table on every report).
    public mutating func route(_ id: JobID, _ event: (inout JobMaster) -> [JobMaster.Action]) -> [Action] {
        guard let wasTerminal = masters[id]?.state.isTerminal else { return [] }
        let actions = event(&masters[id]!).map { Action.job(id, $0) }
        let state = masters[id]!.state
        guard !wasTerminal, state.isTerminal else { return actions }
        var ended = actions + [.jobEnded(id, state)]
        // A per-job cluster ends with its job (any job, when it does not know which it runs).
        if mode == .perJob, perJobTarget == nil || perJobTarget == id { ended.append(.shutDown(state)) }
        return ended
    }
}
