public import BatonCore

/// A record: a line of text, or a keyed value (a word and its count, a key and its sum).
public enum Record: Hashable, Sendable, CustomStringConvertible {
    case line(String)
    case keyed(key: String, value: Int64)

    /// The key hash edges route by (a line is its own key).
    public var key: String {
        switch self {
        case .line(let text): text
        case .keyed(let key, _): key
        }
    }

    /// How the record is written in text sinks: the line, or `key,value`.
    public var description: String {
        switch self {
        case .line(let text): text
        case .keyed(let key, let value): "\(key),\(value)"
        }
    }
}

/// The binary form of a batch of records (what travels between tasks): the record count as four
/// bytes (so that a batch is encoded record by record as it fills, and the count set at the end),
/// then each record: a tag, the text or key, and the value.
public enum RecordBatchCodec {
    public static func encode(_ records: [Record]) -> [UInt8] {
        var builder = Builder(header: [])
        for record in records { builder.append(record) }
        return builder.take()
    }

    /// A batch being filled: records are encoded as they are appended.
    public struct Builder: Sendable {
        private var writer: BinaryWriter
        private let header: [UInt8]
        public private(set) var count = 0
        private let capacity: Int

        /// A batch whose bytes start with `header` (a channel event's tag).
        public init(header: [UInt8], capacity: Int = 1 << 15) {
            self.header = header
            self.capacity = capacity
            // The buffer is reserved with the first record: a subpartition that is never written
            // to (a task of thousands, its partition of thousands of subpartitions) costs its header only.
            writer = BinaryWriter(capacity: header.count + 4)
            start()
        }

        private mutating func start() {
            for byte in header { writer.write(byte) }
            writer.write(fixed32: 0)
            count = 0
        }

        public var isEmpty: Bool { count == 0 }
        /// The encoded size so far.
        public var byteCount: Int { writer.count }

        public mutating func append(_ record: Record) {
            if count == 0 { writer.reserve(capacity + 64) }
            switch record {
            case .line(let text):
                writer.write(UInt8(0))
                writer.write(text)
            case .keyed(let key, let value):
                writer.write(UInt8(1))
                writer.write(key)
                writer.write(signed: value)
            }
            count += 1
        }

        /// The batch's bytes; the builder starts a new, empty batch. A small batch is copied out
        /// (its buffer stays for the next); a large one hands its buffer over (the next batch
        /// reserves its own with its first record).
        public mutating func take() -> [UInt8] {
            writer.set(fixed32: UInt32(count), at: header.count)
            let bytes: [UInt8]
            if writer.count < capacity / 4 {
                bytes = writer.bytes.withUnsafeBufferPointer { Array($0) }
                writer.removeAll()
            } else {
                bytes = writer.take(reserving: header.count + 4)
            }
            start()
            return bytes
        }
    }

    public static func decode(_ bytes: [UInt8]) throws -> [Record] {
        var reader = BinaryReader(bytes)
        let records = try read(from: &reader)
        guard reader.isAtEnd else { throw BinaryDecodingError(offset: reader.offset, problem: "trailing bytes after the records") }
        return records
    }

    /// Reads records encoded by a `Builder`.
    public static func read(from reader: inout BinaryReader) throws -> [Record] {
        let count = try reader.readFixed32()
        guard count <= UInt32(reader.bytes.count - reader.offset) else {
            throw BinaryDecodingError(offset: reader.offset - 4, problem: "batch claims \(count) records")
        }
        var records: [Record] = []
        records.reserveCapacity(Int(count))
        for _ in 0..<count {
            switch try reader.readByte() {
            case 0: records.append(.line(try reader.readString()))
            case 1: records.append(.keyed(key: try reader.readString(), value: try reader.readInt64()))
            case let tag: throw BinaryDecodingError(offset: reader.offset - 1, problem: "unknown record tag \(tag)")
            }
        }
        return records
    }
}

/// Flink's key groups: a key hashes to one of `maxParallelism` key groups, and each consumer
/// subtask owns a contiguous range of them, so that state can be redistributed on rescaling.
public enum KeyGroups {
    /// A stable hash (FNV-1a), the same in every process.
    public static func hash(_ key: String) -> UInt64 {
        var key = key
        return key.withUTF8 { bytes in
            var hash: UInt64 = 0xCBF2_9CE4_8422_2325
            for byte in bytes {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01B3
            }
            return hash
        }
    }

    public static func keyGroup(of key: String, maxParallelism: Int) -> Int {
        Int(hash(key) % UInt64(maxParallelism))
    }

    /// The subtask that owns `keyGroup`.
    public static func subtask(ofKeyGroup keyGroup: Int, maxParallelism: Int, parallelism: Int) -> Int {
        keyGroup * parallelism / maxParallelism
    }

    public static func subtask(for key: String, maxParallelism: Int, parallelism: Int) -> Int {
        subtask(ofKeyGroup: keyGroup(of: key, maxParallelism: maxParallelism), maxParallelism: maxParallelism, parallelism: parallelism)
    }
}
