public import BatonCore
public import BatonExecutionGraph
public import BatonJobGraph
public import BatonResourceManager
public import BatonScheduling

/// The JobMaster of one job: its ExecutionGraph, scheduler, slot sharing, failover and restarts,
/// as a pure state machine. Events come in with `now`; actions come out for the shell to carry
/// out (ask the ResourceManager for slots, deploy and cancel tasks on task executors, start
/// timers, persist every change of the graph to the HA store).
///
/// Behaviour:
/// - Scheduling follows the job's `SchedulingStrategy`. A scheduled task waits for its shared
///   slot: subtask i of every vertex of a slot sharing group shares slot i of the group, which is
///   requested once (its profile is the sum of the group's vertices, or a default slot).
/// - A failed task goes to the `FailoverStrategy`, which names the tasks to restart; running ones
///   are canceled, and once all are stopped and the restart strategy's backoff has passed, each
///   gets a new attempt and is scheduled again. A failover that restarts every task puts the job
///   in RESTARTING meanwhile. Failures during a pending restart join it.
/// - When the restart strategy allows no more restarts the job fails: every task is canceled and
///   the job ends FAILED. `cancel` ends it CANCELED. When every task finished, it ends FINISHED.
/// - Slots are released when the job ends, and in batch jobs as soon as every task of a shared
///   slot finished. A slot request that is not served within `slotRequestTimeout` fails a task.
/// - Reports about an attempt that is not the current one are ignored (returned as no action).
public struct JobMaster: Sendable {
    public struct Options: Sendable {
        public var slotRequestTimeout: Duration
        public init(slotRequestTimeout: Duration = .seconds(300)) { self.slotRequestTimeout = slotRequestTimeout }
    }

    public enum Timer: Hashable, Sendable {
        case restart(generation: UInt64)
        case slotRequest(UInt64)
    }

    /// A task to start on a task executor.
    public struct Deployment: Hashable, Sendable {
        public var attempt: ExecutionAttemptID
        public var jobVertex: JobVertexID
        public var subtask: Int
        public var parallelism: Int
        public var location: TaskLocation
    }

    public enum Action: Hashable, Sendable {
        case requestSlot(SlotRequest)
        case cancelSlotRequest(UInt64)
        case releaseSlot(AllocationID)
        case deploy(Deployment)
        case cancelTask(ExecutionAttemptID, TaskLocation)
        case startTimer(Timer, after: Duration)
        case persist(ExecutionGraphChange)
        case jobStateChanged(JobState, reason: String?)
        /// The restart strategy counted a failure: its budget must be durable before the
        /// restart it allows (a new leader goes on with it).
        case restartBudgetChanged(RestartBudget)
        /// Every consumer of the blocking `results` the finished `attempt` wrote finished: its
        /// task executor drops them (memory and spill files); a consumer that must run again
        /// later runs the producer again too.
        case releasePartitions(ExecutionAttemptID, TaskLocation, results: [Int])
    }

    private struct SlotKey: Hashable, Sendable {
        var group: Int32
        var index: Int32
    }

    private struct SharedSlot: Sendable {
        var request: UInt64?
        var allocation: SlotAllocation?
        var waiting: [ExecutionVertexID] = []
        var lastShortage: String?
    }

    private struct PendingRestart: Sendable {
        var tasks: Set<ExecutionVertexID>
        var timerGeneration: UInt64?
    }

    public let jobGraph: JobGraph
    public private(set) var graph: ExecutionGraph
    public private(set) var state: JobState = .created
    /// Attempts restarted so far (all causes).
    public private(set) var restarts = 0
    /// Why the job failed, when it did.
    public private(set) var failureReason: String?
    /// The latest task failures this JobMaster handled, the newest first (Flink's exception
    /// history), at most `failureHistorySize`.
    public private(set) var failures: [TaskFailure] = []
    public static let failureHistorySize = 20

    /// A task failure as the job's exception history shows it.
    public struct TaskFailure: Hashable, Sendable {
        public var vertex: ExecutionVertexID
        public var attempt: Int
        public var cause: String
        public var taskExecutor: ResourceID?
        public var at: MonotonicInstant
    }

