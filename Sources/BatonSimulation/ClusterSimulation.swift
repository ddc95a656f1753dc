public import BatonCore
import BatonExecutionGraph
public import BatonJobGraph
public import BatonJobMaster
public import BatonResourceManager

/// A deterministic simulation of a cluster in one process: the Dispatcher with its JobMasters and
/// the ResourceManager (the real pure instances), simulated task executors that run deployed tasks
/// through their states, a virtual clock, and injected faults (task failures, lost task
/// executors). The same seed and inputs give the same history.
///
/// It also plays the HA store: every change a JobMaster persists is replayed into a fresh
/// ExecutionGraph, which must equal the JobMaster's graph at the end (`persistenceMismatches`).
public struct ClusterSimulation: Sendable {
    public struct Configuration: Sendable {
        public var seed: UInt64
        public var mode: Dispatcher.Mode = .session
        public var taskExecutors: [TaskExecutorResources]
        /// How long each step of a task executor takes (deploy to INITIALIZING to RUNNING, cancel
        /// to CANCELED), in milliseconds.
        public var stepMillis: ClosedRange<Int> = 1...5
        /// How long a task runs before it finishes; nil: until it is canceled (streaming).
        public var taskDuration: @Sendable (JobVertexID, Int) -> Duration? = { _, _ in nil }
        /// Chance, in percent per second, that a running task fails on its own.
        public var randomFailurePercentPerSecond: Double = 0
        /// How long the master takes to notice a lost task executor (its heartbeat timeout).
        public var heartbeatTimeout: Duration = .milliseconds(50)
        public var jobMaster = JobMaster.Options()

        public init(seed: UInt64, taskExecutors: [TaskExecutorResources]) {
            self.seed = seed
            self.taskExecutors = taskExecutors
        }
    }

    /// One deployment, in order.
    public struct Deployment: Hashable, Sendable {
        public var millis: Double
        public var job: JobID
        public var vertex: JobVertexID
        public var subtask: Int
        public var attempt: Int32
        public var taskExecutor: Identifier
    }

    public struct Report: Sendable {
        public var history: [String]
        public var deployments: [Deployment]
        public var dispatcher: Dispatcher
        public var shutDown: JobState?
        /// Jobs whose persisted change records do not rebuild their ExecutionGraph.
        public var persistenceMismatches: [JobID]
        public var resourceManager: ResourceManager

        public func job(_ id: JobID) -> JobMaster? { dispatcher.job(id) }
    }

    private enum Event: Sendable {
        case submit(JobGraph)
        case cancel(JobID)
        case timer(JobID, JobMaster.Timer)
        case step(Identifier, JobID, ExecutionAttemptID, ExecutionState)
        case fail(JobID, JobVertexID, Int, reason: String)
        case failAttempt(Identifier, JobID, ExecutionAttemptID)
        case loseTaskExecutor(Identifier, returnAfter: Duration?)
        case noticeLoss(Identifier)
        case register(Identifier)
    }

    private struct SimulatedTask: Sendable {
        var state: ExecutionState
    }

    private struct SimulatedExecutor: Sendable {
        var resources: TaskExecutorResources
        var alive = true
        var tasks: [TaskKey: SimulatedTask] = [:]
    }

    private struct TaskKey: Hashable, Sendable {
        var job: JobID
        var attempt: ExecutionAttemptID
    }

    public let configuration: Configuration
    private var random: SeededRandom
    private var queue = EventQueue<Event>()
    private var now: UInt64 = 0
    private var dispatcher: Dispatcher
    private var resourceManager = ResourceManager()
    private var executors: [Identifier: SimulatedExecutor] = [:]
    private var history: [String] = []
    private var deployments: [Deployment] = []
    private var shutDown: JobState?
    private var replayed: [JobID: ExecutionGraph] = [:]
    private var replayFailures: Set<JobID> = []

    public init(_ configuration: Configuration) {
        self.configuration = configuration
        random = SeededRandom(seed: configuration.seed)
        dispatcher = Dispatcher(mode: configuration.mode, options: configuration.jobMaster)
        for resources in configuration.taskExecutors {
            executors[resources.id] = SimulatedExecutor(resources: resources)
            _ = resourceManager.register(resources)
        }
    }

    private var instant: MonotonicInstant { MonotonicInstant(nanoseconds: now) }
    private func at(_ duration: Duration) -> UInt64 { UInt64(max(0, duration.nanosecondsClamped)) }

    // MARK: inputs

    public mutating func submit(_ job: JobGraph, at time: Duration = .zero) { queue.push(.submit(job), at: at(time)) }
    public mutating func cancel(_ job: JobID, at time: Duration) { queue.push(.cancel(job), at: at(time)) }

    /// Makes the current attempt of `vertex[subtask]` fail at `time` (if it runs then).
    public mutating func failTask(_ job: JobID, _ vertex: JobVertexID, _ subtask: Int, at time: Duration, reason: String = "injected failure") {
        queue.push(.fail(job, vertex, subtask, reason: reason), at: at(time))
    }

