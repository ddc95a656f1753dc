import BatonCheckpointing
import BatonCore
import BatonElection
import BatonExecutionGraph
import BatonJobGraph
import BatonJobManager
import BatonJobMaster
import BatonResourceManager
import BatonScheduling
import BatonSimulation
import Testing

/// One term of a JobManager driven by hand: every event's batches are kept, writes go to a
/// simulated store fenced by the term's epoch, and task executors are played by the test.
struct Term {
    var manager: JobManager
    var batches: [JobManager.Ready] = []
    var time: UInt64 = 1_000_000_000
    var store: SimulatedStore

    static let settings = JobManager.Settings(
        mode: .session, takeover: .reconcile, reconciliationWindow: .seconds(3), checkpointInterval: .milliseconds(100),
        checkpointTimeout: .seconds(10), retainedCheckpoints: 2, checkpointDirectory: "/checkpoints", savepointDirectory: "/savepoints")

    /// A new term over `store`: it wins the election and takes over what the store holds.
    init(
        store: SimulatedStore = SimulatedStore(), member: MemberID = "m1", takeover: TakeoverPolicy = .reconcile, retain: Int = 1000,
        maxAge: Duration = .seconds(7 * 86_400), at time: UInt64 = 1_000_000_000, mode: Dispatcher.Mode = .session, snapshotEvery: Int = 1000
    ) {
        self.time = time
        var store = store
        let identity = LeaderIdentity(member: member, incarnation: Incarnation(rawValue: 1), address: "-", pid: 1)
        // The previous holder died: its successor campaigns on its death.
        let expectation: CampaignExpectation = store.leadership?.holder.map { .holderDead(member: $0.member) } ?? .vacant(epoch: .none)
        guard case .won(let victory) = store.campaign(by: identity, expecting: expectation, leaseMillis: 1_000, now: WallTime(millisecondsSince1970: 1_000))
        else { fatalError("the test's term must win the election") }
        var settings = Self.settings
        settings.takeover = takeover
        settings.historyRetain = retain
        settings.historyMaxAge = maxAge
        settings.mode = mode
        settings.snapshotEvery = snapshotEvery
        manager = JobManager(epoch: victory.record.epoch, leader: member, settings: settings)
        self.store = store
        let takeover = try! store.takeover(for: victory.record.epoch).get()
        handle(.takeOver(takeover))
    }

    /// Handles an event; its writes must be accepted by the store.
    @discardableResult
    mutating func handle(_ event: JobManager.Event) -> [JobManager.Ready] {
        time += 1_000_000
        let ready = manager.handle(event, now: MonotonicInstant(nanoseconds: time), wall: WallTime(millisecondsSince1970: Int64(time / 1_000_000)))
        for batch in ready where !batch.writes.isEmpty {
            precondition(store.write(batch.writes, fencedBy: manager.epoch), "a write of the current term was refused")
        }
        batches += ready
        return ready
    }

    static func executor(_ id: ResourceID, slots: Int = 4) -> TaskExecutorResources {
        TaskExecutorResources(id: id, total: ResourceProfile(cpuMillis: Int64(slots) * 1000, taskHeapBytes: Int64(slots) << 30), defaultSlots: slots)
    }

    @discardableResult
    mutating func register(_ id: ResourceID, tasks: [TaskReport] = []) -> [JobManager.Ready] {
        handle(.registered(.init(resources: Self.executor(id), dataAddress: "\(id):1", tasks: tasks)))
    }

    static func sends(_ batches: [JobManager.Ready]) -> [(command: JobManager.Command, to: ResourceID)] {
        batches.flatMap(\.effects).compactMap { if case .send(let command, let to) = $0 { (command, to) } else { nil } }
    }

    static func deployments(_ batches: [JobManager.Ready]) -> [(TaskDeploymentDescriptor, ResourceID)] {
        sends(batches).compactMap { if case .deploy(let descriptor) = $0.command { (descriptor, $0.to) } else { nil } }
    }

