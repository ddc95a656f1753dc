import BatonCheckpointing
import BatonCore
import BatonElection
import BatonExecutionGraph
import BatonJobGraph
import BatonJobManager
import BatonJobMaster
import BatonResourceManager

/// The leader's shell in the simulation: what `LeaderRuntime` does for a real master. It loads
/// the takeover from the store, feeds its JobManager one input at a time, and carries out each
/// batch: the writes (fenced, awaited), then the effects. A refused write ends the term's work.
extension ClusterWorld {
    mutating func startLeading(_ index: Int, epoch: Epoch) {
        masters[index].leader = LeaderShell(epoch: epoch)
        queue.push(
            .storeApply(index, incarnation: masters[index].incarnation, .loadTakeover(epoch)),
            at: storeTime(after: draw(configuration.storeLatencyMillis)))
    }

    mutating func stopLeading(_ index: Int) {
        guard masters[index].leader != nil else { return }
        closeConnections(of: index)
        masters[index].leader = nil
    }

    mutating func tookOver(_ index: Int, epoch: Epoch, _ takeover: JobManager.Takeover) {
        guard masters[index].leader?.epoch == epoch else { return }
        let settings = JobManager.Settings(
            mode: configuration.mode, takeover: configuration.takeover, reconciliationWindow: configuration.reconciliationWindow,
            checkpointInterval: configuration.checkpointInterval, checkpointTimeout: configuration.checkpointTimeout,
            retainedCheckpoints: configuration.retainedCheckpoints, checkpointDirectory: "sim/checkpoints", savepointDirectory: "sim/savepoints",
            jobMaster: configuration.jobMaster, snapshotEvery: configuration.snapshotEvery)
        masters[index].leader!.manager = JobManager(epoch: epoch, leader: masters[index].id, settings: settings)
        masters[index].leader!.loading = false
        masters[index].leader!.inputs.insert(.event(.takeOver(takeover)), at: 0)
        if configuration.keepsHistory {
            log("\(masters[index].id) loaded " + takeover.jobs.map { "\($0.record.graph.id) \($0.record.state) \($0.graph.stateCounts)" }.joined(separator: "; "))
        }
        queue.push(.retrySubmissions, at: now)
    }

    mutating func written(_ index: Int, epoch: Epoch, accepted: Bool) {
        guard masters[index].leader?.epoch == epoch, masters[index].leader!.writing else { return }
        masters[index].leader!.writing = false
        if accepted {
            masters[index].leader!.effects = masters[index].leader!.effectsAfterWrite[...]
        } else {
            // Fenced: the term is over for this runtime; what it still meant to do is dropped.
            log("\(masters[index].id) epoch \(epoch): a write was refused as fenced, the runtime stops")
            masters[index].leader!.ended = true
            masters[index].leader!.inputs = []
            masters[index].leader!.batches = []
            closeConnections(of: index)
        }
        masters[index].leader!.effectsAfterWrite = []
    }

    /// One step of the leader's work; false when there is nothing to do or it waits.
    mutating func driveLeader(_ index: Int) -> Bool {
        guard let shell = masters[index].leader, !shell.loading, !shell.writing, !shell.ended else { return false }
        if !shell.effects.isEmpty {
            let effect = masters[index].leader!.effects.removeFirst()
            carryOut(effect, index)
            return true
        }
        if !shell.batches.isEmpty {
            let batch = masters[index].leader!.batches.removeFirst()
            if batch.writes.isEmpty {
                masters[index].leader!.effects = batch.effects[...]
            } else {
                masters[index].leader!.writing = true
                masters[index].leader!.effectsAfterWrite = batch.effects
                queue.push(
                    .storeApply(index, incarnation: masters[index].incarnation, .write(shell.epoch, batch.writes)),
                    at: storeTime(after: draw(configuration.storeLatencyMillis)))
            }
            return true
        }
        guard !shell.inputs.isEmpty else { return false }
        let input = masters[index].leader!.inputs.removeFirst()
        let event: JobManager.Event
        switch input {
        case .event(let given):
            event = given
        case .register(let executor, let connection, let registration):
            guard openConnections.contains(connection) else { return true }
            if let replaced = masters[index].leader!.connections.updateValue(connection, forKey: executor), replaced != connection {
                close(replaced, executor: executor, master: index, noticeAfter: 0)
            }
            sendToTaskExecutor(executor, connection: connection, .registered(shell.epoch), from: index)
            event = .registered(registration)
        case .lost(let executor, let connection):
            guard masters[index].leader!.connections[executor] == connection else { return true }
            masters[index].leader!.connections[executor] = nil
            event = .taskExecutorLost(executors[executor].resources.id)
        }
        let batches = masters[index].leader!.manager!.handle(event, now: instant, wall: wall)
        masters[index].leader!.batches = batches[...]
        return true
    }