    /// Takes a task executor away at `time` (its tasks vanish); it registers again after `returnAfter`.
    public mutating func loseTaskExecutor(_ id: Identifier, at time: Duration, returnAfter: Duration? = nil) {
        queue.push(.loseTaskExecutor(id, returnAfter: returnAfter), at: at(time))
    }

    public mutating func run(until end: Duration) -> Report {
        let limit = at(end)
        while let (time, event) = queue.pop() {
            guard time <= limit else {
                queue.push(event, at: time)
                break
            }
            now = time
            handle(event)
        }
        var mismatches: [JobID] = []
        for job in dispatcher.jobs {
            let rebuilt = replayed[job.id]
            if replayFailures.contains(job.id) || rebuilt?.executionsInOrder != job.graph.executionsInOrder {
                mismatches.append(job.id)
                if let rebuilt {
                    for (index, pair) in zip(rebuilt.executionsInOrder, job.graph.executionsInOrder).enumerated() where pair.0 != pair.1 {
                        log("replay of \(job.id) differs at \(job.graph.vertex(atFlatIndex: index)): replayed \(pair.0), live \(pair.1)")
                    }
                }
            }
        }
        return Report(
            history: history, deployments: deployments, dispatcher: dispatcher, shutDown: shutDown,
            persistenceMismatches: mismatches, resourceManager: resourceManager)
    }

    // MARK: events

    private mutating func log(_ line: String) { history.append("\(Double(now) / 1e6)ms \(line)") }

    private mutating func step() -> UInt64 { UInt64(Int.random(in: configuration.stepMillis, using: &random)) * 1_000_000 }

    private mutating func handle(_ event: Event) {
        let current = instant
        switch event {
        case .submit(let graph):
            do {
                replayed[graph.id] = ExecutionGraph(jobGraph: graph)
                let actions = try dispatcher.submit(graph, taskExecutors: executors.values.map(\.resources.total), now: instant)
                log("submitted \(graph.id)")
                carryOut(actions)
            } catch {
                log("submission of \(graph.id) refused: \(error)")
            }
        case .cancel(let job):
            if let actions = try? dispatcher.cancel(job, now: instant) { carryOut(actions) }
        case .timer(let job, let timer):
            carryOut(dispatcher.route(job) { $0.timerFired(timer, now: current) })
        case .step(let executor, let job, let attempt, let state):
            advance(executor, job, attempt, to: state)
        case .fail(let job, let vertexID, let subtask, let reason):
            guard let master = dispatcher.job(job), let jobVertex = master.graph.jobVertex(vertexID) else { return }
            let vertex = ExecutionVertexID(jobVertex: jobVertex.index, subtask: subtask)
            let execution = master.graph.execution(vertex)
            guard let location = execution.location, executors[location.taskExecutor]?.alive == true,
                executors[location.taskExecutor]?.tasks[TaskKey(job: job, attempt: master.graph.attemptID(vertex))] != nil
            else { return }
            failAttempt(location.taskExecutor, job, master.graph.attemptID(vertex), reason: reason)
        case .failAttempt(let executor, let job, let attempt):
            guard executors[executor]?.tasks[TaskKey(job: job, attempt: attempt)]?.state == .running else { return }
            failAttempt(executor, job, attempt, reason: "random failure")
        case .loseTaskExecutor(let id, let returnAfter):
            guard executors[id]?.alive == true else { return }
            executors[id]!.alive = false
            executors[id]!.tasks.removeAll()
            log("task executor \(id) lost")
            queue.push(.noticeLoss(id), at: now + at(configuration.heartbeatTimeout))
            if let returnAfter { queue.push(.register(id), at: now + at(returnAfter)) }
        case .noticeLoss(let id):
            log("master notices that task executor \(id) is gone")
            for action in resourceManager.taskExecutorLost(id) {
                if case .lost(let allocation) = action {
                    carryOut(dispatcher.route(allocation.job) { $0.slotLost(allocation, now: current) })
                }
            }
            for job in dispatcher.submissionOrder {
                carryOut(dispatcher.route(job) { $0.taskExecutorLost(id, now: current) })
            }
        case .register(let id):
            guard let executor = executors[id] else { return }
            executors[id]!.alive = true
            log("task executor \(id) registers")
            resourceActions(resourceManager.register(executor.resources))
        }
    }

    private mutating func failAttempt(_ executor: Identifier, _ job: JobID, _ attempt: ExecutionAttemptID, reason: String) {
        let current = instant
        executors[executor]!.tasks[TaskKey(job: job, attempt: attempt)] = nil
        log("\(job) task \(attempt) fails: \(reason)")
        carryOut(dispatcher.route(job) { $0.taskStateChanged(attempt, to: .failed, failure: reason, now: current) })
    }