    /// The task executors run every deployment in `batches` to RUNNING and report it.
    mutating func run(_ batches: [JobManager.Ready]) {
        for (descriptor, executor) in Self.deployments(batches) {
            for state in [ExecutionState.initializing, .running] {
                handle(.reported(TaskReport(attempt: TaskAttempt(job: descriptor.job, attempt: descriptor.attempt), state: state, allocation: descriptor.allocation), from: executor))
            }
        }
    }

    /// What the task executors report when they register with a new leader: every attempt of the
    /// previous term's graph that runs on `executor`.
    func running(on executor: ResourceID, job: JobID) -> [TaskReport] {
        guard let master = manager.dispatcher.job(job) else { return [] }
        return master.liveAttempts.filter { $0.location.taskExecutor == executor }.map {
            TaskReport(attempt: TaskAttempt(job: job, attempt: $0.attempt), state: .running, allocation: $0.location.allocation)
        }
    }

    static func lanes(_ id: JobID = "lanes", parallelism: Int = 2) -> JobGraph {
        var builder = JobGraphBuilder(
            id: id, configuration: JobConfiguration(scheduling: .eager, failover: .region, restart: .fixedDelay(attempts: 10, delay: .milliseconds(10))))
        builder.addVertex("a", operators: [.sequence()], parallelism: parallelism)
        builder.addVertex("b", operators: [.map("identity")], parallelism: parallelism)
        builder.addVertex("c", operators: [.discard()], parallelism: parallelism)
        builder.connect("a", to: "b", .forward)
        builder.connect("b", to: "c", .forward)
        return try! builder.build()
    }

    /// A job running on te1 and te2, with every task RUNNING.
    static func runningJob(_ graph: JobGraph = lanes(), snapshotEvery: Int = 1000) -> Term {
        var term = Term(snapshotEvery: snapshotEvery)
        term.register("te1")
        term.register("te2")
        term.run(term.handle(.submit(graph, savepoint: nil, JobManager.RequestID(rawValue: 1))))
        return term
    }
}

@Suite("JobManager: the leader's decisions")
struct JobManagerTests {
    @Test("every command goes out only after the changes it depends on are durable, and change records are numbered without gaps")
    func durableBeforeSent() {
        let term = Term.runningJob()
        var written: Set<ExecutionAttemptID> = []
        var sequences: [UInt64] = []
        var deployed = 0
        for batch in term.batches {
            for write in batch.writes {
                if case .change(_, let sequence, let change) = write {
                    sequences.append(sequence)
                    if case .state(let attempt, .deploying, _) = change { written.insert(attempt) }
                }
            }
            for case .send(.deploy(let descriptor), _) in batch.effects {
                deployed += 1
                #expect(written.contains(descriptor.attempt), "\(descriptor.attempt) was sent before its DEPLOYING change was written")
            }
        }
        #expect(deployed == 6)
        #expect(sequences == Array(0..<UInt64(sequences.count)))
        #expect(term.manager.dispatcher.job("lanes")?.state == .running)
    }

    @Test("the reply to a submission comes after the job's record is written")
    func submissionRepliedAfterItsRecord() {
        var term = Term()
        term.register("te1")
        let batches = term.handle(.submit(Term.lanes(), savepoint: nil, JobManager.RequestID(rawValue: 7)))
        let replied = batches.firstIndex { $0.effects.contains(.reply(JobManager.RequestID(rawValue: 7), .submitted("lanes"))) }
        let recorded = batches.firstIndex { $0.writes.contains { if case .job = $0 { true } else { false } } }
        #expect(replied != nil && recorded != nil && recorded! <= replied!)
    }

    @Test("a task executor that registers again without its attempts gets them failed and redeployed")
    func reRegistrationWithoutAttempts() {
        var term = Term.runningJob()
        let before = term.running(on: "te1", job: "lanes")
        #expect(!before.isEmpty)
        // te1 restarted (its old connection's loss not noticed yet): it holds nothing.
        var batches = term.register("te1")
        // The restart strategy's delay, then the new attempts.
        for case .startTimer(let timer, _) in batches.flatMap(\.effects) { batches += term.handle(.timerFired(timer)) }
        let redeployed = Term.deployments(batches).map(\.0.attempt)
        #expect(Set(redeployed.map(\.vertex)) == Set(before.map(\.attempt.attempt.vertex)))
        #expect(redeployed.allSatisfy { $0.attempt == 1 })
    }

