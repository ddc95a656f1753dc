import BatonCheckpointing
import BatonConfig
import BatonCore
import BatonDataPlane
import BatonElection
import BatonExecutionGraph
import BatonFiles
import BatonHAStore
import BatonHAStoreSelection
import BatonJobGraph
import BatonJobManager
import BatonJobMaster
import BatonOperators
import BatonRPC
import BatonResourceManager
import BatonStoreRecords
import BatonTaskRuntime
import BatonWireMapping
import Foundation
import Synchronization

/// The benchmark's cluster in one process, as Flink's MiniCluster: the real `JobManager` (its
/// batches' writes committed fenced to a real SQLite store, then its effects carried out), and
/// task executors that are real data planes serving on loopback, running the real task runtime.
/// It carries out the JobManager's batches as `LeaderRuntime` does, in process instead of over
/// connections: it decides nothing.
final class MiniCluster: Sendable {
    struct TaskExecutor: Sendable {
        var id: ResourceID
        var plane: DataPlane
        var server: RPCServer
        var slots: Int
        var port: Int { server.localPort }
    }

    private struct Running: Sendable {
        var host: ResourceID
        var control: Mailbox<TaskControl>
        var spec: TaskSpec
        var updates: AsyncStream<InputChannelSpec>.Continuation
        var task: Task<Void, Never>?
    }

    private struct State: Sendable {
        var manager: JobManager
        var tasks: [TaskAttempt: Running] = [:]
        /// When each checkpoint was triggered, and each completed one's trigger-to-commit time.
        var triggered: [CheckpointID: MonotonicInstant] = [:]
        var durations: [Double] = []
        var failure: String?
        var ended: JobState?
    }

    private let executors: [TaskExecutor]
    private let store: HAStore
    private let epoch: Epoch
    private let state: Mutex<State>
    private let inputs = Mailbox<JobManager.Event>(capacity: 1 << 20)
    private let time = SystemTimeSource()
    private let options: TaskRunner.Options
    private let checkpoints: String
    /// Whether a task cancelled by the JobManager (a failover) is a failure of the run (the
    /// benchmarks' runs have none); otherwise the task is cancelled, as a task executor does.
    private let failOnCancel: Bool

    init(
        executors: [TaskExecutor], storePath: String, checkpoints: String, interval: Duration, options: TaskRunner.Options, failOnCancel: Bool = true
    ) async throws {
        self.executors = executors
        self.options = options
        self.checkpoints = checkpoints
        self.failOnCancel = failOnCancel
        store = try HAStoreSelection.open(.init(backend: .sqlite, path: storePath), access: .readWrite, time: time)
        let identity = LeaderIdentity(member: "bench", incarnation: Incarnation(rawValue: 1), address: "-", pid: getpid())
        guard
            case .won(let victory) = try await store.campaign(
                as: identity, expecting: .vacant(epoch: .none), leaseMillis: 600_000, now: time.wallNow())
        else { throw BenchmarkFailure(message: "the benchmark could not win a term in its own store") }
        epoch = victory.record.epoch
        let settings = JobManager.Settings(
            mode: .session, takeover: .reconcile, reconciliationWindow: .seconds(3), checkpointInterval: interval, checkpointTimeout: .seconds(60),
            retainedCheckpoints: 3, checkpointDirectory: checkpoints, savepointDirectory: checkpoints + "/savepoints")
        state = Mutex(State(manager: JobManager(epoch: epoch, leader: "bench", settings: settings)))
    }

    var failure: String? { state.withLock { $0.failure } }
    var checkpointDurations: [Double] { state.withLock { $0.durations } }

    /// Runs `graph` until it ends; throws unless it finished.
    func run(_ graph: JobGraph) async throws {
        let ended = try await runToEnd(graph)
        guard ended == .finished else { throw BenchmarkFailure(message: "the job ended \(ended)") }
    }