    private let options: Options
    private var scheduling: any SchedulingStrategy
    private let failover: any FailoverStrategy
    private var restartStrategy: any RestartBackoffTimeStrategy
    /// What the restart strategy has counted (kept in the job's record).
    public var restartBudget: RestartBudget { restartStrategy.budget }
    private let sharing: SlotSharingGroups
    private let groupOfJobVertex: [Int32]
    private var slots: [SlotKey: SharedSlot] = [:]
    private var slotOfRequest: [UInt64: SlotKey] = [:]
    private var nextRequest: UInt64 = 1
    private var nextTimer: UInt64 = 1
    private var lostTaskExecutors: Set<ResourceID> = []
    private var pendingRestart: PendingRestart?

    /// A JobMaster for `jobGraph` (valid), with its configured strategies unless others are given.
    public init(
        jobGraph: JobGraph, scheduling: (any SchedulingStrategy)? = nil, failover: (any FailoverStrategy)? = nil,
        options: Options = Options()
    ) {
        self.jobGraph = jobGraph
        let graph = ExecutionGraph(jobGraph: jobGraph)
        self.graph = graph
        self.options = options
        self.scheduling = scheduling ?? jobGraph.configuration.scheduling.makeBuiltIn() ?? EagerSchedulingStrategy()
        self.failover = failover ?? jobGraph.configuration.failover.make(for: graph)
        self.restartStrategy = jobGraph.configuration.restart.makeStrategy()
        let sharing = SlotSharingGroups(jobGraph)
        self.sharing = sharing
        self.groupOfJobVertex = graph.jobVertices.map { vertex in
            Int32(sharing.groups.firstIndex { $0.vertices.contains(vertex.id) }!)
        }
    }

    /// The JobMaster of a job a previous leader ran, from its recovered graph: the new leader
    /// takes it over without restarting what runs. Shared slots are rebuilt from where the
    /// graph's live attempts run (`adoptedAllocations`); `recover` then carries on what the
    /// previous leader left under way. Restarts so far are the attempts the graph counts.
    public init(
        recovering jobGraph: JobGraph, graph: ExecutionGraph, state: JobState, failureReason: String?, restartBudget: RestartBudget? = nil,
        scheduling: (any SchedulingStrategy)? = nil, failover: (any FailoverStrategy)? = nil, options: Options = Options()
    ) {
        self.init(jobGraph: jobGraph, scheduling: scheduling, failover: failover, options: options)
        if let restartBudget { restartStrategy.resume(from: restartBudget) }
        self.graph = graph
        self.state = state
        self.failureReason = failureReason
        restarts = graph.allVertices.reduce(0) { $0 + Int(graph.execution($1).attempt) }
        // Only what runs holds a slot: an ended job holds none, and a task waiting to be
        // restarted asks for one again.
        for vertex in graph.allVertices where !state.isTerminal {
            let execution = graph.execution(vertex)
            guard let location = execution.location, [.deploying, .initializing, .running, .canceling].contains(execution.state) else { continue }
            let key = slotKey(vertex)
            guard slots[key]?.allocation == nil else { continue }
            let group = sharing.groups[Int(key.group)]
            slots[key, default: SharedSlot()].allocation = SlotAllocation(
                id: location.allocation, request: 0, job: jobGraph.id, taskExecutor: location.taskExecutor, profile: group.slotProfile ?? .zero)
        }
    }

    /// The shared slots this JobMaster holds on `taskExecutor` (after a recovery: what the
    /// ResourceManager must count as taken when that task executor registers again).
    public func allocations(on taskExecutor: ResourceID) -> [SlotAllocation] {
        slots.values.compactMap(\.allocation).filter { $0.taskExecutor == taskExecutor }.sorted { $0.id < $1.id }
    }