    @Test("a task executor that registers again with its attempts keeps them running")
    func reRegistrationWithAttempts() {
        var term = Term.runningJob()
        let held = term.running(on: "te1", job: "lanes")
        let batches = term.register("te1", tasks: held)
        #expect(Term.deployments(batches).isEmpty)
        #expect(term.manager.dispatcher.job("lanes")?.restarts == 0)
    }

    @Test("reports from a task executor that is not registered change nothing")
    func reportsFromUnregistered() {
        var term = Term.runningJob()
        let attempt = term.running(on: "te1", job: "lanes")[0]
        let batches = term.handle(.reported(TaskReport(attempt: attempt.attempt, state: .failed, failure: "x", allocation: attempt.allocation), from: "te9"))
        #expect(batches.isEmpty)
        #expect(term.manager.dispatcher.job("lanes")?.restarts == 0)
    }

    static func partitionUpdates(_ batches: [JobManager.Ready]) -> [(consumer: ExecutionAttemptID, channel: InputChannelDescriptor, to: ResourceID)] {
        Term.sends(batches).compactMap {
            if case .updatePartition(_, let consumer, _, let channel) = $0.command { (consumer, channel, $0.to) } else { nil }
        }
    }

    @Test("a submission's changes for every slot are one transaction, committed before any deployment goes out; file work still comes first")
    func submissionIsOneTransaction() {
        var term = Term()
        term.register("te1")
        term.register("te2")
        let batches = term.handle(.submit(Term.lanes(parallelism: 8), savepoint: nil, JobManager.RequestID(rawValue: 1)))
        let withWrites = batches.indices.filter { !batches[$0].writes.isEmpty }
        #expect(withWrites.count == 1)
        let committed = try! #require(withWrites.first)
        // The earlier run's files go before anything of this run is written.
        #expect(batches[..<committed].flatMap(\.effects).contains { if case .removeJobFiles = $0 { true } else { false } })
        #expect(Term.deployments(Array(batches[..<committed])).isEmpty)
        #expect(Term.deployments(batches).count == 24)
    }

    @Test("tasks deployed together know where each other run: no partition updates follow their deployments")
    func deployedTogetherNeedNoUpdates() {
        let term = Term.runningJob(Term.lanes(parallelism: 4))
        let deployments = Term.deployments(term.batches)
        #expect(deployments.count == 12)
        #expect(deployments.allSatisfy { $0.0.inputs.allSatisfy { $0.channels.allSatisfy { $0.location != nil } } })
        #expect(Self.partitionUpdates(term.batches).isEmpty)
    }

    /// A two-by-two all-to-all job submitted while only te1, with one slot, is there.
    static func halfPlaced() -> (term: Term, batches: [JobManager.Ready]) {
        var builder = JobGraphBuilder(id: "spread", configuration: JobConfiguration(scheduling: .eager, failover: .region, restart: .none))
        builder.addVertex("a", operators: [.sequence()], parallelism: 2)
        builder.addVertex("b", operators: [.discard()], parallelism: 2)
        builder.connect("a", to: "b", .rebalance)
        var term = Term()
        term.handle(.registered(.init(resources: Term.executor("te1", slots: 1), dataAddress: "te1:1", tasks: [])))
        let batches = term.handle(.submit(try! builder.build(), savepoint: nil, JobManager.RequestID(rawValue: 1)))
        return (term, batches)
    }

    @Test("a consumer deployed before one of its producers had a slot is told where that producer runs, and only it")
    func consumerDeployedFirstIsUpdated() {
        var (term, first) = Self.halfPlaced()
        // Slot 0 only: a0 and b0 go out; b0 does not know where a1 will run.
        let early = Term.deployments(first)
        #expect(early.count == 2)
        let b0 = try! #require(early.first { $0.0.vertexID == "b" }?.0)
        #expect(b0.inputs[0].channels.filter { $0.location == nil }.map(\.producerSubtask) == [1])
        #expect(Self.partitionUpdates(first).isEmpty)
        // Slot 1 arrives: a1 and b1 go out together, and b0 alone learns where a1 runs.
        let second = term.register("te2")
        #expect(Term.deployments(second).count == 2)
        let updates = Self.partitionUpdates(second)
        #expect(updates.count == 1)
        #expect(updates.first?.consumer == b0.attempt)
        #expect(updates.first?.to == "te1")
        #expect(updates.first?.channel.producerSubtask == 1)
        #expect(updates.first?.channel.location?.taskExecutor == "te2")
    }

