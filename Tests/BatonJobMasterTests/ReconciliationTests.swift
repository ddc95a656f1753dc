import BatonCore
import BatonExecutionGraph
import BatonJobGraph
import BatonJobMaster
import BatonResourceManager
import Testing

/// A streaming job (source -> count, hash, parallelism 2) whose JobMaster ran until every task
/// was RUNNING: two shared slots, slot 0 on te1 and slot 1 on te2.
struct RunningJob {
    var master: JobMaster
    let now = MonotonicInstant(nanoseconds: 1_000_000)

    init() throws {
        var builder = JobGraphBuilder(id: "job")
        builder.addVertex("source", operators: [.sequence(keys: 4)], parallelism: 2)
        builder.addVertex("count", operators: [.count(), .fileSink("/tmp/out")], parallelism: 2)
        builder.connect("source", to: "count", .hash, key: "key")
        master = JobMaster(jobGraph: try builder.build())
        var requests: [SlotRequest] = []
        for case .requestSlot(let request) in master.start(now: now) { requests.append(request) }
        for (index, request) in requests.enumerated() {
            let allocation = SlotAllocation(
                id: AllocationID(rawValue: UInt64(10 + index)), request: request.id, job: "job", taskExecutor: index == 0 ? "te1" : "te2", profile: .zero)
            _ = master.slotAllocated(allocation, now: now)
        }
        for vertex in master.graph.allVertices {
            let attempt = master.graph.attemptID(vertex)
            _ = master.taskStateChanged(attempt, to: .initializing, now: now)
            _ = master.taskStateChanged(attempt, to: .running, now: now)
        }
    }

    func attempt(_ jobVertex: Int, _ subtask: Int) -> ExecutionAttemptID {
        master.graph.attemptID(ExecutionVertexID(jobVertex: jobVertex, subtask: subtask))
    }
}

@Suite("reconciliation after a master failover")
struct ReconciliationTests {
    @Test("a recovered JobMaster holds the same slots and attempts, and reconciling running tasks changes nothing")
    func recoveredJobMasterAdoptsRunningTasks() throws {
        let job = try RunningJob()
        var recovered = JobMaster(recovering: job.master.jobGraph, graph: job.master.graph, state: .running, failureReason: nil)
        #expect(recovered.restarts == 0)
        #expect(recovered.allocations(on: "te1").map(\.id) == [10])
        #expect(recovered.allocations(on: "te2").map(\.id) == [11])
        #expect(recovered.liveAttempts.count == 4)
        #expect(recovered.recover(now: job.now).isEmpty)
        for live in recovered.liveAttempts {
            #expect(recovered.reconcile(live.attempt, reported: .running, failure: nil, location: live.location, now: job.now).isEmpty)
        }
        #expect(recovered.graph.allVertices.allSatisfy { recovered.graph.execution($0).state == .running && recovered.graph.execution($0).attempt == 0 })
    }

    @Test("states the previous leader did not record are caught up; a task to cancel is canceled again; a failure fails over")
    func reconcileCatchesUp() throws {
        var job = try RunningJob()
        // The previous leader knew source[0] only as DEPLOYING.
        var graph = ExecutionGraph(jobGraph: job.master.jobGraph)
        for vertex in job.master.graph.allVertices {
            let execution = job.master.graph.execution(vertex)
            let attempt = graph.attemptID(vertex)
            try graph.transition(attempt, to: .scheduled)
            try graph.transition(attempt, to: .deploying, location: execution.location)
            if vertex != ExecutionVertexID(jobVertex: 0, subtask: 0) {
                try graph.transition(attempt, to: .initializing)
                try graph.transition(attempt, to: .running)
            }
        }
        var recovered = JobMaster(recovering: job.master.jobGraph, graph: graph, state: .running, failureReason: nil)
        let source0 = job.attempt(0, 0)
        let location = graph.execution(source0.vertex).location!
        let caughtUp = recovered.reconcile(source0, reported: .running, failure: nil, location: location, now: job.now)
        #expect(caughtUp.filter { if case .persist = $0 { true } else { false } }.count == 2)
        #expect(recovered.graph.execution(source0.vertex).state == .running)
        // A failure reported on registration goes to failover (region: the whole job here).
        let count1 = job.attempt(1, 1)
        let failed = recovered.reconcile(count1, reported: .failed, failure: "boom", location: graph.execution(count1.vertex).location!, now: job.now)
        #expect(failed.contains { if case .cancelTask = $0 { true } else { false } })
        #expect(recovered.graph.execution(count1.vertex).state == .failed)
        _ = job.master.cancel(now: job.now)
    }

    @Test("a task recorded as ended but still running is canceled; one to cancel that finished meanwhile counts as canceled")
    func zombiesAndLateEnds() throws {
        var job = try RunningJob()
        let source0 = job.attempt(0, 0)
        let location = job.master.graph.execution(source0.vertex).location!
        // The connection to te1 dropped: its tasks were recorded FAILED (and a restart began).
        _ = job.master.taskExecutorLost("te1", now: job.now)
        #expect(job.master.graph.execution(source0.vertex).state == .failed)
        let zombie = job.master.reconcile(source0, reported: .running, failure: nil, location: location, now: job.now)
        #expect(zombie == [.cancelTask(source0, location)])
        // A task being canceled that reports FINISHED on registration is stopped, not stuck.
        let count1 = job.attempt(1, 1)
        let where1 = job.master.graph.execution(count1.vertex).location!
        #expect(job.master.graph.execution(count1.vertex).state == .canceling)
        _ = job.master.reconcile(count1, reported: .finished, failure: nil, location: where1, now: job.now)
        #expect(job.master.graph.execution(count1.vertex).state == .canceled)
    }

