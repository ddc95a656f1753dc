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
        public var taskExecutor: Identifier
        public var host: String
        public var port: Int
        public init(taskExecutor: Identifier, host: String, port: Int) {
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
    func read(_ channel: InputChannelSpec, into mailbox: Mailbox<[Record]>) async throws
}

/// A task's inputs: every channel of every input result, merged into one bounded mailbox of
/// decoded batches. Channels whose producer location is not known yet start once an update
/// gives it. The mailbox ends when every channel ended, or fails with the first error.
public final class InputGate: Sendable {
    public let mailbox: Mailbox<[Record]>
    private let updates: Mailbox<InputChannelSpec>
    private let channels: [InputChannelSpec]

    public init(channels: [InputChannelSpec], capacity: Int = 16) {
        self.channels = channels
        mailbox = Mailbox(capacity: max(capacity, 2))
        updates = Mailbox(capacity: max(1, channels.count * 2))
    }

    /// Gives the location of a channel that was not known (UpdatePartitionInfo).
    public func update(_ channel: InputChannelSpec) async {
        _ = await updates.put(channel)
    }

    /// Reads every channel until all ended; run it beside the task that takes from `mailbox`.
    public func run(opener: any ChannelOpener) async {
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                var waiting = channels.filter { $0.location == nil }
                for channel in channels where channel.location != nil {
                    group.addTask { try await opener.read(channel, into: self.mailbox) }
                }
                while !waiting.isEmpty, let update = try await updates.take() {
                    guard let index = waiting.firstIndex(where: { $0.partition == update.partition && $0.subpartition == update.subpartition }),
                        update.location != nil
                    else { continue }
                    waiting.remove(at: index)
                    group.addTask { try await opener.read(update, into: self.mailbox) }
                }
                try await group.waitForAll()
            }
            mailbox.finish()
        } catch {
            mailbox.fail(error)
        }
        updates.finish()
    }

    /// Stops reading (the task ends).
    public func close() async {
        mailbox.finish()
        updates.finish()
    }
}
