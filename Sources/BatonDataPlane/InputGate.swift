public import BatonCore
public import BatonOperators

/// Where one input channel reads: a producer attempt's subpartition, on this task executor or
/// another one (by data address), or not known yet (an update will say).
public struct InputChannelSpec: Hashable, Sendable {
    public var partition: PartitionID
    public var subpartition: Int
    /// The producer's task executor and its data address, when known.
    public var location: Location?

    public struct Location: Hashable, Sendable {
        public var taskExecutor: ResourceID
        public var host: String
        public var port: Int
        public init(taskExecutor: ResourceID, host: String, port: Int) {
            self.taskExecutor = taskExecutor
            self.host = host
            self.port = port
        }
    }

    public init(partition: PartitionID, subpartition: Int, location: Location?) {
        self.partition = partition
        self.subpartition = subpartition
        self.location = location
    }
}

/// An error reading an input: the partition is gone or its connection failed. The consumer task
/// fails with it (a blocking partition that is gone makes the failover produce it again).
public struct InputError: Error, Sendable, CustomStringConvertible {
    public var partition: PartitionID
    public var message: String
    public var partitionLost: Bool
    public init(partition: PartitionID, message: String, partitionLost: Bool) {
        self.partition = partition
        self.message = message
        self.partitionLost = partitionLost
    }
    public var description: String { "input \(partition): \(message)" }
}

/// Opens channels: local ones from the registry, remote ones over the data plane.
public protocol ChannelOpener: Sendable {
    /// Reads `channel` until its end, handing every event to `sink`; returns early when the sink
    /// no longer takes events.
    func read(_ channel: InputChannelSpec, into sink: ChannelSink) async throws
}

/// A checkpoint as a task is told to take it.
public struct CheckpointTrigger: Hashable, Sendable {
    public var id: CheckpointID
    public var timestamp: WallTime
    /// The folder the task writes its state into.
    public var directory: String
    public var isSavepoint: Bool
    public init(id: CheckpointID, timestamp: WallTime, directory: String, isSavepoint: Bool) {
        self.id = id
        self.timestamp = timestamp
        self.directory = directory
        self.isSavepoint = isSavepoint
    }
}

/// What the task executor tells a running task.
public enum TaskControl: Hashable, Sendable {
    /// Take a checkpoint now (sources; other tasks take it when its barriers aligned).
    case triggerCheckpoint(CheckpointTrigger)
    /// Checkpoint `id` is complete (sinks commit).
    case checkpointCompleted(CheckpointID)
    /// End the source's input: it produces nothing more, and the task finishes (stop with drain).
    case endInput
}

/// What a task with inputs takes from its gate, in order.
public enum GateEvent: Sendable {
    case records([Record])
    /// Channel `channel` delivered a checkpoint's barrier; the channel waits for `release`.
    case barrier(CheckpointTrigger, channel: Int)
    case latencyMarker(MonotonicInstant)
    case channelEnded(Int)
    case control(TaskControl)
}

/// Where a channel's reader hands its events: decoded into the gate's mailbox. After a barrier
/// the reader waits until the task releases the channel (alignment), so that the channel's
/// later records stay behind it; its producer is slowed meanwhile, nothing is dropped.
public struct ChannelSink: Sendable {
    public let index: Int
    let gate: InputGate

    /// Delivers one encoded event; false once the task no longer reads.
    public func deliver(_ bytes: EncodedBatch) async throws -> Bool {
        switch try ChannelEventCodec.decode(bytes) {
        case .records(let records):
            return await gate.mailbox.put(.records(records))
        case .latencyMarker(let instant):
            return await gate.mailbox.put(.latencyMarker(instant))
        case .barrier(let trigger):
            guard await gate.mailbox.put(.barrier(trigger, channel: index)) else { return false }
            return (try? await gate.releases[index].take()) != nil
        }
    }
}

/// A task's inputs: every channel of every input result, merged into one bounded mailbox of
/// decoded events. Channels whose producer location is not known yet start once an update gives
/// it. The mailbox ends when every channel ended, or fails with the first error.
public final class InputGate: Sendable {
    public let mailbox: Mailbox<GateEvent>
    let releases: [Mailbox<Void>]
    private let updates: Mailbox<InputChannelSpec>
    private let channels: [InputChannelSpec]

    public init(channels: [InputChannelSpec], capacity: Int = 16) {
        self.channels = channels
        mailbox = Mailbox(capacity: max(capacity, 2))
        releases = channels.map { _ in Mailbox(capacity: 1) }
        updates = Mailbox(capacity: max(1, channels.count * 2))
    }

    public var channelCount: Int { channels.count }

    /// Gives the location of a channel that was not known (UpdatePartitionInfo).
    public func update(_ channel: InputChannelSpec) async {
        _ = await updates.put(channel)
    }

    /// Lets channel `index`, held after a barrier, go on.
    public func release(_ index: Int) {
        releases[index].force(())
    }

    /// Reads every channel until all ended; run it beside the task that takes from `mailbox`.
    public func run(opener: any ChannelOpener) async {
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                var waiting = Array(channels.enumerated().filter { $0.element.location == nil })
                for (index, channel) in channels.enumerated() where channel.location != nil {
                    group.addTask { try await self.read(channel, index: index, opener: opener) }
                }
                while !waiting.isEmpty, let update = try await updates.take() {
                    guard
                        let position = waiting.firstIndex(where: {
                            $0.element.partition == update.partition && $0.element.subpartition == update.subpartition
                        }),
                        update.location != nil
                    else { continue }
                    let index = waiting.remove(at: position).offset
                    group.addTask { try await self.read(update, index: index, opener: opener) }
                }
                try await group.waitForAll()
            }
            mailbox.finish()
        } catch {
            mailbox.fail(error)
        }
        updates.finish()
    }

    private func read(_ channel: InputChannelSpec, index: Int, opener: any ChannelOpener) async throws {
        try await opener.read(channel, into: ChannelSink(index: index, gate: self))
        await mailbox.put(.channelEnded(index))
    }

    /// Stops reading (the task ends).
    public func close() async {
        mailbox.finish()
        updates.finish()
        for release in releases { release.finish() }
    }
}