    @Test("a consumer an earlier term deployed is told where a producer the new term deploys runs")
    func inheritedConsumerIsUpdated() {
        var (first, batches) = Self.halfPlaced()
        first.run(batches)
        let b0 = try! #require(Term.deployments(batches).first { $0.0.vertexID == "b" }?.0)
        var second = Term(store: first.store, member: "m2")
        second.handle(.registered(.init(resources: Term.executor("te1", slots: 1), dataAddress: "te1:1", tasks: first.running(on: "te1", job: "spread"))))
        let placed = second.register("te2")
        #expect(Term.deployments(placed).map(\.0.vertexID).sorted() == ["a", "b"])
        let updates = Self.partitionUpdates(placed)
        #expect(updates.map(\.consumer) == [b0.attempt])
        #expect(updates.first?.channel.location?.taskExecutor == "te2")
    }

    @Test("a new term adopts every running attempt, restarts none, and journals the takeover")
    func takeoverAdopts() {
        let first = Term.runningJob()
        var second = Term(store: first.store, member: "m2")
        var batches: [JobManager.Ready] = []
        for executor in ["te1", "te2"] as [ResourceID] { batches += second.register(executor, tasks: first.running(on: executor, job: "lanes")) }
        #expect(Term.deployments(batches).isEmpty)
        let journals = second.batches.flatMap(\.writes).compactMap { if case .journal(let record) = $0 { record } else { nil } }
        #expect(journals.last?.adopted == 6)
        #expect(journals.last?.restarted == 0)
        #expect(journals.last?.fromEpoch == first.manager.epoch)
        #expect(second.manager.dispatcher.job("lanes")?.state == .running)
    }

    @Test("with --takeover restart-all a new term restarts every task (the checker-testing fault)")
    func takeoverRestartAll() {
        let first = Term.runningJob()
        var second = Term(store: first.store, member: "m2", takeover: .restartAll)
        var batches: [JobManager.Ready] = []
        for executor in ["te1", "te2"] as [ResourceID] { batches += second.register(executor, tasks: first.running(on: executor, job: "lanes")) }
        let cancels = Term.sends(batches).filter { if case .cancel = $0.command { true } else { false } }
        #expect(cancels.count == 6)
    }

    @Test("when the window closes, the attempts of a task executor that did not come back restart on one that did")
    func windowCloses() {
        // Six lanes need six slots: four on te1, two on te2.
        let first = Term.runningJob(Term.lanes(parallelism: 6))
        #expect(!first.running(on: "te2", job: "lanes").isEmpty)
        var second = Term(store: first.store, member: "m2")
        // te1 comes back with room for te2's lanes too.
        second.handle(.registered(.init(resources: Term.executor("te1", slots: 8), dataAddress: "te1:1", tasks: first.running(on: "te1", job: "lanes"))))
        var batches = second.handle(.timerFired(.reconciliationWindow))
        for case .startTimer(let timer, _) in batches.flatMap(\.effects) { batches += second.handle(.timerFired(timer)) }
        let journals = second.batches.flatMap(\.writes).compactMap { if case .journal(let record) = $0 { record } else { nil } }
        #expect(journals.last?.windowClosed == true)
        let redeployed = Term.deployments(batches)
        #expect(!redeployed.isEmpty)
        #expect(redeployed.allSatisfy { $0.1 == "te1" && $0.0.attempt.attempt == 1 })
        #expect(Set(redeployed.map(\.0.attempt.vertex)) == Set(first.running(on: "te2", job: "lanes").map(\.attempt.attempt.vertex)))
    }

