public import BatonCore
import BatonJobGraph
import BatonOperators
public import BatonRPC
import BatonWire
import Foundation
import Synchronization
public import Logging

/// The data plane of a task executor: its partition registry, the server other task executors
/// read remote partitions from, and the opener its tasks read channels with.
///
/// Remote channels use credit-based flow control: the consumer grants credits (batches it can
/// take), the producer side sends a batch only against a credit, and the consumer returns a
/// credit once a batch has entered its task's input mailbox. A slow consumer therefore slows its
/// producer, and nothing is dropped.
///
/// How many credits a channel starts with trades memory for wake-ups: each run of batches a
/// producer sends, and each run of credits a consumer returns (half the window at a time), wakes
/// the event loops at both ends. A channel gets an equal share of its gate's `creditsPerGate`,
/// between two and `maxCreditsPerChannel` (as Flink's floating buffers per gate and exclusive
/// ones per channel): a gate of few channels streams in long runs, one of many stays within
/// about `creditsPerGate` batches (two per channel at least).
public struct DataPlane: ChannelOpener {
    public let taskExecutor: ResourceID
    public let registry: PartitionRegistry
    public let configuration: RPCConfiguration
    public let logger: Logger
    /// Batches one consumer channel lets a remote producer send ahead, at most.
    public let maxCreditsPerChannel: Int
    /// Batches the channels of one input gate let their producers send ahead together (each
    /// channel at least two).
    public let creditsPerGate: Int
    /// How long a consumer waits for its producer to register a partition.
    public let patience: Duration

    public init(
        taskExecutor: ResourceID, registry: PartitionRegistry, configuration: RPCConfiguration, logger: Logger, maxCreditsPerChannel: Int = 16,
        creditsPerGate: Int = 32, patience: Duration = .seconds(30)
    ) {
        self.taskExecutor = taskExecutor
        self.registry = registry
        self.configuration = configuration
        self.logger = logger
        self.maxCreditsPerChannel = max(2, maxCreditsPerChannel)
        self.creditsPerGate = creditsPerGate
        self.patience = patience
    }

    /// The credits a channel of a gate with `channels` channels starts with.
    public func initialCredit(channels: Int) -> Int {
        max(2, min(maxCreditsPerChannel, creditsPerGate / max(1, channels)))
    }

    // MARK: consumer side

    public func read(_ channel: InputChannelSpec, into sink: ChannelSink) async throws {
        guard let location = channel.location else { return }
        if location.taskExecutor == taskExecutor {
            try await readLocal(channel, into: sink)
        } else {
            try await readRemote(channel, location: location, into: sink)
        }
    }

    private func readLocal(_ channel: InputChannelSpec, into sink: ChannelSink) async throws {
        guard let partition = await registry.partition(channel.partition, patience: patience),
            let reader = partition.reader(channel.subpartition)
        else {
            throw InputError(partition: channel.partition, message: "no such partition on this task executor", partitionLost: true)
        }
        while let batch = try await reader.next() {
            guard try await sink.deliver(batch) else { return }
        }
    }

    private func readRemote(_ channel: InputChannelSpec, location: InputChannelSpec.Location, into sink: ChannelSink) async throws {
        let identity = RPCPeer(id: taskExecutor.rawValue, role: .taskExecutor)
        let credit = initialCredit(channels: sink.gate.channelCount)
        do {
            try await RPCClient.connect(host: location.host, port: location.port, identity: identity, configuration: configuration, logger: logger) {
                connection in
                var request = WireEnvelope()
                request.partitionRequest = .with {
                    $0.producer = .with {
                        $0.job = channel.partition.job.rawValue
                        $0.subtask = UInt32(channel.partition.producerSubtask)
                        $0.attempt = UInt32(channel.partition.producerAttempt)
                    }
                    $0.result = UInt32(channel.partition.result)
                    $0.subpartition = UInt32(channel.subpartition)
                    $0.initialCredit = UInt32(credit)
                    $0.channel = 1
                }
                try await connection.send(request)
                // Credits go back in runs of half the window: one message per run, not per batch.
                let grantEvery = max(1, credit / 2)
                var owed = 0
                for await message in connection.messages {
                    switch message.body {
                    case .recordBatch(let batch):
                        guard try await sink.deliver(Array(batch.records)) else { return }
                        owed += 1
                        guard owed >= grantEvery else { continue }
                        var grant = WireEnvelope()
                        grant.credit = .with {
                            $0.channel = 1
                            $0.batches = UInt32(owed)
                        }
                        owed = 0
                        try await connection.send(grant)
                    case .endOfPartition:
                        return
                    case .partitionNotFound(let notFound):
                        throw InputError(partition: channel.partition, message: notFound.reason, partitionLost: true)
                    default:
                        continue
                    }
                }
                throw InputError(partition: channel.partition, message: "the producer's task executor closed the connection", partitionLost: true)
            }
        } catch let error as InputError {
            throw error
        } catch {
            throw InputError(partition: channel.partition, message: "\(error)", partitionLost: true)
        }
    }