    /// Runs `graph` until it ends and returns how; throws when the cluster itself failed (a store
    /// write, a refused submission, a cancellation where `failOnCancel`).
    func runToEnd(_ graph: JobGraph) async throws -> JobState {
        await withThrowingTaskGroup(of: Void.self) { group in
            for executor in executors { group.addTask { try await executor.plane.serve(executor.server) } }
            await withTaskGroup(of: Void.self) { work in
                await handle(.takeOver(JobManager.Takeover(jobs: [])), &work)
                for executor in executors {
                    let resources = TaskExecutorResources(
                        id: executor.id, total: ResourceProfile(cpuMillis: Int64(executor.slots) * 1000, taskHeapBytes: Int64(executor.slots) << 30),
                        defaultSlots: executor.slots)
                    await handle(.registered(.init(resources: resources, dataAddress: "127.0.0.1:\(executor.port)", tasks: [])), &work)
                }
                await handle(.submit(graph, savepoint: nil, JobManager.RequestID(rawValue: 1)), &work)
                while state.withLock({ $0.ended == nil && $0.failure == nil }), let event = try? await inputs.take() {
                    await handle(event, &work)
                }
                for running in state.withLock({ Array($0.tasks.values) }) {
                    running.control.finish()
                    running.updates.finish()
                    running.task?.cancel()
                    await running.task?.value
                }
                work.cancelAll()
            }
            for executor in executors { executor.server.close() }
            group.cancelAll()
        }
        if let failure { throw BenchmarkFailure(message: failure) }
        guard let ended = state.withLock({ $0.ended }) else { throw BenchmarkFailure(message: "the job ended without an outcome") }
        return ended
    }

    /// Ends the job's input: its sources stop and it finishes once drained (as `baton stop`).
    func endInput(_ job: JobID) { inputs.force(.endInput(job, Self.endInputRequest)) }
    private static let endInputRequest = JobManager.RequestID(rawValue: 2)

    /// Where the job stands now.
    func progress(of job: JobID) -> LocalJobRun.Progress? {
        state.withLock { state in
            guard let master = state.manager.dispatcher.job(job) else { return nil }
            let executions = master.graph.allVertices.map { master.graph.execution($0).state }
            let latest = state.manager.latestCheckpoint(of: job)
            return LocalJobRun.Progress(
                state: master.state.rawValue, tasks: executions.count, running: executions.filter { $0 == .running }.count,
                finished: executions.filter { $0 == .finished }.count, restarts: master.restarts, checkpoint: latest?.id.rawValue,
                checkpointMillis: latest?.duration.milliseconds, failure: master.failureReason)
        }
    }

    // MARK: carrying out

    private func handle(_ event: JobManager.Event, _ work: inout TaskGroup<Void>) async {
        let (now, wall) = (time.monotonicNow(), time.wallNow())
        let batches = state.withLock { $0.manager.handle(event, now: now, wall: wall) }
        for batch in batches {
            if !batch.writes.isEmpty {
                let (writes, epoch) = (batch.writes, self.epoch)
                do {
                    try await store.write(fencedBy: epoch) { writer in for write in writes { try write.apply(to: writer, epoch: epoch) } }
                } catch {
                    state.withLock { $0.failure = $0.failure ?? "a store write failed: \(error)" }
                    return
                }
            }
            for effect in batch.effects { carryOut(effect, &work) }
        }
    }

    private func carryOut(_ effect: JobManager.Effect, _ work: inout TaskGroup<Void>) {
        switch effect {
        case .send(let command, let target):
            deliver(command, to: target, &work)
        case .reply(let request, .refused(let reason)) where request != Self.endInputRequest:
            state.withLock { $0.failure = $0.failure ?? "the job was refused: \(reason)" }
        case .reply:
            break
        case .startTimer(let timer, let after):
            let inputs = self.inputs
            work.addTask {
                guard (try? await Task.sleep(for: after)) != nil else { return }
                inputs.force(.timerFired(timer))
            }
        case .writeSavepointFile(let job, let savepoint):
            inputs.force(.savepointFileWritten(job, checkpoint: savepoint.id, failure: "the benchmark takes no savepoints"))
        case .discardCheckpoint(let directory):
            work.addTask { DurableFiles.removeTree(directory) }
        case .discardCheckpoints(let directory, let above, let below):
            work.addTask { CheckpointFolders.removeLeftovers(in: directory, above: above, below: below) }
        case .removeJobFiles(let job, let keeping):
            CheckpointFolders.removeJobFiles(in: "\(checkpoints)/\(job)", keeping: keeping)
        case .notice(.checkpointCompleted(_, let checkpoint)):
            // After the batch that committed its metadata.
            let committed = time.monotonicNow()
            state.withLock { state in
                if let triggered = state.triggered.removeValue(forKey: checkpoint.id) { state.durations.append(committed.since(triggered).milliseconds) }
            }
        case .notice(.checkpointAborted(_, let id, _)):
            state.withLock { _ = $0.triggered.removeValue(forKey: id) }
        case .notice(.jobEnded(_, let ended)):
            state.withLock { $0.ended = ended }
        case .notice:
            break
        }
    }