    @Test("a checkpoint's counter is written before its trigger, and its metadata before any task hears it completed")
    func checkpointWritesComeFirst() {
        var term = Term.runningJob()
        var batches: [JobManager.Ready] = []
        let timers = term.batches.flatMap(\.effects).compactMap { effect -> JobManager.Timer? in
            if case .startTimer(let timer, _) = effect, case .checkpoint = timer { timer } else { nil }
        }
        for timer in timers { batches += term.handle(.timerFired(timer)) }
        guard let triggerBatch = batches.firstIndex(where: { $0.effects.contains { if case .send(.triggerCheckpoint, _) = $0 { true } else { false } } })
        else {
            Issue.record("no checkpoint was triggered")
            return
        }
        #expect(batches[...triggerBatch].flatMap(\.writes).contains { if case .checkpointCounter = $0 { true } else { false } })
        guard case .send(.triggerCheckpoint(_, _, let id, _, _, _), _)? = batches[triggerBatch].effects.first(where: { if case .send(.triggerCheckpoint, _) = $0 { true } else { false } })
        else { return }
        var acknowledged: [JobManager.Ready] = []
        let master = term.manager.dispatcher.job("lanes")!
        for vertex in master.graph.allVertices {
            acknowledged += term.handle(
                .checkpointAcknowledged("lanes", master.graph.attemptID(vertex), checkpoint: id, state: StateHandle(path: "/s/\(vertex)", size: 1, checksum: 0)))
        }
        let committed = acknowledged.firstIndex { $0.writes.contains { if case .checkpointCompleted = $0 { true } else { false } } }
        let notified = acknowledged.firstIndex { $0.effects.contains { if case .send(.notifyCheckpointComplete, _) = $0 { true } else { false } } }
        #expect(committed != nil && notified != nil && committed! <= notified!)
        #expect(term.manager.latestCheckpoint(of: "lanes")?.id == id)
    }
}

@Suite("JobManager: takeover of a restarting job")
struct RestartingTakeoverTests {
    @Test("a job restarting under the previous leader runs again under the next one")
    func restartingJobRunsAgain() {
        // Every task runs on te1; te1 is lost: the whole job restarts.
        var first = Term.runningJob()
        #expect(first.running(on: "te2", job: "lanes").isEmpty)
        first.handle(.taskExecutorLost("te1"))
        #expect(first.manager.dispatcher.job("lanes")?.state == .restarting)
        // The leader dies before its restart timer fires; te1 comes back with nothing.
        var second = Term(store: first.store, member: "m2")
        var batches = second.register("te1")
        batches += second.register("te2")
        for _ in 0..<3 {
            let timers = second.batches.flatMap(\.effects).compactMap { effect -> JobManager.Timer? in
                if case .startTimer(let timer, _) = effect, case .job = timer { timer } else { nil }
            }
            for timer in timers { batches += second.handle(.timerFired(timer)) }
            second.run(batches)
            batches = []
        }
        let job = second.manager.dispatcher.job("lanes")!
        #expect(job.state == .running)
    }
}

extension RestartingTakeoverTests {
    @Test("a job restarting across two takeovers with no task executor back runs again once they are")
    func restartingAcrossTwoTakeovers() {
        var first = Term.runningJob()
        let stale = first.running(on: "te1", job: "lanes")
        first.handle(.taskExecutorLost("te1"))
        var second = Term(store: first.store, member: "m2")
        for _ in 0..<2 {
            let timers = second.batches.flatMap(\.effects).compactMap { effect -> JobManager.Timer? in
                if case .startTimer(let timer, _) = effect, case .job = timer { timer } else { nil }
            }
            for timer in timers { second.handle(.timerFired(timer)) }
        }
        var third = Term(store: second.store, member: "m3")
        // te1 never stopped its tasks: it reports the old attempts running.
        var batches = third.register("te1", tasks: stale)
        batches += third.register("te2")
        for _ in 0..<3 {
            let timers = third.batches.flatMap(\.effects).compactMap { effect -> JobManager.Timer? in
                if case .startTimer(let timer, _) = effect, case .job = timer { timer } else { nil }
            }
            for timer in timers { batches += third.handle(.timerFired(timer)) }
            third.run(batches)
            batches = []
        }
        let job = third.manager.dispatcher.job("lanes")!
        #expect(job.state == .running)
        #expect(job.graph.stateCounts == [.running: 6])
    }
}

