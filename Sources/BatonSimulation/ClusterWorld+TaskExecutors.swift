import BatonCheckpointing
import BatonCore
import BatonElection
import BatonExecutionGraph
import BatonJobGraph
import BatonJobManager
import BatonResourceManager
import BatonTaskSlots

/// The task executors' shell in the simulation: what `TaskExecutorService` does for a real one.
/// It finds the leader in the store, registers with what its TaskSlotTable holds, hands every
/// command to the TaskSlotTable and carries out its actions, and runs the tasks: sources emit
/// records at a steady rate, sinks commit what they received at each completed checkpoint.
extension ClusterWorld {
    mutating func handleCluster(_ event: WorldEvent) {
        switch event {
        case .leaderTimer(let index, let epoch, let timer):
            guard masters[index].leader?.epoch == epoch else { return }
            leaderInput(index, .event(.timerFired(timer)))
        case .toLeader(let index, let connection, let executor, let message, let buffered):
            guard buffered || openConnections.contains(connection) else { return }
            if masters[index].paused {
                // It sits in the socket's buffer: the process reads it when it wakes, even if
                // the peer has closed the connection meanwhile.
                queue.push(.toLeader(index, connection: connection, from: executor, message, buffered: true), at: masters[index].pausedUntil)
                return
            }
            received(message, by: index, on: connection, from: executor)
        case .toTaskExecutor(let executor, let connection, let message):
            guard openConnections.contains(connection), executors[executor].connection?.id == connection else { return }
            received(message, at: executor)
        case .leaderNoticesLoss(let index, let connection, let executor):
            if masters[index].alive, masters[index].paused {
                // After what the socket still holds.
                queue.push(event, at: masters[index].pausedUntil)
                return
            }
            leaderInput(index, .lost(executor, connection: connection))
        case .executorNoticesLoss(let executor, let connection):
            guard executors[executor].alive, executors[executor].connection?.id == connection else { return }
            executors[executor].connection = nil
            _ = executors[executor].table.disconnected(now: instant)
            log("task executor \(executors[executor].resources.id) lost its leader")
            lookAgain(executor)
        case .heartbeatCheck(let executor, let connection, let index):
            guard openConnections.contains(connection), masters[index].paused || !masters[index].alive else { return }
            log("task executor \(executors[executor].resources.id): no heartbeat from \(masters[index].id)")
            close(connection, executor: executor, master: index, noticeAfter: 0)
        case .lookForLeader(let executor, let incarnation):
            guard executors[executor].alive, executors[executor].incarnation == incarnation, executors[executor].connection == nil else { return }
            lookForLeader(executor)
        case .taskStep(let executor, let incarnation, let attempt, let state):
            guard executors[executor].alive, executors[executor].incarnation == incarnation else { return }
            step(attempt, to: state, at: executor)
        case .restartTaskExecutor(let executor):
            guard !executors[executor].alive else { return }
            nextIncarnation += 1
            executors[executor].alive = true
            executors[executor].incarnation = nextIncarnation
            executors[executor].table = TaskSlotTable(taskExecutor: executors[executor].resources.id)
            executors[executor].tasks = [:]
            executors[executor].connection = nil
            log("task executor \(executors[executor].resources.id) started")
            lookForLeader(executor)
        case .barrier(let executor, let incarnation, let attempt, let checkpoint, let producer):
            guard executors[executor].alive, executors[executor].incarnation == incarnation else { return }
            barrier(checkpoint, from: producer, reaches: attempt, at: executor)
        case .scheduled(let fault):
            injectScheduled(fault)
        case .taskFails(let executor, let incarnation, let attempt):
            guard executors[executor].alive, executors[executor].incarnation == incarnation, executors[executor].tasks[attempt]?.state == .running
            else { return }
            fail(attempt, at: executor, reason: "random failure")
        default:
            break
        }
    }

