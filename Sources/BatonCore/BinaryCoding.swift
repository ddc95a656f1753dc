/// A compact binary encoding for records that are written often (execution state changes):
/// unsigned LEB128 varints, zig-zag signed varints, length-prefixed bytes and strings.
public struct BinaryWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    public mutating func write(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    public mutating func write(_ value: Int) { write(signed: Int64(value)) }

    public mutating func write(signed value: Int64) {
        write(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    public mutating func write(_ value: Bool) { bytes.append(value ? 1 : 0) }

    public mutating func write(_ value: UInt8) { bytes.append(value) }

    /// Four bytes, little-endian: a field whose value is known only later (`set(fixed32:at:)`).
    public mutating func write(fixed32 value: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    /// Overwrites the `write(fixed32:)` field at `offset`.
    public mutating func set(fixed32 value: UInt32, at offset: Int) {
        for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> UInt32(index * 8)) }
    }

    public var count: Int { bytes.count }

    /// Makes room for `capacity` bytes in all.
    public mutating func reserve(_ capacity: Int) { bytes.reserveCapacity(capacity) }

    /// Empties the bytes, keeping their capacity.
    public mutating func removeAll() { bytes.removeAll(keepingCapacity: true) }

    /// Hands the bytes out and starts afresh with `capacity` reserved.
    public mutating func take(reserving capacity: Int) -> [UInt8] {
        var taken: [UInt8] = []
        taken.reserveCapacity(capacity)
        swap(&taken, &bytes)
        return taken
    }

    public mutating func write(bytes value: [UInt8]) {
        write(UInt64(value.count))
        bytes += value
    }

    public mutating func write(_ value: String) {
        var text = value
        text.withUTF8 { utf8 in
            write(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }
}

/// Reads what `BinaryWriter` wrote; every read throws `BinaryDecodingError` on truncated or
/// malformed input instead of trapping.
public struct BinaryReader: Sendable {
    public let bytes: [UInt8]
    public private(set) var offset: Int = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var isAtEnd: Bool { offset == bytes.count }

    public mutating func readUInt64() throws(BinaryDecodingError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < bytes.count else { throw BinaryDecodingError(offset: offset, problem: "truncated varint") }
            let byte = bytes[offset]
            offset += 1
            guard shift < 64 else { throw BinaryDecodingError(offset: offset, problem: "varint too long") }
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return result }
            shift += 7
        }
    }

    public mutating func readInt64() throws(BinaryDecodingError) -> Int64 {
        let raw = try readUInt64()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    public mutating func readInt() throws(BinaryDecodingError) -> Int {
        let value = try readInt64()
        guard let int = Int(exactly: value) else { throw BinaryDecodingError(offset: offset, problem: "integer out of range") }
        return int
    }

    public mutating func readFixed32() throws(BinaryDecodingError) -> UInt32 {
        guard bytes.count - offset >= 4 else { throw BinaryDecodingError(offset: offset, problem: "truncated fixed32") }
        var value: UInt32 = 0
        for index in 0..<4 { value |= UInt32(bytes[offset + index]) << UInt32(index * 8) }
        offset += 4
        return value
    }

    public mutating func readByte() throws(BinaryDecodingError) -> UInt8 {
        guard offset < bytes.count else { throw BinaryDecodingError(offset: offset, problem: "truncated byte") }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func readBool() throws(BinaryDecodingError) -> Bool {
        switch try readByte() {
        case 0: return false
        case 1: return true
        case let other: throw BinaryDecodingError(offset: offset - 1, problem: "\(other) is not a boolean")
        }
    }

    public mutating func readBytes() throws(BinaryDecodingError) -> [UInt8] {
        let count = try readUInt64()
        guard count <= UInt64(bytes.count - offset) else {
            throw BinaryDecodingError(offset: offset, problem: "length \(count) runs past the end")
        }
        defer { offset += Int(count) }
        return Array(bytes[offset..<(offset + Int(count))])
    }

    public mutating func readString() throws(BinaryDecodingError) -> String {
        let count = try readUInt64()
        guard count <= UInt64(bytes.count - offset) else {
            throw BinaryDecodingError(offset: offset, problem: "length \(count) runs past the end")
        }
        let start = offset
        offset += Int(count)
        let text: String? = bytes.withUnsafeBufferPointer { all in
            let utf8 = UnsafeBufferPointer(rebasing: all[start..<(start + Int(count))])
            // ASCII (the common case) is valid as it is; anything else is validated.
            var ascii = true
            for byte in utf8 where byte >= 0x80 {
                ascii = false
                break
            }
            return ascii ? String(decoding: utf8, as: UTF8.self) : String(validating: utf8, as: UTF8.self)
        }
        guard let text else { throw BinaryDecodingError(offset: offset, problem: "string is not UTF-8") }
        return text
    }
}

public struct BinaryDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    public var offset: Int
    public var problem: String
    public init(offset: Int, problem: String) {
        self.offset = offset
        self.problem = problem
    }
    public var description: String { "at byte \(offset): \(problem)" }
}