extension RestartingTakeoverTests {
    @Test("a restart's new attempts and the job RUNNING again are written in one transaction")
    func restartWrittenAtomically() {
        var term = Term.runningJob()
        term.handle(.taskExecutorLost("te1"))
        let timers = term.batches.flatMap(\.effects).compactMap { effect -> JobManager.Timer? in
            if case .startTimer(let timer, _) = effect, case .job = timer { timer } else { nil }
        }
        var batches: [JobManager.Ready] = []
        for timer in timers { batches += term.handle(.timerFired(timer)) }
        guard let restart = batches.first(where: { $0.writes.contains { if case .change(_, _, .reset) = $0 { true } else { false } } }) else {
            Issue.record("no restart was written")
            return
        }
        #expect(restart.writes.contains { if case .job(let record) = $0 { record.state == .running } else { false } })
    }

    @Test("a task executor that registers again while a takeover is reconciled, without the attempts it had reported, gets them failed")
    func reRegistrationDuringReconciliation() {
        // Six lanes: four on te1, two on te2. The new term hears from te1 only, so it keeps reconciling.
        let first = Term.runningJob(Term.lanes(parallelism: 6))
        var second = Term(store: first.store, member: "m2")
        second.register("te1", tasks: first.running(on: "te1", job: "lanes"))
        #expect(second.manager.reconciliation?.isDone == false)
        // te1 restarted before its old connection's loss was noticed: it holds nothing now.
        var batches = second.register("te1")
        for case .startTimer(.job(let job, let timer), _) in batches.flatMap(\.effects) { batches += second.handle(.timerFired(.job(job, timer))) }
        let redeployed = Set(Term.deployments(batches).map(\.0.attempt.vertex))
        #expect(redeployed == Set(first.running(on: "te1", job: "lanes").map(\.attempt.attempt.vertex)))
    }
}

@Suite("JobManager: the restart budget across leaders")
struct RestartBudgetTests {
    /// Fails one running task of the job and plays the task executors and timers until nothing
    /// more happens: cancelled tasks report CANCELED, restart timers fire, new attempts run.
    static func failOne(_ term: inout Term) {
        guard let victim = term.running(on: "te1", job: "lanes").first else { return }
        var batches = term.handle(.reported(TaskReport(attempt: victim.attempt, state: .failed, failure: "boom", allocation: victim.allocation), from: "te1"))
        for _ in 0..<10 where !batches.isEmpty {
            var next: [JobManager.Ready] = []
            for effect in batches.flatMap(\.effects) {
                switch effect {
                case .send(.cancel(let job, let attempt), let executor):
                    next += term.handle(.reported(TaskReport(attempt: TaskAttempt(job: job, attempt: attempt), state: .canceled, allocation: 0), from: executor))
                case .send(.deploy(let descriptor), let executor):
                    for state in [ExecutionState.initializing, .running] {
                        next += term.handle(
                            .reported(TaskReport(attempt: TaskAttempt(job: descriptor.job, attempt: descriptor.attempt), state: state, allocation: descriptor.allocation), from: executor))
                    }
                case .startTimer(.job(let job, let timer), _):
                    next += term.handle(.timerFired(.job(job, timer)))
                default:
                    break
                }
            }
            batches = next
        }
    }

    static func lanes(attempts: Int) -> JobGraph {
        var builder = JobGraphBuilder(
            id: "lanes", configuration: JobConfiguration(scheduling: .eager, failover: .region, restart: .fixedDelay(attempts: attempts, delay: .milliseconds(10))))
        builder.addVertex("a", operators: [.sequence()], parallelism: 2)
        builder.addVertex("b", operators: [.discard()], parallelism: 2)
        builder.connect("a", to: "b", .forward)
        return try! builder.build()
    }

    @Test("a job that keeps failing exhausts its restart budget across leader changes and fails")
    func budgetSurvivesTakeover() {
        var first = Term.runningJob(Self.lanes(attempts: 2))
        Self.failOne(&first)
        Self.failOne(&first)
        #expect(first.manager.dispatcher.job("lanes")?.state == .running, "two failures are within the budget")
        #expect(first.manager.dispatcher.job("lanes")?.restartBudget.failures == 2)
        var second = Term(store: first.store, member: "m2")
        #expect(second.manager.dispatcher.job("lanes")?.restartBudget.failures == 2, "the new leader goes on with the budget")
        for executor in ["te1", "te2"] as [ResourceID] { second.register(executor, tasks: first.running(on: executor, job: "lanes")) }
        Self.failOne(&second)
        let job = second.manager.dispatcher.job("lanes")!
        #expect([.failing, .failed].contains(job.state), "\(job.state)")
        #expect(job.failureReason?.contains("no restart left") == true)
    }
}