    /// Whether the slot sharing group of `allocation` asks for a specific profile (otherwise a
    /// task executor's default slot).
    public func hasSpecifiedProfile(_ allocation: SlotAllocation) -> Bool {
        guard let key = slots.first(where: { $0.value.allocation?.id == allocation.id })?.key else { return false }
        return sharing.groups[Int(key.group)].slotProfile != nil
    }

    /// Every attempt the job expects a task executor to hold: deployed and not ended.
    public var liveAttempts: [(attempt: ExecutionAttemptID, location: TaskLocation, state: ExecutionState)] {
        graph.allVertices.compactMap { vertex in
            let execution = graph.execution(vertex)
            guard let location = execution.location, [.deploying, .initializing, .running, .canceling].contains(execution.state) else { return nil }
            return (graph.attemptID(vertex), location, execution.state)
        }
    }

    /// Carries on after a recovery what the previous leader left under way: tasks that stopped
    /// for a restart are restarted (after the backoff), tasks waiting for a slot ask again, tasks
    /// not scheduled yet are scheduled as the strategy says, and a failing or cancelling job ends
    /// once its tasks stopped.
    public mutating func recover(now: MonotonicInstant) -> [Action] {
        switch state {
        case .created:
            return start(now: now)
        case .running, .restarting:
            var actions: [Action] = []
            var stopped = Set(graph.allVertices.filter { [.failed, .canceled, .canceling].contains(graph.execution($0).state) })
            // The previous leader may have died between recording a failure and canceling the
            // rest of what its failover strategy names: ask the strategy again.
            let context = FailoverContext(graph: graph, lostTaskExecutors: lostTaskExecutors)
            for vertex in graph.allVertices where graph.execution(vertex).state == .failed {
                stopped.formUnion(failover.tasksToRestart(failed: vertex, cause: .taskFailed("failed under the previous leader"), context: context))
            }
            if !stopped.isEmpty {
                pendingRestart = PendingRestart(tasks: stopped)
                for vertex in stopped.sorted() { actions += cancelTask(vertex) }
                actions += afterTaskStopped(now: now)
            } else if state == .restarting {
                // The restart was made (new attempts recorded) but the job's state was not
                // written with it: nothing is left to restart, the job runs.
                actions += setState(.running, reason: nil)
            }
            for vertex in graph.allVertices where graph.execution(vertex).state == .scheduled {
                actions += placeInSlot(vertex)
            }
            let waiting = pendingRestart?.tasks ?? []
            actions += schedule(scheduling.startScheduling(graph).filter { !waiting.contains($0) }, now: now)
            for vertex in graph.allVertices where graph.execution(vertex).state == .finished {
                actions += schedule(scheduling.onExecutionStateChange(vertex, .finished, graph).filter { !waiting.contains($0) }, now: now)
            }
            actions += finishIfDone()
            return actions
        case .failing, .cancelling:
            // The previous leader may have died before canceling every task.
            return cancelAll() + endIfStopped()
        case .failed, .canceled, .finished:
            return []
        }
    }

    /// A task executor reported, on registering with a new leader, the state of one of this
    /// job's current attempts: the graph catches up with the states the previous leader did not
    /// record (deploying to running, to finished), a task that should be canceled is canceled
    /// again, and a failure goes to failover.
    public mutating func reconcile(
        _ attempt: ExecutionAttemptID, reported: ExecutionState, failure: String?, location: TaskLocation, now: MonotonicInstant
    ) -> [Action] {
        let vertex = attempt.vertex
        guard graph.contains(vertex), graph.execution(vertex).attempt == attempt.attempt else { return [] }
        let current = graph.execution(vertex).state
        if current == .canceling && !reported.isTerminal {
            return [.cancelTask(attempt, location)]
        }
        if current.isTerminal && !reported.isTerminal {
            // Recorded as ended (its task executor was taken for lost) but still running there.
            return [.cancelTask(attempt, location)]
        }
        if current == .canceling && reported.isTerminal {
            return taskStateChanged(attempt, to: reported == .canceled ? .canceled : reported, failure: failure, now: now)
        }
        let order: [ExecutionState] = [.deploying, .initializing, .running]
        switch reported {
        case .deploying, .initializing, .running, .finished:
            guard let from = order.firstIndex(of: current) else { return [] }
            var steps = Array(order[(from + 1)...].prefix { reported == .finished || order.firstIndex(of: $0)! <= order.firstIndex(of: reported)! })
            if reported == .finished { steps.append(.finished) }
            return steps.flatMap { taskStateChanged(attempt, to: $0, now: now) }
        case .canceled where current == .canceling:
            return taskStateChanged(attempt, to: .canceled, now: now)
        case .failed, .canceled:
            return taskStateChanged(attempt, to: .failed, failure: failure ?? "the task executor reported it \(reported)", now: now)
        case .created, .scheduled, .canceling:
            return []
        }
    }

