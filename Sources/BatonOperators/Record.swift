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

/// The binary form of a batch of records (what travels between tasks).
public enum RecordBatchCodec {
    public static func encode(_ records: [Record]) -> [UInt8] {
        var writer = BinaryWriter(capacity: records.count * 16 + 8)
        write(records, into: &writer)
        return writer.bytes
    }

    /// Appends the records' encoding to `writer`.
    public static func write(_ records: [Record], into writer: inout BinaryWriter) {
        writer.write(UInt64(records.count))
        for record in records {
            switch record {
            case .line(let text):
                writer.write(UInt8(0))
                writer.write(text)
            case .keyed(let key, let value):
                writer.write(UInt8(1))
                writer.write(key)
                writer.write(signed: value)
            }
        }
    }

    public static func decode(_ bytes: [UInt8]) throws -> [Record] {
        var reader = BinaryReader(bytes)
        let records = try read(from: &reader)
        guard reader.isAtEnd else { throw BinaryDecodingError(offset: reader.offset, problem: "trailing bytes after the records") }
        return records
    }

    /// Reads records encoded by `write(_:into:)`.
    public static func read(from reader: inout BinaryReader) throws -> [Record] {
        let bytes = reader.bytes
        let count = try reader.readUInt64()
        guard count <= UInt64(bytes.count) else { throw BinaryDecodingError(offset: 0, problem: "batch claims \(count) records") }
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
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return hash
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