    // MARK: producer side

    /// Serves partition requests on `server` until cancelled.
    public func serve(_ server: RPCServer) async throws {
        try await server.run { connection in
            await self.serve(connection)
        }
    }

    private func serve(_ connection: RPCConnection) async {
        var messages = connection.messages.makeAsyncIterator()
        guard let first = await messages.next(), case .partitionRequest(let request) = first.body,
            let job = JobID(rawValue: request.producer.job)
        else { return }
        let id = PartitionID(
            job: job, result: Int(request.result), producerSubtask: Int(request.producer.subtask), producerAttempt: Int(request.producer.attempt))
        guard let partition = await registry.partition(id, patience: patience), let reader = partition.reader(Int(request.subpartition)) else {
            var notFound = WireEnvelope()
            notFound.partitionNotFound = .with {
                $0.channel = request.channel
                $0.reason = "task executor \(taskExecutor) has no partition \(id) subpartition \(request.subpartition)"
            }
            try? await connection.send(notFound)
            return
        }
        let credits = CreditGate(initial: Int(request.initialCredit))
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // The stream has one consumer at a time: the first message was read above.
                for await message in connection.messages {
                    if case .credit(let credit) = message.body { credits.grant(Int(credit.batches)) }
                }
                credits.close()
            }
            do {
                // Batches that are ready together, and have credits, go out in one write.
                while let batch = try await reader.next() {
                    guard await credits.acquire() else { break }
                    var run = [batch]
                    while credits.tryAcquire() {
                        guard let more = try reader.nextIfReady() else {
                            credits.grant(1)
                            break
                        }
                        run.append(more)
                    }
                    try await connection.send(recordBatches: run, channel: request.channel)
                }
                var end = WireEnvelope()
                end.endOfPartition = .with { $0.channel = request.channel }
                try await connection.send(end)
                // Let the consumer read the end before the connection closes.
                _ = await credits.waitForClose(timeout: .seconds(5))
            } catch {
                logger.debug("partition stream ended", metadata: ["baton.partition": "\(id)", "baton.error": "\(error)"])
            }
            group.cancelAll()
        }
    }
}

/// Credits a consumer granted: `acquire` waits for one, `tryAcquire` takes one if there is one.
final class CreditGate: Sendable {
    private struct State {
        var available: Int
        var closed = false
        var waiter: CheckedContinuation<Bool, Never>?
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>

    init(initial: Int) { state = Mutex(State(available: initial)) }

    /// Takes a credit, waiting for one (one task acquires at a time); false once closed.
    func acquire() async -> Bool {
        if tryAcquire() { return true }
        return await withCheckedContinuation { waiter in
            let now = state.withLock { state -> Bool? in
                if state.available > 0 {
                    state.available -= 1
                    return true
                }
                if state.closed { return false }
                state.waiter = waiter
                return nil
            }
            if let now { waiter.resume(returning: now) }
        }
    }

    func tryAcquire() -> Bool {
        state.withLock { state in
            guard state.available > 0 else { return false }
            state.available -= 1
            return true
        }
    }

    func grant(_ count: Int) {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            state.available += count
            guard state.available > 0, let waiter = state.waiter else { return nil }
            state.available -= 1
            state.waiter = nil
            return waiter
        }
        waiter?.resume(returning: true)
    }

    func close() {
        let (waiter, closeWaiters) = state.withLock { state in
            state.closed = true
            defer {
                state.waiter = nil
                state.closeWaiters = []
            }
            return (state.waiter, state.closeWaiters)
        }
        waiter?.resume(returning: false)
        for waiter in closeWaiters { waiter.resume() }
    }

    /// Waits until the consumer closed the connection, at most `timeout`.
    func waitForClose(timeout: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { waiter in
                    let closed = self.state.withLock { state -> Bool in
                        if state.closed { return true }
                        state.closeWaiters.append(waiter)
                        return false
                    }
                    if closed { waiter.resume() }
                }
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            if !first { self.close() }
            group.cancelAll()
            return first
        }
    }
}