    public var id: JobID { jobGraph.id }

    /// How many shared slots the job holds now.
    public var allocatedSlots: Int { slots.values.filter { $0.allocation != nil }.count }

    // MARK: events

    public mutating func start(now: MonotonicInstant) -> [Action] {
        guard state == .created else { return [] }
        var actions = setState(.running, reason: nil)
        actions += schedule(scheduling.startScheduling(graph), now: now)
        return actions
    }

    /// The ResourceManager allocated the slot of request `allocation.request`.
    public mutating func slotAllocated(_ allocation: SlotAllocation, now: MonotonicInstant) -> [Action] {
        guard let key = slotOfRequest.removeValue(forKey: allocation.request), slots[key]?.request == allocation.request,
            state == .running || state == .restarting
        else { return [.releaseSlot(allocation.id)] }
        slots[key]!.request = nil
        slots[key]!.allocation = allocation
        slots[key]!.lastShortage = nil
        let waiting = slots[key]!.waiting
        slots[key]!.waiting = []
        var actions: [Action] = []
        for vertex in waiting where graph.execution(vertex).state == .scheduled {
            actions += deploy(vertex, on: allocation)
        }
        return actions
    }

    /// The ResourceManager could not serve a request yet; `shortage` says why.
    public mutating func slotPending(request: UInt64, shortage: String) -> [Action] {
        if let key = slotOfRequest[request] { slots[key]?.lastShortage = shortage }
        return []
    }

    /// A task executor reports a state of one of this job's attempts.
    public mutating func taskStateChanged(
        _ attempt: ExecutionAttemptID, to newState: ExecutionState, failure: String? = nil, now: MonotonicInstant
    ) -> [Action] {
        let vertex = attempt.vertex
        guard graph.contains(vertex), graph.execution(vertex).attempt == attempt.attempt else { return [] }
        let current = graph.execution(vertex).state
        if current == .canceling && (newState == .failed || newState == .finished) {
            // It ended before the cancellation reached it: for the restart or the cancellation
            // under way, it is stopped, and its failure is not a new one.
            var actions: [Action] = [.persist(mustTransition(attempt, to: newState == .failed ? .failed : .canceled))]
            actions += afterTaskStopped(now: now)
            return actions
        }
        if newState == .failed {
            guard !current.isTerminal else { return [] }
            var actions: [Action] = [.persist(mustTransition(attempt, to: .failed))]
            actions += handleFailure(vertex, cause: .taskFailed(failure ?? "unknown failure"), now: now)
            return actions
        }
        // A report this attempt's state cannot take (a repeated or late report) changes nothing.
        guard current.canTransition(to: newState) else { return [] }
        var actions: [Action] = [.persist(mustTransition(attempt, to: newState))]
        switch newState {
        case .initializing, .running:
            if state == .running || state == .restarting {
                actions += schedule(scheduling.onExecutionStateChange(vertex, newState, graph), now: now)
            }
        case .finished:
            if state == .running || state == .restarting {
                actions += schedule(scheduling.onExecutionStateChange(vertex, newState, graph), now: now)
            }
            actions += releaseSlotIfDone(slotKey(vertex))
            actions += finishIfDone()
            // The job's end releases everything; before it, what every consumer has read.
            if !state.isTerminal { actions += releaseConsumedPartitions(after: vertex) }
        case .canceled:
            actions += afterTaskStopped(now: now)
        default:
            break
        }
        return actions
    }