    mutating func carryOut(_ effect: JobManager.Effect, _ index: Int) {
        let epoch = masters[index].leader!.epoch
        switch effect {
        case .send(let command, let target):
            if case .deploy(let descriptor) = command {
                if configuration.keepsHistory { log("\(masters[index].id) deploys \(descriptor.job)/\(descriptor.attempt) to \(target)") }
                deployments.append(
                    SimulatedDeployment(
                        millis: millis, job: descriptor.job, vertex: descriptor.vertexID, subtask: Int(descriptor.attempt.vertex.subtask),
                        attempt: descriptor.attempt.attempt, taskExecutor: target))
            }
            guard let executor = executors.firstIndex(where: { $0.resources.id == target }),
                let connection = masters[index].leader!.connections[executor]
            else { return }
            sendToTaskExecutor(executor, connection: connection, .command(command, epoch), from: index)
        case .reply(let request, let reply):
            let job = masters[index].leader!.requests.removeValue(forKey: request)
            switch reply {
            case .submitted(let id): log("job \(id) submitted")
            case .refused(let reason):
                // A refused submission is not retried.
                if let job, submissions.contains(where: { $0.0.id == job }) {
                    submissions.removeAll { $0.0.id == job }
                    log("submission of \(job) refused: \(reason)")
                } else {
                    log("request for \(job.map { "\($0)" } ?? "?") refused: \(reason)")
                }
            default: break
            }
        case .startTimer(let timer, let after):
            queue.push(.leaderTimer(index, epoch: epoch, timer), at: now + Self.nanos(after))
        case .writeSavepointFile(let job, let savepoint):
            masters[index].leader!.inputs.append(.event(.savepointFileWritten(job, checkpoint: savepoint.id, failure: nil)))
        case .discardCheckpoint, .discardCheckpoints, .removeJobFiles:
            break
        case .notice(let notice):
            noticed(notice, by: index)
        }
    }

    mutating func noticed(_ notice: JobManager.Notice, by index: Int) {
        switch notice {
        case .takingOver(let jobs, let expected, _, let previous):
            failovers += 1
            log("\(masters[index].id) takes over \(jobs) jobs (\(expected) attempts) from epoch \(previous.map { "\($0)" } ?? "-")")
        case .reconciled(let record):
            log(
                "\(masters[index].id) reconciled: adopted \(record.adopted), finished \(record.finished), restarted \(record.restarted), "
                    + "cancelled \(record.cancelled)\(record.windowClosed ? ", window closed" : "")")
        case .jobStateChanged(let job, let state, let reason):
            log("job \(job) is \(state)" + (reason.map { ": \($0)" } ?? ""))
        case .jobEnded(let job, let state):
            log("job \(job) ended \(state)")
        case .perJobClusterEnded(let state):
            shutDown = state
            log("per-job cluster shuts down: \(state)")
        case .checkpointCompleted(let job, let checkpoint):
            log("job \(job) checkpoint \(checkpoint.id) completed")
        case .checkpointAborted(let job, let id, let reason):
            log("job \(job) checkpoint \(id) aborted: \(reason)")
        case .taskExecutorLost(let id):
            log("\(masters[index].id) lost task executor \(id)")
        case .taskExecutorRegistered(let id, _, let tasks):
            log("\(masters[index].id) registered task executor \(id) with \(tasks) tasks")
        default:
            break
        }
    }

    /// Hands a leader an input from outside (a message, a timer), to be taken in order.
    mutating func leaderInput(_ index: Int, _ input: LeaderShell.Input) {
        guard masters[index].alive, masters[index].leader != nil, !masters[index].leader!.ended else { return }
        masters[index].leader!.inputs.append(input)
        drive(index)
    }

    /// The current leader whose JobManager is ready, if any.
    var readyLeader: Int? {
        masters.indices.first { index in
            masters[index].alive && !masters[index].paused && masters[index].election?.leaderEpoch != nil
                && masters[index].leader.map { !$0.loading && !$0.ended } == true
        }
    }

    /// Submits the jobs no leader took yet (a client retries until the job is in the store).
    mutating func submitPending() {
        guard let index = readyLeader else {
            if !submissions.isEmpty { queue.push(.retrySubmissions, at: now + Self.ms(100)) }
            return
        }
        var remaining: [(JobGraph, CompletedCheckpoint?)] = []
        for (graph, savepoint) in submissions {
            if store.hasJob(graph.id) { continue }
            if masters[index].leader!.manager!.dispatcher.job(graph.id) != nil { continue }
            if masters[index].leader!.requests.values.contains(graph.id) {
                remaining.append((graph, savepoint))
                continue
            }
            let request = JobManager.RequestID(rawValue: masters[index].leader!.nextRequest)
            masters[index].leader!.nextRequest += 1
            masters[index].leader!.requests[request] = graph.id
            leaderInput(index, .event(.submit(graph, savepoint: savepoint, request)))
            remaining.append((graph, savepoint))
        }
        submissions = remaining.filter { !store.hasJob($0.0.id) }
        if !submissions.isEmpty { queue.push(.retrySubmissions, at: now + Self.ms(500)) }
    }

    /// A client request to a job (cancel), through the current leader.
    mutating func request(_ make: (JobManager.RequestID) -> JobManager.Event, job: JobID) {
        guard let index = readyLeader else { return }
        let request = JobManager.RequestID(rawValue: masters[index].leader!.nextRequest)
        masters[index].leader!.nextRequest += 1
        masters[index].leader!.requests[request] = job
        leaderInput(index, .event(make(request)))
    }
}