@Suite("JobManager: ended runs and runs again")
struct JobRunsTests {
    /// A running job, cancelled; the task executors report the cancellations.
    static func cancelled() -> Term {
        var term = Term.runningJob()
        let batches = term.handle(.cancel("lanes", JobManager.RequestID(rawValue: 2)))
        for case .send(.cancel(let job, let attempt), let executor) in batches.flatMap(\.effects) {
            term.handle(.reported(TaskReport(attempt: TaskAttempt(job: job, attempt: attempt), state: .canceled, allocation: 0), from: executor))
        }
        return term
    }

    @Test("an ended run leaves the jobs a new leader loads; the history keeps its summary and answers for it")
    func endedRunLeavesTheHotSet() {
        let first = Self.cancelled()
        #expect(first.manager.dispatcher.job("lanes")?.state == .canceled)
        let ended = first.batches.flatMap(\.writes).compactMap { if case .runEnded(let summary) = $0 { summary } else { nil } }
        #expect(ended.map(\.state) == [.canceled] && ended.first?.run == 1)
        var second = Term(store: first.store, member: "m2")
        #expect(second.manager.dispatcher.jobs.isEmpty, "a new leader loads no ended job")
        #expect(second.manager.history["lanes"]?.state == .canceled)
        let answer = second.handle(.awaitJob("lanes", JobManager.RequestID(rawValue: 9))).flatMap(\.effects)
        #expect(answer.contains(.reply(JobManager.RequestID(rawValue: 9), .outcome(.init(job: "lanes", state: .canceled, failure: nil)))))
    }

    @Test("a job id runs again once its earlier run ended, as run 2, and the earlier run's records go")
    func idRunsAgain() {
        let first = Self.cancelled()
        var second = Term(store: first.store, member: "m2")
        second.register("te1")
        let batches = second.handle(.submit(Term.lanes(), savepoint: nil, JobManager.RequestID(rawValue: 3)))
        #expect(batches.flatMap(\.effects).contains(.reply(JobManager.RequestID(rawValue: 3), .submitted("lanes"))))
        let writes = batches.flatMap(\.writes)
        #expect(writes.first == .newRun("lanes"), "the earlier run's records go first, in the transaction of the new run's record")
        #expect(writes.contains { if case .job(let record) = $0 { record.runNumber == 2 } else { false } })
        second.run(batches)
        #expect(second.manager.dispatcher.job("lanes")?.state == .running)
        // The store rebuilds the new run from its own change records alone.
        guard case .success(let rebuilt) = second.store.rebuild(Term.lanes()) else {
            Issue.record("the new run's records do not rebuild it")
            return
        }
        #expect(rebuilt.0.executionsInOrder == second.manager.dispatcher.job("lanes")!.graph.executionsInOrder)
    }

    @Test("submitting a job that is running is refused, saying so")
    func runningJobRefused() {
        var term = Term.runningJob()
        let answer = term.handle(.submit(Term.lanes(), savepoint: nil, JobManager.RequestID(rawValue: 4))).flatMap(\.effects)
        #expect(answer.contains(.reply(JobManager.RequestID(rawValue: 4), .refused("job 'lanes' is already running (RUNNING); it can run again once it ended"))))
    }
}

extension JobRunsTests {
    static func job(_ id: JobID) -> JobGraph {
        var builder = JobGraphBuilder(id: id, configuration: JobConfiguration(scheduling: .eager, failover: .region))
        builder.addVertex("a", operators: [.sequence()], parallelism: 1)
        return try! builder.build()
    }