    /// A task executor is gone: its tasks failed, and the blocking results it held are lost.
    public mutating func taskExecutorLost(_ taskExecutor: ResourceID, now: MonotonicInstant) -> [Action] {
        lostTaskExecutors.insert(taskExecutor)
        var actions: [Action] = []
        for (key, slot) in slots where slot.allocation?.taskExecutor == taskExecutor { slots[key]!.allocation = nil }
        var failed: [(ExecutionVertexID, FailureCause)] = []
        for vertex in graph.allVertices {
            let execution = graph.execution(vertex)
            guard execution.location?.taskExecutor == taskExecutor else { continue }
            let attempt = graph.attemptID(vertex)
            switch execution.state {
            case .canceling:
                actions.append(.persist(mustTransition(attempt, to: .canceled)))
            case .deploying, .initializing, .running:
                actions.append(.persist(mustTransition(attempt, to: .failed)))
                failed.append((vertex, .taskExecutorLost(taskExecutor)))
            case .finished where hasUnfinishedBlockingConsumers(vertex):
                failed.append((vertex, .partitionLost(ResultPartitionID(result: blockingOutput(of: vertex)!, partition: Int(vertex.subtask)))))
            default:
                break
            }
        }
        for (vertex, cause) in failed { actions += handleFailure(vertex, cause: cause, now: now) }
        actions += afterTaskStopped(now: now)
        return actions
    }

    /// A task executor registered (again): it is no longer taken for lost.
    public mutating func taskExecutorRegistered(_ taskExecutor: ResourceID) {
        lostTaskExecutors.remove(taskExecutor)
    }

    /// The ResourceManager lost an allocation (its task executor is gone).
    public mutating func slotLost(_ allocation: SlotAllocation, now: MonotonicInstant) -> [Action] {
        for (key, slot) in slots where slot.allocation?.id == allocation.id { slots[key]!.allocation = nil }
        return []
    }

    public mutating func timerFired(_ timer: Timer, now: MonotonicInstant) -> [Action] {
        switch timer {
        case .restart(let generation):
            guard var pending = pendingRestart, pending.timerGeneration == generation else { return [] }
            guard pending.tasks.allSatisfy({ isStopped(graph.execution($0).state) }) else {
                pending.timerGeneration = nil  // a failure joined meanwhile: wait for its tasks to stop
                pendingRestart = pending
                return []
            }
            return restart(pending.tasks, now: now)
        case .slotRequest(let request):
            guard let key = slotOfRequest[request], slots[key]?.request == request, slots[key]?.allocation == nil,
                state == .running || state == .restarting
            else { return [] }
            slotOfRequest[request] = nil
            let slot = slots[key]!
            slots[key]!.request = nil
            var actions: [Action] = [.cancelSlotRequest(request)]
            guard let vertex = slot.waiting.first(where: { graph.execution($0).state == .scheduled }) else { return actions }
            let reason = "no slot within \(DurationText.format(options.slotRequestTimeout))"
                + (slot.lastShortage.map { ": \($0)" } ?? "")
            actions.append(.persist(mustTransition(graph.attemptID(vertex), to: .failed)))
            actions += handleFailure(vertex, cause: .taskFailed(reason), now: now)
            return actions
        }
    }

    /// Cancels every task that has not finished and restarts it from the latest checkpoint:
    /// what Flink does to a job on a JobManager failover. Baton does not (it reconciles); this
    /// exists for the test-only switch that the chaos tool and the audit must catch.
    public mutating func restartAll(reason: String, now: MonotonicInstant) -> [Action] {
        guard state == .running || state == .restarting else { return [] }
        let tasks = graph.allVertices.filter { graph.execution($0).state != .finished }
        guard !tasks.isEmpty else { return [] }
        var pending = pendingRestart ?? PendingRestart(tasks: [])
        pending.tasks.formUnion(tasks)
        pendingRestart = pending
        var actions = state == .running ? setState(.restarting, reason: reason) : []
        for task in tasks { actions += cancelTask(task) }
        actions += afterTaskStopped(now: now)
        return actions
    }

