import BatonStoreRecords
import BatonCheckpointing
import BatonConfig
import BatonCore
import BatonExecutionGraph
import BatonFiles
import BatonJobGraph
import BatonJobMaster
import BatonWire
import BatonWireMapping
import Logging

/// The leader's shell around each job's CheckpointCoordinator: it feeds the coordinator the job's
/// tasks and the task executors' acknowledgements, and carries out its actions in the leader's
/// loop: the counter and the completed checkpoints go to the store fenced by the term's epoch
/// (a refused write ends the term and the checkpoint is never reported complete), triggers and
/// completion notices go to the task executors, and aborted or subsumed checkpoints' folders
/// are removed.
extension LeaderRuntime {
    /// Creates and starts the coordinator of a job: a new one (ids from 1, or past the savepoint
    /// it starts from), or one a previous leader ran (the durable counter and the retained
    /// checkpoints). Jobs with blocking exchanges take no checkpoints (their stages do not run at
    /// the same time).
    func startCheckpointing(
        _ graph: JobGraph, savepoint: CompletedCheckpoint?, nextID: UInt64 = 1, completed: [CompletedCheckpoint] = [], ended: Bool = false
    ) -> [Step] {
        guard !graph.edges.contains(where: { $0.resultType == .blocking }), let master = dispatcher.job(graph.id) else { return [] }
        let settings = CheckpointCoordinator.Settings(
            interval: graph.configuration.checkpointInterval ?? configuration.checkpoints.interval,
            timeout: configuration.checkpoints.timeout, retain: configuration.checkpoints.retain,
            directory: "\(configuration.checkpoints.directory)/\(graph.id)", savepointDirectory: configuration.checkpoints.savepointDirectory)
        var coordinator = CheckpointCoordinator(
            job: graph.id,
            vertices: master.graph.jobVertices.map { .init(index: $0.index, id: $0.id, parallelism: $0.parallelism) },
            settings: settings, nextID: nextID, completed: completed, savepoint: savepoint)
        guard !ended else {
            // An ended job keeps its checkpoints for status, and takes no more.
            _ = coordinator.stop(reason: "the job ended")
            checkpointing[graph.id] = coordinator
            return []
        }
        var steps: [Step] = []
        // Checkpoints a previous leader triggered but did not complete: their partial state goes.
        let latest = completed.map(\.id).max() ?? 0
        if nextID > latest + 1 {
            for id in (latest + 1)..<nextID {
                steps.append(.checkpoint(graph.id, .discard(directory: "\(settings.directory)/chk-\(id)")))
            }
        }
        steps += coordinator.start().map { .checkpoint(graph.id, $0) }
        checkpointing[graph.id] = coordinator
        return steps
    }

    /// The job's tasks as the coordinator needs them.
    func checkpointTasks(_ job: JobID) -> CheckpointCoordinator.Tasks {
        guard let master = dispatcher.job(job) else { return .init(attempts: [:], sources: []) }
        let graph = master.graph
        var attempts: [ExecutionVertexID: (attempt: Int32, running: Bool)] = [:]
        var sources: Set<ExecutionVertexID> = []
        for jobVertex in graph.jobVertices {
            for subtask in 0..<jobVertex.parallelism {
                let vertex = ExecutionVertexID(jobVertex: jobVertex.index, subtask: subtask)
                let execution = graph.execution(vertex)
                attempts[vertex] = (Int32(execution.attempt), execution.state == .running)
                if jobVertex.inputs.isEmpty { sources.insert(vertex) }
            }
        }
        return .init(attempts: attempts, sources: sources)
    }

    /// After the job's tasks changed: a pending checkpoint that waits for a stopped task ends.
    func checkpointTasksChanged(_ job: JobID) -> [Step] {
        guard checkpointing[job]?.pendingCheckpoint != nil else { return [] }
        let tasks = checkpointTasks(job)
        return checkpointing[job]!.tasksChanged(tasks).map { .checkpoint(job, $0) }
    }

    func checkpointTimerFired(_ job: JobID, _ timer: CheckpointCoordinator.Timer) -> [Step] {
        guard checkpointing[job] != nil else { return [] }
        let tasks = checkpointTasks(job)
        return checkpointing[job]!.timerFired(timer, tasks: tasks, wall: time.wallNow(), now: now).map { .checkpoint(job, $0) }
    }

    func checkpointAcknowledged(_ acknowledgement: WireAcknowledgeCheckpoint) -> [Step] {
        guard let job = Identifier(rawValue: acknowledgement.attempt.job), checkpointing[job] != nil else { return [] }
        return checkpointing[job]!.acknowledge(
            acknowledgement.attempt.executionAttempt, checkpoint: acknowledgement.checkpointID, state: acknowledgement.state.handle,
            wall: time.wallNow(), now: now
        ).map { .checkpoint(job, $0) }
    }

    func checkpointDeclined(_ decline: WireDeclineCheckpoint) -> [Step] {
        guard let job = Identifier(rawValue: decline.attempt.job), checkpointing[job] != nil else { return [] }
        return checkpointing[job]!.decline(decline.attempt.executionAttempt, checkpoint: decline.checkpointID, reason: decline.reason)
            .map { .checkpoint(job, $0) }
    }

    func savepointRequested(_ job: JobID, _ reply: CheckedContinuation<Result<String, RuntimeFailure>, Never>) -> [Step] {
        guard dispatcher.job(job) != nil else {
            reply.resume(returning: .failure(RuntimeFailure(message: "no job '\(job)'")))
            return []
        }
        guard checkpointing[job] != nil else {
            reply.resume(returning: .failure(RuntimeFailure(message: "job '\(job)' takes no checkpoints: it has blocking exchanges")))
            return []
        }
        let request = nextSavepointRequest
        nextSavepointRequest += 1
        savepointRequests[request] = reply
        let tasks = checkpointTasks(job)
        return checkpointing[job]!.requestSavepoint(request, tasks: tasks, wall: time.wallNow(), now: now).map { .checkpoint(job, $0) }
    }

