import BatonCore
import Foundation

/// The on-disk form of every value: a format byte, a CRC-32C over namespace, key and payload, and
/// the payload. A flipped bit anywhere, or a value moved under another key, fails the check.
enum ValueEnvelope {
    static let formatByte: UInt8 = 1
    static let headerSize = 5

    static func checksum(_ namespace: StoreNamespace, _ key: [UInt8], _ payload: ArraySlice<UInt8>) -> UInt32 {
        let crc = CRC32C.update(CRC32C.update(0, [namespace.number]), key)
        return CRC32C.update(crc, payload)
    }

    static func seal(_ namespace: StoreNamespace, _ key: [UInt8], _ payload: [UInt8]) -> [UInt8] {
        let crc = checksum(namespace, key, payload[...])
        var bytes: [UInt8] = [formatByte]
        bytes.reserveCapacity(headerSize + payload.count)
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: crc >> shift)) }
        bytes += payload
        return bytes
    }

    static func open(_ namespace: StoreNamespace, _ key: [UInt8], _ bytes: [UInt8], path: String) throws -> [UInt8] {
        guard bytes.count >= headerSize, bytes[0] == formatByte else {
            throw HAStoreError(
                .corrupt, path: path, "value of \(namespace)/\(StoreKeyText.describe(key)) has no valid header")
        }
        let stored = bytes[1..<5].reduce(UInt32(0)) { ($0 << 8) | UInt32($1) }
        let payload = bytes[headerSize...]
        guard checksum(namespace, key, payload) == stored else {
            throw HAStoreError(
                .corrupt, path: path,
                "value of \(namespace)/\(StoreKeyText.describe(key)) fails its checksum: the store file is corrupt")
        }
        return Array(payload)
    }
}

enum StoreKeyText {
    static func describe(_ key: [UInt8]) -> String {
        if !key.isEmpty, key.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return String(decoding: key, as: UTF8.self) }
        if let number = StoreKey.readUInt64(key) { return "#\(number)" }
        return "0x" + key.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}

/// The record codec: JSON with sorted keys (readable in dumps, stable bytes for equal records).
public enum RecordCodec {
    public static func encode(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(value))
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try JSONDecoder().decode(type, from: Data(bytes))
    }
}

/// Reads within one store transaction; every value's checksum is verified.
public struct StoreReader {
    let backend: any HAStoreBackendReading
    public let path: String

    init(backend: any HAStoreBackendReading, path: String) {
        self.backend = backend
        self.path = path
    }

    /// The payload stored under `key`, checksum verified.
    public func bytes(_ namespace: StoreNamespace, _ key: [UInt8]) throws -> [UInt8]? {
        guard let raw = try backend.get(namespace, key) else { return nil }
        return try ValueEnvelope.open(namespace, key, raw, path: path)
    }

    /// The record stored under `key`.
    public func value<T: Decodable>(_ type: T.Type, _ namespace: StoreNamespace, _ key: [UInt8]) throws -> T? {
        guard let payload = try bytes(namespace, key) else { return nil }
        return try decode(type, payload, namespace, key)
    }

    /// Entries whose key starts with `prefix`, ascending, payloads checksum verified.
    public func entries(_ namespace: StoreNamespace, prefix: [UInt8] = [], after: [UInt8]? = nil, limit: Int = .max)
        throws -> [StoreEntry]
    {
        try backend.scan(namespace, prefix: prefix, after: after, limit: limit).map {
            StoreEntry(key: $0.key, value: try ValueEnvelope.open(namespace, $0.key, $0.value, path: path))
        }
    }

    /// Records whose key starts with `prefix`, ascending by key.
    public func values<T: Decodable>(
        _ type: T.Type, _ namespace: StoreNamespace, prefix: [UInt8] = [], after: [UInt8]? = nil, limit: Int = .max
    ) throws -> [T] {
        try entries(namespace, prefix: prefix, after: after, limit: limit).map {
            try decode(type, $0.value, namespace, $0.key)
        }
    }

    /// Records whose key starts with `prefix`, ascending by key, and the keys of those whose value
    /// does not verify or decode, each with why (reading goes on past them; a failure to read
    /// the store at all still throws).
    public func valuesAndRefusals<T: Decodable>(_ type: T.Type, _ namespace: StoreNamespace, prefix: [UInt8] = [])
        throws -> (values: [T], refused: [(key: [UInt8], reason: String)])
    {
        var values: [T] = []
        var refused: [(key: [UInt8], reason: String)] = []
        for entry in try backend.scan(namespace, prefix: prefix, after: nil, limit: .max) {
            do {
                values.append(try decode(type, try ValueEnvelope.open(namespace, entry.key, entry.value, path: path), namespace, entry.key))
            } catch {
                refused.append((entry.key, "\(error)"))
            }
        }
        return (values, refused)
    }

    private func decode<T: Decodable>(_ type: T.Type, _ payload: [UInt8], _ namespace: StoreNamespace, _ key: [UInt8])
        throws -> T
    {
        do {
            return try RecordCodec.decode(type, from: payload)
        } catch {
            throw HAStoreError(
                .invalidValue, path: path,
                "value of \(namespace)/\(StoreKeyText.describe(key)) is not a valid \(T.self)", underlying: error)
        }
    }
}

/// Reads and writes within one write transaction.
public struct StoreWriter {
    let backend: any HAStoreBackendWriting
    public let reader: StoreReader

    init(backend: any HAStoreBackendWriting, path: String) {
        self.backend = backend
        self.reader = StoreReader(backend: backend, path: path)
    }

    public var path: String { reader.path }

    public func put(_ namespace: StoreNamespace, _ key: [UInt8], bytes payload: [UInt8]) throws {
        try backend.put(namespace, key, ValueEnvelope.seal(namespace, key, payload))
    }

    public func put(_ namespace: StoreNamespace, _ key: [UInt8], _ value: some Encodable) throws {
        try put(namespace, key, bytes: try RecordCodec.encode(value))
    }

    public func delete(_ namespace: StoreNamespace, _ key: [UInt8]) throws {
        try backend.delete(namespace, key)
    }
}