    /// Cancels the job: every task is canceled, pending requests withdrawn; it ends CANCELED.
    public mutating func cancel(now: MonotonicInstant) -> [Action] {
        guard !state.isTerminal, state != .cancelling else { return [] }
        var actions = setState(.cancelling, reason: "canceled by request")
        pendingRestart = nil
        actions += cancelAll()
        actions += endIfStopped()
        return actions
    }

    // MARK: scheduling

    private func slotKey(_ vertex: ExecutionVertexID) -> SlotKey {
        SlotKey(group: groupOfJobVertex[Int(vertex.jobVertex)], index: vertex.subtask)
    }

    private mutating func schedule(_ vertices: [ExecutionVertexID], now: MonotonicInstant) -> [Action] {
        var actions: [Action] = []
        for vertex in vertices where graph.execution(vertex).state == .created {
            actions.append(.persist(mustTransition(graph.attemptID(vertex), to: .scheduled)))
            actions += placeInSlot(vertex)
        }
        return actions
    }

    /// A scheduled task goes to its shared slot: deployed when the slot is there, otherwise it
    /// waits for it (requested once per slot).
    private mutating func placeInSlot(_ vertex: ExecutionVertexID) -> [Action] {
        var actions: [Action] = []
        let key = slotKey(vertex)
        var slot = slots[key] ?? SharedSlot()
        if let allocation = slot.allocation {
            slots[key] = slot
            return deploy(vertex, on: allocation)
        }
        slot.waiting.append(vertex)
        if slot.request == nil {
                let id = nextRequest
                nextRequest += 1
                slot.request = id
                slotOfRequest[id] = key
                let group = sharing.groups[Int(key.group)]
                actions.append(
                    .requestSlot(
                        SlotRequest(
                            id: id, job: jobGraph.id, profile: group.slotProfile,
                            purpose: "job \(jobGraph.id), slot sharing group \(group.id), slot \(key.index)")))
                actions.append(.startTimer(.slotRequest(id), after: options.slotRequestTimeout))
        }
        slots[key] = slot
        return actions
    }

    private mutating func deploy(_ vertex: ExecutionVertexID, on allocation: SlotAllocation) -> [Action] {
        let location = TaskLocation(taskExecutor: allocation.taskExecutor, allocation: allocation.id)
        let attempt = graph.attemptID(vertex)
        // A task that left SCHEDULED while it waited for its slot (cancelled) is not deployed.
        guard graph.execution(vertex).state == .scheduled else { return [] }
        let change = mustTransition(attempt, to: .deploying, location: location)
        let jobVertex = graph.jobVertices[Int(vertex.jobVertex)]
        return [
            .persist(change),
            .deploy(
                Deployment(
                    attempt: attempt, jobVertex: jobVertex.id, subtask: Int(vertex.subtask), parallelism: jobVertex.parallelism,
                    location: location)),
        ]
    }

    private mutating func releaseSlotIfDone(_ key: SlotKey) -> [Action] {
        guard let slot = slots[key], let allocation = slot.allocation, slot.waiting.isEmpty, pendingRestart == nil else { return [] }
        let group = sharing.groups[Int(key.group)]
        let members = graph.jobVertices.filter { group.vertices.contains($0.id) && Int(key.index) < $0.parallelism }
        let done = members.allSatisfy {
            graph.execution(ExecutionVertexID(jobVertex: $0.index, subtask: Int(key.index))).state == .finished
        }
        guard done else { return [] }
        slots[key]!.allocation = nil
        return [.releaseSlot(allocation.id)]
    }

    // MARK: failover