    func lastCheckpoint(of job: JobID) -> LeaderStatusReport.Checkpoint {
        guard let latest = checkpointing[job]?.latestCompleted else { return .init() }
        return .init(id: latest.id, time: latest.completedAt.iso8601, sizeBytes: latest.size, durationMillis: latest.duration.milliseconds)
    }

    // MARK: actions

    func perform(_ action: CheckpointCoordinator.Action, of job: JobID, timers: inout DiscardingTaskGroup) async -> [Step] {
        var metadata: Logger.Metadata = [LogKey.job: "\(job)"]
        switch action {
        case .persistCounter(let next):
            if let problem = await write({ try CheckpointRecords.writeCounter($0, job: job, next: next) }), !fenced {
                return coordinatorSteps(job) { $0.completionFailed(next - 1, reason: "the checkpoint counter could not be written: \(problem)") }
            }
        case .trigger(let trigger):
            // The counter write may have failed and aborted it meanwhile.
            guard checkpointing[job]?.pendingCheckpoint == trigger.id, let master = dispatcher.job(job) else { return [] }
            metadata["baton.checkpoint"] = "\(trigger.id)"
            logger.debug(trigger.isSavepoint ? "savepoint triggered" : "checkpoint triggered", metadata: metadata)
            for source in trigger.sources {
                guard let location = master.graph.execution(source.vertex).location, executors[location.taskExecutor] != nil else {
                    return coordinatorSteps(job) { $0.decline(source, checkpoint: trigger.id, reason: "its task executor is not registered") }
                }
                var envelope = WireEnvelope()
                envelope.epoch = epoch.rawValue
                envelope.triggerCheckpoint = .with {
                    $0.attempt = WireAttempt(job: job, source)
                    $0.checkpointID = trigger.id
                    $0.timestampMillis = UInt64(max(0, trigger.timestamp.millisecondsSince1970))
                    $0.directory = trigger.directory
                    $0.savepoint = trigger.isSavepoint
                }
                await command(envelope, to: location.taskExecutor)
            }
        case .startTimer(let timer, let after):
            let continuation = self.continuation
            timers.addTask {
                try? await Task.sleep(for: after)
                continuation.yield(.checkpointTimer(job, timer))
            }
        case .persistCompleted(let checkpoint, let subsumed):
            let (epoch, committedAt) = (self.epoch, time.wallNow())
            let problem = await write {
                try CheckpointRecords.writeCompleted($0, checkpoint, subsumed: subsumed, epoch: epoch, committedAt: committedAt)
            }
            guard !fenced else { return [] }
            let tasks = checkpointTasks(job)
            let (wall, current) = (time.wallNow(), now)
            if let problem { return coordinatorSteps(job) { $0.completionFailed(checkpoint.id, reason: problem) } }
            return coordinatorSteps(job) { $0.completionPersisted(checkpoint.id, wall: wall, now: current, tasks: tasks) }
        case .writeSavepoint(let savepoint):
            let tasks = checkpointTasks(job)
            do {
                try DurableFiles.write(CompletedCheckpointCodec.encodeFile(savepoint), to: "\(savepoint.directory)/_metadata")
            } catch {
                return coordinatorSteps(job) { $0.completionFailed(savepoint.id, reason: "\(error)") }
            }
            let (wall, current) = (time.wallNow(), now)
            return coordinatorSteps(job) { $0.savepointWritten(savepoint.id, wall: wall, now: current, tasks: tasks) }
        case .notifyComplete(let id):
            guard let master = dispatcher.job(job) else { return [] }
            var envelope = WireEnvelope()
            envelope.epoch = epoch.rawValue
            envelope.notifyCheckpointComplete = .with {
                $0.job = job.rawValue
                $0.checkpointID = id
            }
            let hosts = Set(master.graph.allVertices.compactMap { master.graph.execution($0).location?.taskExecutor })
            for host in hosts.sorted() { await command(envelope, to: host) }
        case .discard(let directory):
            timers.addTask { DurableFiles.removeTree(directory) }
        case .aborted(let id, let reason):
            metadata["baton.checkpoint"] = "\(id)"
            metadata[LogKey.reason] = "\(reason)"
            logger.notice("checkpoint aborted", metadata: metadata)
        case .completed(let checkpoint):
            metadata["baton.checkpoint"] = "\(checkpoint.id)"
            metadata["baton.millis"] = "\(checkpoint.duration.milliseconds)"
            metadata["baton.bytes"] = "\(checkpoint.size)"
            logger.info("checkpoint completed", metadata: metadata)
            return firstCheckpointAfterFailover(checkpoint)
        case .savepointFinished(let request, let path):
            logger.info("savepoint completed", metadata: [LogKey.job: "\(job)", "baton.path": "\(path)"])
            savepointRequests.removeValue(forKey: request)?.resume(returning: .success(path))
        case .savepointFailed(let request, let reason):
            savepointRequests.removeValue(forKey: request)?.resume(returning: .failure(RuntimeFailure(message: reason)))
        }
        return []
    }

    private func coordinatorSteps(_ job: JobID, _ event: (inout CheckpointCoordinator) -> [CheckpointCoordinator.Action]) -> [Step] {
        guard checkpointing[job] != nil else { return [] }
        return event(&checkpointing[job]!).map { .checkpoint(job, $0) }
    }
}