    /// A simulated task executor moves a task to `state` and reports it.
    private mutating func advance(_ executor: Identifier, _ job: JobID, _ attempt: ExecutionAttemptID, to state: ExecutionState) {
        let current = instant
        let key = TaskKey(job: job, attempt: attempt)
        guard executors[executor]?.alive == true, let task = executors[executor]!.tasks[key] else { return }
        if state == .canceled {
            executors[executor]!.tasks[key] = nil
        } else {
            guard task.state != .canceling, !task.state.isTerminal else { return }
            executors[executor]!.tasks[key]!.state = state
            if state == .finished { executors[executor]!.tasks[key] = nil }
        }
        carryOut(dispatcher.route(job) { $0.taskStateChanged(attempt, to: state, now: current) })
        switch state {
        case .initializing:
            queue.push(.step(executor, job, attempt, .running), at: now + step())
        case .running:
            let vertexID = dispatcher.job(job)!.graph.jobVertices[Int(attempt.vertex.jobVertex)].id
            let duration = configuration.taskDuration(vertexID, Int(attempt.vertex.subtask)).map(at)
            if let duration { queue.push(.step(executor, job, attempt, .finished), at: now + duration) }
            if configuration.randomFailurePercentPerSecond > 0 {
                let rate = configuration.randomFailurePercentPerSecond / 100
                let uniform = Double.random(in: Double.ulpOfOne..<1, using: &random)
                let failAfter = UInt64(-Glibc.log(uniform) / rate * 1e9)
                if duration.map({ failAfter < $0 }) ?? true {
                    queue.push(.failAttempt(executor, job, attempt), at: now + failAfter)
                }
            }
        default:
            break
        }
    }

    /// Carries out actions first in, first out: what an event's result causes comes after every
    /// action of that event, so that persisted changes are written in the order they happened.
    private mutating func carryOut(_ actions: [Dispatcher.Action]) {
        var pending = actions[...]
        while let action = pending.popFirst() {
            switch action {
            case .job(let job, let jobAction):
                pending += perform(jobAction, of: job)
            case .jobEnded(let job, let state):
                log("job \(job) ended \(state)")
            case .shutDown(let state):
                shutDown = state
                log("per-job cluster shuts down: \(state)")
            }
        }
    }

    private mutating func perform(_ action: JobMaster.Action, of job: JobID) -> [Dispatcher.Action] {
        switch action {
        case .requestSlot(let request):
            return resourceDispatch(resourceManager.request(request))
        case .cancelSlotRequest(let id):
            resourceManager.cancelRequest(id, of: job)
        case .releaseSlot(let id):
            return resourceDispatch(resourceManager.release(id))
        case .deploy(let deployment):
            deployments.append(
                Deployment(
                    millis: Double(now) / 1e6, job: job, vertex: deployment.jobVertex, subtask: deployment.subtask,
                    attempt: deployment.attempt.attempt, taskExecutor: deployment.location.taskExecutor))
            let executor = deployment.location.taskExecutor
            guard executors[executor]?.alive == true else { return [] }
            executors[executor]!.tasks[TaskKey(job: job, attempt: deployment.attempt)] = SimulatedTask(state: .deploying)
            queue.push(.step(executor, job, deployment.attempt, .initializing), at: now + step())
        case .cancelTask(let attempt, let location):
            let key = TaskKey(job: job, attempt: attempt)
            if executors[location.taskExecutor]?.alive == true, executors[location.taskExecutor]!.tasks[key] != nil {
                executors[location.taskExecutor]!.tasks[key]!.state = .canceling
                queue.push(.step(location.taskExecutor, job, attempt, .canceled), at: now + step())
            }
        case .startTimer(let timer, let after):
            queue.push(.timer(job, timer), at: now + at(after))
        case .persist(let change):
            do {
                try replayed[job]?.apply(change)
            } catch {
                replayFailures.insert(job)
                log("replay of \(job) failed: \(error)")
            }
        case .jobStateChanged(let state, let reason):
            log("job \(job) is \(state)" + (reason.map { ": \($0)" } ?? ""))
        }
        return []
    }

    private mutating func resourceActions(_ actions: [ResourceManager.Action]) {
        carryOut(resourceDispatch(actions))
    }

    private mutating func resourceDispatch(_ actions: [ResourceManager.Action]) -> [Dispatcher.Action] {
        let current = instant
        var result: [Dispatcher.Action] = []
        for action in actions {
            switch action {
            case .allocated(let allocation):
                result += dispatcher.route(allocation.job) { $0.slotAllocated(allocation, now: current) }
            case .pending(let shortage):
                result += dispatcher.route(shortage.request.job) { $0.slotPending(request: shortage.request.id, shortage: shortage.description) }
            case .lost(let allocation):
                result += dispatcher.route(allocation.job) { $0.slotLost(allocation, now: current) }
            }
        }
        return result
    }
}

#if canImport(Glibc)
import Glibc
#endif