    mutating func injectScheduled(_ fault: ScheduledFaultKind) {
        switch fault {
        case .kind(let kind):
            inject(kind)
        case .failTask(let job, let vertexID, let subtask, let reason):
            for executor in executors.indices where executors[executor].alive {
                for (attempt, task) in executors[executor].tasks.sorted(by: { $0.key < $1.key })
                where attempt.job == job && task.descriptor.vertexID == vertexID && Int(attempt.attempt.vertex.subtask) == subtask
                    && !task.state.isTerminal
                {
                    fail(attempt, at: executor, reason: reason)
                }
            }
        case .loseTaskExecutor(let id, let returnAfter):
            guard let executor = executors.firstIndex(where: { $0.resources.id == id }), executors[executor].alive else { return }
            crashTaskExecutor(executor, returnAfter: returnAfter.map { Self.nanos($0) }, returns: returnAfter != nil)
        case .cancel(let job):
            request({ .cancel(job, $0) }, job: job)
        }
    }

    mutating func fail(_ attempt: TaskAttempt, at executor: Int, reason: String) {
        log("\(attempt.job) task \(attempt.attempt) fails: \(reason)")
        stopTask(attempt, at: executor)
        carryOut(executors[executor].table.taskChanged(attempt, to: .failed, failure: reason), at: executor, payload: nil)
    }

    // MARK: connections

    mutating func latency(_ master: Int, _ executor: Int) -> UInt64 {
        let base = draw(configuration.networkLatencyMillis)
        let key = LinkKey(master: master, executor: executor)
        if let until = slowLinks[key] {
            if until > now { return Self.ms(base * 20 + draw(100...600)) }
            slowLinks[key] = nil
        }
        return Self.ms(base)
    }

    /// When a message sent now on `connection` arrives: after its latency, and after the
    /// message before it on the same connection.
    mutating func arrival(on connection: UInt64, latency: UInt64) -> UInt64 {
        let time = max(now + latency, lastArrival[connection] ?? 0)
        lastArrival[connection] = time
        return time
    }

    mutating func sendToTaskExecutor(_ executor: Int, connection: UInt64, _ message: ToTaskExecutor, from master: Int) {
        guard openConnections.contains(connection) else { return }
        let delay = latency(master, executor)
        queue.push(.toTaskExecutor(executor, connection: connection, message), at: arrival(on: connection, latency: delay))
    }

    mutating func sendToLeader(_ message: ToLeader, from executor: Int) {
        guard let link = executors[executor].connection, openConnections.contains(link.id) else { return }
        if case .register = message {} else if !link.registered { return }
        let delay = latency(link.master, executor)
        queue.push(.toLeader(link.master, connection: link.id, from: executor, message), at: arrival(on: link.id, latency: delay))
    }

    /// Closes a connection; each end notices after `noticeAfter` (at once when a process ended,
    /// after the heartbeat timeout when the network dropped it).
    mutating func close(_ connection: UInt64, executor: Int, master: Int, noticeAfter: UInt64) {
        guard openConnections.remove(connection) != nil else { return }
        lastArrival[connection] = nil
        queue.push(.executorNoticesLoss(executor, connection: connection), at: now + noticeAfter + latency(master, executor))
        queue.push(.leaderNoticesLoss(master, connection: connection, executor: executor), at: now + noticeAfter + latency(master, executor))
    }

    /// Every connection of a master ends with it (its sockets close).
    mutating func closeConnections(of master: Int) {
        for executor in executors.indices {
            if let link = executors[executor].connection, link.master == master { close(link.id, executor: executor, master: master, noticeAfter: 0) }
        }
    }

    /// A paused master stops answering heartbeats: its task executors give up on it after the timeout.
    mutating func pausedConnections(of master: Int) {
        for executor in executors.indices {
            if let link = executors[executor].connection, link.master == master {
                queue.push(.heartbeatCheck(executor, connection: link.id, master: master), at: now + Self.nanos(configuration.heartbeatTimeout))
            }
        }
    }

    mutating func breakConnection(of executor: Int) {
        guard let link = executors[executor].connection else { return }
        log("connection \(masters[link.master].id)-\(executors[executor].resources.id) breaks")
        close(link.id, executor: executor, master: link.master, noticeAfter: Self.nanos(configuration.heartbeatTimeout))
    }

