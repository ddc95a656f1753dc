import BatonCheckpointing
import BatonCore
import BatonExecutionGraph
import BatonJobGraph
import BatonJobMaster

/// The JobManager's part around each job's CheckpointCoordinator: it feeds the coordinator the
/// job's tasks and the task executors' acknowledgements, and turns its actions into writes (the
/// counter and the completed checkpoints, fenced by the term's epoch) and effects (triggers and
/// completion notices to the task executors, folders to remove). A completed checkpoint is
/// reported complete, and sinks notified, only after the batch that writes its metadata.
extension JobManager {
    /// Creates and starts the coordinator of a job: a new one (ids from 1, or past the savepoint
    /// it starts from), or one a previous leader ran (the durable counter and the retained
    /// checkpoints). Jobs with blocking exchanges take no checkpoints (their stages do not run at
    /// the same time).
    mutating func startCheckpointing(
        _ graph: JobGraph, savepoint: CompletedCheckpoint?, nextID: CheckpointID = 1, completed: [CompletedCheckpoint] = [], ended: Bool = false
    ) -> [Step] {
        guard !graph.edges.contains(where: { $0.resultType == .blocking }), let master = dispatcher.job(graph.id) else { return [] }
        let coordinatorSettings = CheckpointCoordinator.Settings(
            interval: graph.configuration.checkpointInterval ?? settings.checkpointInterval, timeout: settings.checkpointTimeout,
            retain: settings.retainedCheckpoints, directory: "\(settings.checkpointDirectory)/\(graph.id)",
            savepointDirectory: settings.savepointDirectory)
        var coordinator = CheckpointCoordinator(
            job: graph.id, vertices: master.graph.jobVertices.map { .init(index: $0.index, id: $0.id, parallelism: $0.parallelism) },
            settings: coordinatorSettings, nextID: nextID, completed: completed, savepoint: savepoint)
        guard !ended else {
            // An ended job keeps its checkpoints for status, and takes no more.
            _ = coordinator.stop(reason: "the job ended")
            checkpointing[graph.id] = coordinator
            return []
        }
        var steps: [Step] = []
        // Checkpoints a previous leader triggered but did not complete: their partial state goes.
        let latest = completed.map(\.id).max() ?? 0
        if nextID > latest.next {
            steps.append(.effect(.discardCheckpoints(directory: coordinatorSettings.directory, above: latest, below: nextID)))
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
    mutating func checkpointTasksChanged(_ job: JobID) -> [Step] {
        guard checkpointing[job]?.pendingCheckpoint != nil else { return [] }
        let tasks = checkpointTasks(job)
        return coordinatorSteps(job) { $0.tasksChanged(tasks) }
    }

    mutating func savepointRequested(_ job: JobID, _ request: RequestID) -> [Step] {
        guard dispatcher.job(job) != nil else { return [.effect(.reply(request, .refused("no job '\(job)'")))] }
        guard checkpointing[job] != nil else {
            return [.effect(.reply(request, .refused("job '\(job)' takes no checkpoints: it has blocking exchanges")))]
        }
        let (tasks, current, wall) = (checkpointTasks(job), now, wall)
        return coordinatorSteps(job) { $0.requestSavepoint(request.rawValue, tasks: tasks, wall: wall, now: current) }
    }

    mutating func coordinatorSteps(_ job: JobID, _ event: (inout CheckpointCoordinator) -> [CheckpointCoordinator.Action]) -> [Step] {
        guard checkpointing[job] != nil else { return [] }
        return event(&checkpointing[job]!).map { .checkpoint(job, $0) }
    }

    mutating func perform(_ action: CheckpointCoordinator.Action, of job: JobID, into run: inout Run) -> [Step] {
        switch action {
        case .persistCounter(let next):
            return [.write(.checkpointCounter(job, next: next))]
        case .trigger(let trigger):
            guard checkpointing[job]?.pendingCheckpoint == trigger.id, let master = dispatcher.job(job) else { return [] }
            var steps: [Step] = [.effect(.notice(.checkpointTriggered(job, trigger.id, isSavepoint: trigger.isSavepoint)))]
            for source in trigger.sources {
                guard let location = master.graph.execution(source.vertex).location, taskExecutors[location.taskExecutor] != nil else {
                    return coordinatorSteps(job) { $0.decline(source, checkpoint: trigger.id, reason: "its task executor is not registered") }
                }
                steps.append(
                    .effect(
                        .send(
                            .triggerCheckpoint(
                                job, source: source, id: trigger.id, timestamp: trigger.timestamp, directory: trigger.directory,
                                isSavepoint: trigger.isSavepoint), to: location.taskExecutor)))
            }
            return steps
        case .startTimer(let timer, let after):
            return [.effect(.startTimer(.checkpoint(job, timer), after: after))]
        case .persistCompleted(let checkpoint, let subsumed):
            // A write commits or ends the term: what follows the write is carried out only once it
            // is durable.
            run.write(.checkpointCompleted(checkpoint, subsumed: subsumed, committedAt: wall))
            let (tasks, current, wall) = (checkpointTasks(job), now, wall)
            return coordinatorSteps(job) { $0.completionPersisted(checkpoint.id, wall: wall, now: current, tasks: tasks) }
        case .writeSavepoint(let savepoint):
            return [.effect(.writeSavepointFile(job, savepoint))]
        case .notifyComplete(let id):
            guard let master = dispatcher.job(job) else { return [] }
            let hosts = Set(master.graph.allVertices.compactMap { master.graph.execution($0).location?.taskExecutor })
            return hosts.sorted().map { .effect(.send(.notifyCheckpointComplete(job, checkpoint: id), to: $0)) }
        case .discard(let directory):
            return [.effect(.discardCheckpoint(directory: directory))]
        case .aborted(let id, let reason):
            return [.effect(.notice(.checkpointAborted(job, id, reason: reason)))]
        case .completed(let checkpoint):
            return [.effect(.notice(.checkpointCompleted(job, checkpoint)))] + firstCheckpointAfterFailover(checkpoint)
        case .savepointFinished(let request, let path):
            return [.effect(.notice(.savepointCompleted(job, path: path))), .effect(.reply(RequestID(rawValue: request), .savepoint(path: path)))]
        case .savepointFailed(let request, let reason):
            return [.effect(.reply(RequestID(rawValue: request), .refused(reason)))]
        }
    }
}