    private mutating func handleFailure(_ vertex: ExecutionVertexID, cause: FailureCause, now: MonotonicInstant) -> [Action] {
        let execution = graph.execution(vertex)
        failures.insert(
            TaskFailure(vertex: vertex, attempt: Int(execution.attempt), cause: "\(cause)", taskExecutor: execution.location?.taskExecutor, at: now),
            at: 0)
        if failures.count > Self.failureHistorySize { failures.removeLast() }
        guard state == .running || state == .restarting else { return endIfStopped() }
        restartStrategy.notifyFailure(at: now)
        guard restartStrategy.canRestart else {
            return failJob("\(cause) at \(graph.jobVertices[Int(vertex.jobVertex)].id)[\(vertex.subtask)]; no restart left")
        }
        var actions: [Action] = [.restartBudgetChanged(restartStrategy.budget)]
        let tasks = failover.tasksToRestart(
            failed: vertex, cause: cause, context: FailoverContext(graph: graph, lostTaskExecutors: lostTaskExecutors))
        var pending = pendingRestart ?? PendingRestart(tasks: [])
        pending.tasks.formUnion(tasks)
        pendingRestart = pending
        if pending.tasks.count == graph.vertexCount && state == .running {
            actions += setState(.restarting, reason: "\(cause)")
        }
        for task in tasks.sorted() { actions += cancelTask(task) }
        actions += afterTaskStopped(now: now)
        return actions
    }

    private func isStopped(_ state: ExecutionState) -> Bool { state.isTerminal || state == .created }

    /// Stops one task: scheduled ones at once, deployed ones through their task executor.
    private mutating func cancelTask(_ vertex: ExecutionVertexID) -> [Action] {
        let execution = graph.execution(vertex)
        let attempt = graph.attemptID(vertex)
        switch execution.state {
        case .scheduled:
            let key = slotKey(vertex)
            slots[key]?.waiting.removeAll { $0 == vertex }
            return [.persist(mustTransition(attempt, to: .canceled))]
        case .deploying, .initializing, .running:
            guard let location = execution.location else { preconditionFailure("JobMaster \(jobGraph.id): \(attempt) is \(execution.state) without a location") }
            let change = mustTransition(attempt, to: .canceling)
            if lostTaskExecutors.contains(location.taskExecutor) {
                return [.persist(change), .persist(mustTransition(attempt, to: .canceled))]
            }
            return [.persist(change), .cancelTask(attempt, location)]
        default:
            return []
        }
    }

    private mutating func cancelAll() -> [Action] {
        var actions: [Action] = []
        for vertex in graph.allVertices { actions += cancelTask(vertex) }
        for (key, slot) in slots {
            if let request = slot.request {
                actions.append(.cancelSlotRequest(request))
                slotOfRequest[request] = nil
                slots[key]!.request = nil
            }
        }
        return actions
    }

    /// After a task stopped: start the restart's backoff once all of its tasks stopped, or end a
    /// failing or cancelling job once every task stopped.
    private mutating func afterTaskStopped(now: MonotonicInstant) -> [Action] {
        if state == .failing || state == .cancelling { return endIfStopped() }
        guard var pending = pendingRestart, pending.timerGeneration == nil,
            pending.tasks.allSatisfy({ isStopped(graph.execution($0).state) })
        else { return [] }
        let generation = nextTimer
        nextTimer += 1
        pending.timerGeneration = generation
        pendingRestart = pending
        return [.startTimer(.restart(generation: generation), after: restartStrategy.backoffTime)]
    }

    private mutating func restart(_ tasks: Set<ExecutionVertexID>, now: MonotonicInstant) -> [Action] {
        pendingRestart = nil
        var actions: [Action] = []
        var restarted: [ExecutionVertexID] = []
        for vertex in tasks.sorted() {
            restarted.append(vertex)
            guard graph.execution(vertex).state.isTerminal else { continue }
            do {
                actions.append(.persist(try graph.resetForNewAttempt(vertex)))
            } catch {
                preconditionFailure("JobMaster \(jobGraph.id): \(error)")
            }
            restarts += 1
        }
        if state == .restarting { actions += setState(.running, reason: nil) }
        actions += schedule(scheduling.restartTasks(restarted, graph), now: now)
        return actions
    }

    private mutating func failJob(_ reason: String) -> [Action] {
        failureReason = reason
        var actions = setState(.failing, reason: reason)
        pendingRestart = nil
        actions += cancelAll()
        actions += endIfStopped()
        return actions
    }