    mutating func crashTaskExecutor(_ executor: Int, returnAfter: UInt64? = nil, returns: Bool = true) {
        log("task executor \(executors[executor].resources.id) killed")
        executors[executor].alive = false
        executors[executor].tasks = [:]
        if let link = executors[executor].connection { close(link.id, executor: executor, master: link.master, noticeAfter: 0) }
        executors[executor].connection = nil
        guard returns else { return }
        let back = returnAfter ?? Self.ms(draw(configuration.restartDelayMillis))
        queue.push(.restartTaskExecutor(executor), at: now + back)
    }

    // MARK: finding the leader

    mutating func lookForLeader(_ executor: Int) {
        guard let record = store.leadership, let holder = record.holder,
            let master = masters.firstIndex(where: { $0.id == holder.member }), executors[executor].table.shouldConnect(toLeaderAt: record.epoch)
        else {
            lookAgain(executor)
            return
        }
        executors[executor].table.observed(epoch: record.epoch)
        nextConnection += 1
        let connection = nextConnection
        openConnections.insert(connection)
        executors[executor].connection = (master, connection, record.epoch, false)
        let registration = JobManager.Registration(
            resources: executors[executor].resources, dataAddress: "\(executors[executor].resources.id):0",
            tasks: executors[executor].table.registrationReports)
        sendToLeader(.register(registration), from: executor)
    }

    mutating func lookAgain(_ executor: Int) {
        let delay = executors[executor].table.retryDelay(now: instant)
        queue.push(.lookForLeader(executor, incarnation: executors[executor].incarnation), at: now + Self.nanos(delay))
    }

    // MARK: messages

    mutating func received(_ message: ToLeader, by index: Int, on connection: UInt64, from executor: Int) {
        let shell = masters[index].leader
        switch message {
        case .register(let registration):
            guard masters[index].alive, let shell, !shell.ended, masters[index].election?.leaderEpoch == shell.epoch else {
                sendToTaskExecutor(executor, connection: connection, .notLeader, from: index)
                return
            }
            leaderInput(index, .register(executor, connection: connection, registration))
        case .report(let report):
            guard shell?.connections[executor] == connection else { return }
            leaderInput(index, .event(.reported(report, from: executors[executor].resources.id)))
        case .acknowledge(let job, let attempt, let checkpoint, let state):
            guard shell?.connections[executor] == connection else { return }
            leaderInput(index, .event(.checkpointAcknowledged(job, attempt, checkpoint: checkpoint, state: state)))
        case .decline(let job, let attempt, let checkpoint, let reason):
            guard shell?.connections[executor] == connection else { return }
            leaderInput(index, .event(.checkpointDeclined(job, attempt, checkpoint: checkpoint, reason: reason)))
        }
    }

    mutating func received(_ message: ToTaskExecutor, at executor: Int) {
        guard let link = executors[executor].connection else { return }
        switch message {
        case .registered(let epoch):
            guard !link.registered else { return }
            if executors[executor].table.registered(epoch: epoch) {
                executors[executor].connection!.registered = true
                log("task executor \(executors[executor].resources.id) registered with \(masters[link.master].id) at epoch \(epoch)")
            } else {
                close(link.id, executor: executor, master: link.master, noticeAfter: 0)
            }
        case .notLeader:
            openConnections.remove(link.id)
            executors[executor].connection = nil
            lookAgain(executor)
        case .command(let command, let epoch):
            let actions = executors[executor].table.command(TaskSlotTable.Command(command), epoch: epoch)
            carryOut(actions, at: executor, payload: command)
        }
    }

    // MARK: the TaskSlotTable's actions

