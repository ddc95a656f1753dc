public import BatonCore
public import BatonOperators

/// What travels on a channel between tasks, in order: batches of records, checkpoint barriers,
/// and latency markers (a source's timestamp that the sinks measure the end-to-end latency with).
public enum ChannelEvent: Hashable, Sendable {
    case records([Record])
    /// The barrier of a checkpoint: everything before it belongs to the checkpoint.
    case barrier(CheckpointTrigger)
    /// Emitted by a source at `emittedAt` (a monotonic instant; comparable between processes of
    /// one machine).
    case latencyMarker(emittedAt: MonotonicInstant)
}

/// The binary form of a channel event: a tag byte, then the event.
public enum ChannelEventCodec {
    public static let recordsTag: UInt8 = 0
    static let barrierTag: UInt8 = 1
    static let latencyTag: UInt8 = 2

    public static func encode(_ event: ChannelEvent) -> EncodedBatch {
        switch event {
        case .records(let records): return encode(records: records)
        case .barrier(let trigger):
            var writer = BinaryWriter(capacity: 32 + trigger.directory.utf8.count)
            writer.write(barrierTag)
            writer.write(trigger.id.rawValue)
            writer.write(signed: trigger.timestamp.millisecondsSince1970)
            writer.write(trigger.isSavepoint)
            writer.write(trigger.directory)
            return writer.bytes
        case .latencyMarker(let instant):
            var writer = BinaryWriter(capacity: 10)
            writer.write(latencyTag)
            writer.write(instant.nanoseconds)
            return writer.bytes
        }
    }

    public static func encode(records: [Record]) -> EncodedBatch {
        var builder = recordsBuilder(capacity: records.count * 16)
        for record in records { builder.append(record) }
        return builder.take()
    }

    /// A batch of records filled record by record; `take()` gives its encoded event.
    public static func recordsBuilder(capacity: Int = 1 << 15) -> RecordBatchCodec.Builder {
        RecordBatchCodec.Builder(header: [recordsTag], capacity: capacity)
    }

    public static func decode(_ bytes: EncodedBatch) throws -> ChannelEvent {
        var reader = BinaryReader(bytes)
        let event: ChannelEvent
        switch try reader.readByte() {
        case recordsTag: event = .records(try RecordBatchCodec.read(from: &reader))
        case barrierTag:
            let id = CheckpointID(rawValue: try reader.readUInt64())
            let timestamp = WallTime(millisecondsSince1970: try reader.readInt64())
            let isSavepoint = try reader.readBool()
            event = .barrier(CheckpointTrigger(id: id, timestamp: timestamp, directory: try reader.readString(), isSavepoint: isSavepoint))
        case latencyTag: event = .latencyMarker(emittedAt: MonotonicInstant(nanoseconds: try reader.readUInt64()))
        case let tag: throw BinaryDecodingError(offset: 0, problem: "unknown channel event tag \(tag)")
        }
        guard reader.isAtEnd else { throw BinaryDecodingError(offset: reader.offset, problem: "trailing bytes after a channel event") }
        return event
    }
}