    /// A command to one of the in-process task executors.
    private func deliver(_ command: JobManager.Command, to target: ResourceID, _ work: inout TaskGroup<Void>) {
        switch command {
        case .deploy(let descriptor):
            guard let executor = executors.first(where: { $0.id == target }) else { return }
            let spec = TaskSpec(descriptor)
            let attempt = TaskAttempt(job: descriptor.job, attempt: descriptor.attempt)
            let control = Mailbox<TaskControl>(capacity: 64)
            let (updates, continuation) = AsyncStream<InputChannelSpec>.makeStream()
            let (options, inputs) = (self.options, self.inputs)
            let task = Task {
                await TaskRunner.run(spec, dataPlane: executor.plane, channelUpdates: updates, control: control, options: options) { event in
                    if let state = event.state {
                        inputs.force(
                            .reported(TaskReport(attempt: attempt, state: state, failure: event.failure, allocation: descriptor.allocation), from: target))
                    } else if case .checkpointAcknowledged(let id, let handle) = event {
                        inputs.force(.checkpointAcknowledged(attempt.job, attempt.attempt, checkpoint: id, state: handle))
                    } else if case .checkpointDeclined(let id, let reason) = event {
                        inputs.force(.checkpointDeclined(attempt.job, attempt.attempt, checkpoint: id, reason: reason))
                    }
                }
            }
            state.withLock { $0.tasks[attempt] = Running(host: target, control: control, spec: spec, updates: continuation, task: task) }
        case .cancel(let job, let attempt):
            if failOnCancel {
                state.withLock { $0.failure = $0.failure ?? "the benchmark's task \(job)/\(attempt) was cancelled" }
            } else {
                state.withLock { $0.tasks[TaskAttempt(job: job, attempt: attempt)]?.task?.cancel() }
            }
        case .updatePartition(let job, let consumer, let result, let channel):
            state.withLock { state in
                guard let running = state.tasks[TaskAttempt(job: job, attempt: consumer)],
                    let update = running.spec.channelUpdate(result: result, channel: channel)
                else { return }
                running.updates.yield(update)
            }
        case .releasePartitions(let job, let only):
            guard let executor = executors.first(where: { $0.id == target }) else { return }
            let registry = executor.plane.registry
            work.addTask {
                if let only {
                    await registry.release(
                        job: job, results: only.results, producerSubtask: Int(only.producer.vertex.subtask), producerAttempt: Int(only.producer.attempt))
                } else {
                    await registry.release(job: job)
                }
            }
        case .triggerCheckpoint(let job, let source, let id, let timestamp, let directory, let isSavepoint):
            let now = time.monotonicNow()
            state.withLock { state in
                if state.triggered[id] == nil { state.triggered[id] = now }
                _ = state.tasks[TaskAttempt(job: job, attempt: source)]?.control.force(
                    .triggerCheckpoint(CheckpointTrigger(id: id, timestamp: timestamp, directory: directory, isSavepoint: isSavepoint)))
            }
        case .notifyCheckpointComplete(let job, let id):
            state.withLock { state in
                for running in state.tasks.filter({ $0.key.job == job && $0.value.host == target }).values { _ = running.control.force(.checkpointCompleted(id)) }
            }
        case .endInput(let job, let attempt):
            state.withLock { _ = $0.tasks[TaskAttempt(job: job, attempt: attempt)]?.control.force(.endInput) }
        }
    }
}