    @Test("an ended job holds no slots after a recovery; a cancelling one cancels what still runs")
    func endedAndCancellingJobs() throws {
        var job = try RunningJob()
        _ = job.master.cancel(now: job.now)
        for vertex in job.master.graph.allVertices {
            _ = job.master.taskStateChanged(job.master.graph.attemptID(vertex), to: .canceled, now: job.now)
        }
        #expect(job.master.state == .canceled)
        let ended = JobMaster(recovering: job.master.jobGraph, graph: job.master.graph, state: .canceled, failureReason: nil)
        #expect(ended.allocations(on: "te1").isEmpty && ended.allocations(on: "te2").isEmpty)

        // The previous leader recorded CANCELLING and died before canceling the tasks.
        let running = try RunningJob()
        var cancelling = JobMaster(recovering: running.master.jobGraph, graph: running.master.graph, state: .cancelling, failureReason: nil)
        let actions = cancelling.recover(now: running.now)
        #expect(actions.filter { if case .cancelTask = $0 { true } else { false } }.count == 4)
    }

    @Test("expected attempts are adopted, finished or failed; unknown and stale ones cancelled; the window closes on the rest")
    func reconciliationDecisions() {
        let job: JobID = "job"
        func attempt(_ vertex: Int, _ subtask: Int, _ number: Int32 = 0) -> ExecutionAttemptID {
            ExecutionAttemptID(vertex: ExecutionVertexID(jobVertex: vertex, subtask: subtask), attempt: number)
        }
        let te1 = TaskLocation(taskExecutor: "te1", allocation: 1)
        let te2 = TaskLocation(taskExecutor: "te2", allocation: 2)
        let te3 = TaskLocation(taskExecutor: "te3", allocation: 3)
        var reconciliation = Reconciliation(
            expected: [job: [(attempt(0, 0), te1), (attempt(1, 0), te1), (attempt(0, 1), te2), (attempt(1, 1), te2), (attempt(2, 0), te3)]],
            known: ["te4"])
        #expect(reconciliation.expectedTaskExecutors == ["te1", "te2", "te3"])
        reconciliation.registered("te1")
        #expect(reconciliation.reported(job: job, attempt: attempt(0, 0), state: .running, isCurrent: true) == .reconcile)
        #expect(reconciliation.reported(job: job, attempt: attempt(1, 0), state: .finished, isCurrent: true) == .reconcile)
        #expect(reconciliation.reported(job: job, attempt: attempt(0, 0, 7), state: .running, isCurrent: false) == .cancel)
        #expect(reconciliation.reported(job: "gone", attempt: attempt(0, 0), state: .running, isCurrent: false) == .cancel)
        #expect(reconciliation.reported(job: "gone", attempt: attempt(0, 1), state: .finished, isCurrent: false) == .ignore)
        reconciliation.registered("te2")
        #expect(reconciliation.reported(job: job, attempt: attempt(0, 1), state: .failed, isCurrent: true) == .reconcile)
        #expect(!reconciliation.isDone)
        let (lost, unreported) = reconciliation.closeWindow()
        #expect(lost == ["te3", "te4"])
        #expect(unreported == [job: [attempt(1, 1)]])
        #expect(reconciliation.isDone)
        #expect(reconciliation.summary.adopted == 1)
        #expect(reconciliation.summary.finished == 1)
        #expect(reconciliation.summary.restarted == 3)
        #expect(reconciliation.summary.cancelled == 2)
    }

    @Test("reconciliation is done as soon as every expected attempt is reported")
    func doneWithoutWaitingForTheWindow() {
        let attempt = ExecutionAttemptID(vertex: ExecutionVertexID(jobVertex: 0, subtask: 0), attempt: 3)
        var reconciliation = Reconciliation(expected: ["job": [(attempt, TaskLocation(taskExecutor: "te1", allocation: 4))]])
        reconciliation.registered("te1")
        _ = reconciliation.reported(job: "job", attempt: attempt, state: .running, isCurrent: true)
        #expect(reconciliation.isDone && !reconciliation.windowClosed)
    }

    @Test("a task executor that registers again counts its adopted slots as taken before serving anyone")
    func adoptedSlotsAreTaken() {
        var resources = ResourceManager()
        resources.reserveAllocationIDs(through: 41)
        let executor = TaskExecutorResources(id: "te1", total: ResourceProfile(cpuMillis: 2000, taskHeapBytes: 2 << 30), defaultSlots: 2)
        let adopted = SlotAllocation(id: 41, request: 0, job: "old", taskExecutor: "te1", profile: .zero)
        _ = resources.request(SlotRequest(id: 1, job: "new", profile: nil, purpose: "a"))
        _ = resources.request(SlotRequest(id: 2, job: "new", profile: nil, purpose: "b"))
        let actions = resources.register(executor, adopting: [adopted])
        // One slot of two is busy with the adopted task: one request is served, with a new id.
        let allocated = actions.compactMap { if case .allocated(let allocation) = $0 { allocation } else { nil } }
        #expect(allocated.count == 1)
        #expect(allocated.first.map { $0.id > 41 } == true)
        #expect(resources.pending.count == 1)
    }
}

@Suite("recovering a restarting job")
struct RestartingRecoveryTests {
    @Test("a job recovered as RESTARTING with nothing left to restart (its restart was recorded, its state not) runs")
    func restartingWithNothingStoppedRuns() throws {
        let job = try RunningJob()
        var recovered = JobMaster(recovering: job.master.jobGraph, graph: job.master.graph, state: .restarting, failureReason: nil)
        let actions = recovered.recover(now: job.now)
        #expect(recovered.state == .running)
        #expect(actions.contains { if case .jobStateChanged(.running, _) = $0 { true } else { false } })
    }
}