    private mutating func endIfStopped() -> [Action] {
        guard state == .failing || state == .cancelling,
            graph.allVertices.allSatisfy({ isStopped(graph.execution($0).state) })
        else { return [] }
        var actions = setState(state == .failing ? .failed : .canceled, reason: state == .failing ? failureReason : nil)
        actions += releaseAllSlots()
        return actions
    }

    private mutating func finishIfDone() -> [Action] {
        guard state == .running, pendingRestart == nil, graph.all(.finished) else { return [] }
        var actions = setState(.finished, reason: nil)
        actions += releaseAllSlots()
        return actions
    }

    private mutating func releaseAllSlots() -> [Action] {
        var actions: [Action] = []
        for key in slots.keys.sorted(by: { ($0.group, $0.index) < ($1.group, $1.index) }) {
            if let allocation = slots[key]!.allocation { actions.append(.releaseSlot(allocation.id)) }
            if let request = slots[key]!.request { actions.append(.cancelSlotRequest(request)) }
        }
        slots.removeAll()
        slotOfRequest.removeAll()
        return actions
    }

    private func hasUnfinishedBlockingConsumers(_ vertex: ExecutionVertexID) -> Bool {
        for resultIndex in graph.jobVertices[Int(vertex.jobVertex)].outputs where graph.results[resultIndex].type == .blocking {
            let consumers = graph.consumers(of: vertex, through: graph.results[resultIndex])
            if consumers.contains(where: { graph.execution($0).state != .finished }) { return true }
        }
        return false
    }

    /// The finished producers feeding `vertex` through blocking results whose every consumer has
    /// finished now: their results are released.
    private mutating func releaseConsumedPartitions(after vertex: ExecutionVertexID) -> [Action] {
        var actions: [Action] = []
        var seen: Set<ExecutionVertexID> = []
        for resultIndex in graph.jobVertices[Int(vertex.jobVertex)].inputs where graph.results[resultIndex].type == .blocking {
            let result = graph.results[resultIndex]
            // All-to-all: nothing to release while another consumer subtask has not finished.
            if !result.isPointwise, graph.consumers(of: vertex, through: result).contains(where: { graph.execution($0).state != .finished }) { continue }
            for producer in graph.producers(of: vertex, through: result) where seen.insert(producer).inserted {
                let execution = graph.execution(producer)
                guard execution.state == .finished, !execution.partitionsReleased, let location = execution.location,
                    !hasUnfinishedBlockingConsumers(producer)
                else { continue }
                let attempt = graph.attemptID(producer)
                do {
                    actions.append(.persist(try graph.releasePartitions(attempt)))
                } catch {
                    preconditionFailure("JobMaster \(jobGraph.id): \(error)")
                }
                let results = graph.jobVertices[Int(producer.jobVertex)].outputs.filter { graph.results[$0].type == .blocking }
                actions.append(.releasePartitions(attempt, location, results: results))
            }
        }
        return actions
    }

    private func blockingOutput(of vertex: ExecutionVertexID) -> Int? {
        graph.jobVertices[Int(vertex.jobVertex)].outputs.first { graph.results[$0].type == .blocking }
    }

    private mutating func setState(_ next: JobState, reason: String?) -> [Action] {
        guard state != next else { return [] }
        precondition(state.canTransition(to: next), "job \(jobGraph.id): \(state) -> \(next) is not a legal transition")
        state = next
        return [.jobStateChanged(next, reason: reason)]
    }

    /// A transition the caller's checks make valid (the attempt is current and its state allows
    /// it): a refusal here is a bug in the JobMaster, never a race, and stops the process.
    private mutating func mustTransition(_ attempt: ExecutionAttemptID, to state: ExecutionState, location: TaskLocation? = nil) -> ExecutionGraphChange {
        do {
            return try graph.transition(attempt, to: state, location: location)
        } catch {
            preconditionFailure("JobMaster \(jobGraph.id): \(error)")
        }
    }
}