    mutating func carryOut(_ actions: [TaskSlotTable.Action], at executor: Int, payload: JobManager.Command?) {
        let incarnation = executors[executor].incarnation
        for action in actions {
            switch action {
            case .refuse(let reason):
                log("task executor \(executors[executor].resources.id) refuses a command: \(reason)")
            case .acknowledge, .releasePartitions:
                break
            case .startTask(let attempt):
                guard case .deploy(let descriptor) = payload else { continue }
                executors[executor].tasks[attempt] = SimulatedTask(descriptor: descriptor, state: .deploying)
                queue.push(.taskStep(executor, incarnation: incarnation, attempt, .initializing), at: now + Self.ms(draw(configuration.taskStepMillis)))
            case .stopTask(let attempt):
                queue.push(.taskStep(executor, incarnation: incarnation, attempt, .canceled), at: now + Self.ms(draw(configuration.taskStepMillis)))
            case .forward(let attempts):
                for attempt in attempts { forward(payload, to: attempt, at: executor) }
            case .report(let report):
                sendToLeader(.report(report), from: executor)
            case .declineCheckpoint(let attempt, let checkpoint, let reason):
                sendToLeader(.decline(attempt.job, attempt.attempt, checkpoint: checkpoint, reason: reason), from: executor)
            case .closeTask(let attempt):
                executors[executor].tasks[attempt] = nil
            }
        }
    }

    mutating func forward(_ payload: JobManager.Command?, to attempt: TaskAttempt, at executor: Int) {
        guard let task = executors[executor].tasks[attempt], task.state == .running else { return }
        switch payload {
        case .triggerCheckpoint(_, _, let id, _, _, _):
            // A source: its state is its position; the barrier goes to every consumer.
            let position = self.position(of: task)
            let state = StateHandle(path: "source|\(position)", size: UInt64(position), checksum: 0)
            sendToLeader(.acknowledge(attempt.job, attempt.attempt, checkpoint: id, state: state), from: executor)
            let producer = Int(attempt.attempt.vertex.subtask)
            barrierPositions[BarrierKey(job: attempt.job, checkpoint: id, producer: producer, attempt: attempt.attempt.attempt)] = position
            for consumerExecutor in executors.indices where executors[consumerExecutor].alive {
                // In a fixed order: each consumer draws its barrier's latency from the seed.
                for (consumer, consumerTask) in executors[consumerExecutor].tasks.sorted(by: { $0.key < $1.key }) where consumer.job == attempt.job {
                    let fed = consumerTask.descriptor.inputs.contains { gate in
                        gate.channels.contains { $0.producerSubtask == producer && $0.producerAttempt == attempt.attempt.attempt }
                    }
                    guard fed else { continue }
                    // Barriers travel in band with the records: on one channel, in order.
                    let channel = ChannelKey(producer: attempt, consumer: consumer)
                    let arrival = max(now + Self.ms(draw(configuration.networkLatencyMillis)) + 1, barrierArrivals[channel] ?? 0)
                    barrierArrivals[channel] = arrival
                    queue.push(
                        .barrier(consumerExecutor, incarnation: executors[consumerExecutor].incarnation, consumer, checkpoint: id, producer: producer),
                        at: arrival)
                }
            }
        case .notifyCheckpointComplete(_, let id):
            commitPending(through: id, of: attempt, at: executor)
        default:
            break
        }
    }

    // MARK: tasks

    func position(of task: SimulatedTask) -> Int64 {
        if let stopped = task.stoppedAt { return stopped }
        guard let since = task.runningSince else { return task.startPosition }
        return task.startPosition + Int64((now - since) / 1_000_000) * configuration.recordsPerMillisecond
    }

    mutating func stopTask(_ attempt: TaskAttempt, at executor: Int) {
        guard var task = executors[executor].tasks[attempt] else { return }
        task.stoppedAt = position(of: task)
        executors[executor].tasks[attempt] = task
    }