    /// Submits `id`, runs it, cancels it.
    static func runAndCancel(_ id: JobID, on term: inout Term) {
        term.run(term.handle(.submit(Self.job(id), savepoint: nil, JobManager.RequestID(rawValue: 50))))
        let batches = term.handle(.cancel(id, JobManager.RequestID(rawValue: 51)))
        for case .send(.cancel(let job, let attempt), let executor) in batches.flatMap(\.effects) {
            term.handle(.reported(TaskReport(attempt: TaskAttempt(job: job, attempt: attempt), state: .canceled, allocation: 0), from: executor))
        }
    }

    @Test("the history keeps `retain` ended runs: the oldest goes, with what the store kept of it")
    func retentionByCount() {
        var term = Term(retain: 2)
        term.register("te1")
        for id in ["first", "second", "third"] as [JobID] { Self.runAndCancel(id, on: &term) }
        let pruned = term.batches.flatMap(\.writes).compactMap { if case .pruneRun(let id, let run, let records) = $0 { "\(id) \(run) \(records)" } else { nil } }
        #expect(pruned == ["first 1 true"])
        #expect(Set(term.manager.history.keys) == ["second", "third"])
        #expect(term.manager.dispatcher.job("first") == nil)
        guard case .success(let rebuilt) = term.store.rebuild(Self.job("first")) else { return }
        #expect(rebuilt.0.stateCounts == [.created: 1], "the pruned run's change records are gone")
        var next = Term(store: term.store, member: "m2")
        #expect(Set(next.manager.history.keys) == ["second", "third"])
        _ = next.register("te1")
    }

    @Test("ended runs older than maxAge leave the history when a new leader takes over")
    func retentionByAge() {
        var first = Term()
        first.register("te1")
        Self.runAndCancel("old", on: &first)
        var later = Term(store: first.store, member: "m2", maxAge: .seconds(60), at: 1_000_000_000 + 3_600 * 1_000_000_000)
        #expect(later.manager.history["old"] == nil)
        #expect(later.batches.flatMap(\.writes).contains(.pruneRun("old", run: 1, records: true)))
        _ = later.register("te1")
    }
}


@Suite("JobManager: a per-job cluster on a store a session used")
struct PerJobLeftoverTests {
    @Test("a per-job cluster runs the job it was started for: a job a session left running is cancelled, and only its own job's end ends the cluster")
    func leftoverSessionJobIsCancelled() {
        let session = Term.runningJob()
        var perJob = Term(store: session.store, member: "m2", mode: .perJob)
        for executor in ["te1", "te2"] as [ResourceID] { perJob.register(executor, tasks: session.running(on: executor, job: "lanes")) }
        let submitted = perJob.handle(.submit(JobRunsTests.job("only"), savepoint: nil, JobManager.RequestID(rawValue: 1)))
        #expect(submitted.flatMap(\.effects).contains(.reply(JobManager.RequestID(rawValue: 1), .submitted("only"))))
        #expect(submitted.flatMap(\.effects).contains(.notice(.cancellingLeftover("lanes", for: "only"))))
        var batches = submitted
        for case .send(.cancel(let job, let attempt), let executor) in submitted.flatMap(\.effects) {
            batches += perJob.handle(.reported(TaskReport(attempt: TaskAttempt(job: job, attempt: attempt), state: .canceled, allocation: 0), from: executor))
        }
        #expect(perJob.manager.dispatcher.job("lanes")?.state == .canceled)
        #expect(!batches.flatMap(\.effects).contains { if case .notice(.perJobClusterEnded) = $0 { true } else { false } }, "the leftover's end does not end the cluster")
        perJob.run(submitted)
        #expect(perJob.manager.dispatcher.job("only")?.state == .running)
        #expect(perJob.store.latestJobRecord("only")?.perJob == true, "a new leader knows which job this cluster runs")
        let cancelled = perJob.handle(.cancel("only", JobManager.RequestID(rawValue: 2)))
        var ended = cancelled
        for case .send(.cancel(let job, let attempt), let executor) in cancelled.flatMap(\.effects) {
            ended += perJob.handle(.reported(TaskReport(attempt: TaskAttempt(job: job, attempt: attempt), state: .canceled, allocation: 0), from: executor))
        }
        #expect(ended.flatMap(\.effects).contains(.notice(.perJobClusterEnded(.canceled))))
    }
}