    mutating func step(_ attempt: TaskAttempt, to state: ExecutionState, at executor: Int) {
        guard var task = executors[executor].tasks[attempt], !task.state.isTerminal else { return }
        switch state {
        case .initializing: guard task.state == .deploying else { return }
        case .running: guard task.state == .initializing else { return }
        case .finished: guard task.state == .running else { return }
        default: break
        }
        if state == .running {
            task.runningSince = now
            start(&task, attempt: attempt)
        } else if task.state == .running {
            task.stoppedAt = position(of: task)
        }
        task.state = state
        executors[executor].tasks[attempt] = task
        carryOut(executors[executor].table.taskChanged(attempt, to: state), at: executor, payload: nil)
        let incarnation = executors[executor].incarnation
        switch state {
        case .initializing:
            queue.push(.taskStep(executor, incarnation: incarnation, attempt, .running), at: now + Self.ms(draw(configuration.taskStepMillis)))
        case .running:
            let duration = configuration.taskDuration(task.descriptor.vertexID, Int(attempt.attempt.vertex.subtask)).map(Self.nanos)
            if let duration { queue.push(.taskStep(executor, incarnation: incarnation, attempt, .finished), at: now + duration) }
            if configuration.randomTaskFailurePercentPerSecond > 0 {
                // Exponentially distributed time to failure.
                let rate = configuration.randomTaskFailurePercentPerSecond / 100
                let uniform = Double.random(in: Double.ulpOfOne..<1, using: &random)
                let failAfter = UInt64(-Glibc.log(uniform) / rate * 1e9)
                if duration.map({ failAfter < $0 }) ?? true {
                    queue.push(.taskFails(executor, incarnation: incarnation, attempt), at: now + failAfter)
                }
            }
        default:
            break
        }
    }

    /// A task starts running from its restored state: a source from its position, a sink first
    /// commits what the checkpoint it restores holds (if that was not committed yet).
    mutating func start(_ task: inout SimulatedTask, attempt: TaskAttempt) {
        let producers = task.descriptor.inputs.flatMap { $0.channels.map(\.producerSubtask) }
        let restored = task.descriptor.restore
        if producers.isEmpty {
            task.startPosition = restored.flatMap { Int64($0.state.path.split(separator: "|").last ?? "") } ?? 0
            return
        }
        for producer in producers { task.pendingStart[producer] = 0 }
        guard let restored else { return }
        let ranges = SinkState.decode(restored.state.path)
        let key = SinkOutputs.Key(job: attempt.job, sink: Int(attempt.attempt.vertex.subtask))
        if restored.checkpoint > sinks.committedThrough[key, default: 0] {
            for (producer, range) in ranges.sorted(by: { $0.key < $1.key }) {
                commit(key, producer: producer, from: range.from, to: range.to, checkpoint: restored.checkpoint)
            }
            sinks.committedThrough[key] = restored.checkpoint
        }
        for (producer, range) in ranges { task.pendingStart[producer] = range.to }
    }

    /// A barrier from one producer reaches a consumer; with every producer's, the consumer
    /// (the job's sink) takes its snapshot and acknowledges.
    mutating func barrier(_ checkpoint: CheckpointID, from producer: Int, reaches attempt: TaskAttempt, at executor: Int) {
        guard var task = executors[executor].tasks[attempt], task.state == .running else { return }
        let channels = task.descriptor.inputs.flatMap(\.channels)
        guard let channel = channels.first(where: { $0.producerSubtask == producer }),
            let position = barrierPositions[BarrierKey(job: attempt.job, checkpoint: checkpoint, producer: producer, attempt: channel.producerAttempt)]
        else { return }
        var seen = task.pending.last(where: { $0.checkpoint == checkpoint })?.positions ?? [:]
        if task.pending.last?.checkpoint != checkpoint { task.pending.append((checkpoint, [:])) }
        seen[producer] = position
        task.pending[task.pending.count - 1].positions = seen
        executors[executor].tasks[attempt] = task
        guard seen.count == channels.count else { return }
        // Aligned: the sink's state holds what it received and did not commit yet.
        var ranges: [Int: (from: Int64, to: Int64)] = [:]
        for (producer, to) in seen { ranges[producer] = (task.pendingStart[producer] ?? 0, to) }
        let state = StateHandle(path: SinkState.encode(ranges), size: 0, checksum: 0)
        sendToLeader(.acknowledge(attempt.job, attempt.attempt, checkpoint: checkpoint, state: state), from: executor)
    }

    /// The sink commits what it received up to checkpoint `id` (Flink's two-phase commit: every
    /// pending transaction up to the completed checkpoint).
    mutating func commitPending(through id: CheckpointID, of attempt: TaskAttempt, at executor: Int) {
        guard var task = executors[executor].tasks[attempt] else { return }
        let key = SinkOutputs.Key(job: attempt.job, sink: Int(attempt.attempt.vertex.subtask))
        let producers = task.descriptor.inputs.flatMap { $0.channels.map(\.producerSubtask) }
        let complete = task.pending.filter { $0.checkpoint <= id && $0.positions.count == producers.count }
        guard let last = complete.max(by: { $0.checkpoint < $1.checkpoint }) else { return }
        if last.checkpoint > sinks.committedThrough[key, default: 0] {
            for producer in producers.sorted() {
                let from = task.pendingStart[producer] ?? 0
                commit(key, producer: producer, from: from, to: last.positions[producer]!, checkpoint: last.checkpoint)
            }
            sinks.committedThrough[key] = last.checkpoint
        }
        for producer in producers { task.pendingStart[producer] = last.positions[producer]! }
        task.pending.removeAll { $0.checkpoint <= id }
        executors[executor].tasks[attempt] = task
    }

    /// Appends records (from, to] of one producer to a sink's committed output: I4 holds when
    /// they follow exactly what was committed before.
    mutating func commit(_ key: SinkOutputs.Key, producer: Int, from: Int64, to: Int64, checkpoint: CheckpointID) {
        let end = sinks.ends[key]?[producer] ?? 0
        if from < end {
            violation("I4", "duplicate-output", "sink \(key.job)#\(key.sink) commits records \(from + 1)...\(min(to, end)) of source \(producer) again (checkpoint \(checkpoint))")
        } else if from > end {
            violation("I4", "missing-output", "sink \(key.job)#\(key.sink) never commits records \(end + 1)...\(from) of source \(producer) (checkpoint \(checkpoint))")
        }
        sinks.ends[key, default: [:]][producer] = to
        sinks.commits += 1
    }
}

/// A sink's snapshot as the simulation encodes it in a state handle's path: per producer, the
/// records received and not committed yet.
enum SinkState {
    static func encode(_ ranges: [Int: (from: Int64, to: Int64)]) -> String {
        "sink|" + ranges.keys.sorted().map { "\($0)=\(ranges[$0]!.from)-\(ranges[$0]!.to)" }.joined(separator: ",")
    }

    static func decode(_ path: String) -> [Int: (from: Int64, to: Int64)] {
        var ranges: [Int: (from: Int64, to: Int64)] = [:]
        guard path.hasPrefix("sink|") else { return ranges }
        for part in path.dropFirst(5).split(separator: ",") {
            let sides = part.split(separator: "=")
            let bounds = sides.last?.split(separator: "-") ?? []
            guard sides.count == 2, bounds.count == 2, let producer = Int(sides[0]), let from = Int64(bounds[0]), let to = Int64(bounds[1]) else {
                continue
            }
            ranges[producer] = (from, to)
        }
        return ranges
    }
}

/// One data channel: from a producer attempt to a consumer attempt.
struct ChannelKey: Hashable {
    var producer: TaskAttempt
    var consumer: TaskAttempt
}

struct BarrierKey: Hashable {
    var job: JobID
    var checkpoint: CheckpointID
    var producer: Int
    var attempt: Int32
}

extension TaskSlotTable.Command {
    /// The decision-relevant part of a leader's command.
    init(_ command: JobManager.Command) {
        switch command {
        case .deploy(let descriptor): self = .deploy(TaskAttempt(job: descriptor.job, attempt: descriptor.attempt), allocation: descriptor.allocation)
        case .cancel(let job, let attempt): self = .cancel(TaskAttempt(job: job, attempt: attempt))
        case .updatePartition(let job, let consumer, _, _): self = .updatePartitionInfo(consumer: TaskAttempt(job: job, attempt: consumer))
        case .releasePartitions(let job, _): self = .releasePartitions(job)
        case .triggerCheckpoint(let job, let source, let id, _, _, _): self = .triggerCheckpoint(TaskAttempt(job: job, attempt: source), checkpoint: id)
        case .notifyCheckpointComplete(let job, let checkpoint): self = .notifyCheckpointComplete(job, checkpoint: checkpoint)
        case .endInput(let job, let attempt): self = .endInput(TaskAttempt(job: job, attempt: attempt))
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
