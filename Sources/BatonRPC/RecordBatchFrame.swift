import BatonCore
import BatonWire
import Foundation
import NIOCore

/// The data plane's hot frame, an Envelope carrying one RecordBatch, written and read without the
/// copies the general path makes: SwiftProtobuf would copy a batch's bytes into `Data` to build
/// the envelope, again to serialize it, and once more to decode a received one.
///
/// The bytes are exactly those SwiftProtobuf writes for `Envelope { protocol_version, record_batch
/// { channel, records } }` (fields in number order, zero fields left out), so nothing on the wire
/// changes and either side may use the general path. `decode` recognises only that layout and
/// declines anything else (another body, an epoch or a correlation, a `count`, fields out of
/// order), which the general decoder then reads; what it accepts decodes to the envelope the
/// general decoder makes, with the records' `Data` sharing the received buffer.
enum RecordBatchFrame {
    /// Envelope field 1 (`protocol_version`, varint).
    private static let versionTag: UInt8 = 0x08
    /// Envelope field 43 (`record_batch`, length-delimited): (43 << 3) | 2 as a varint.
    private static let bodyTag: [UInt8] = [0xDA, 0x02]
    /// RecordBatch field 1 (`channel`, varint) and field 2 (`records`, length-delimited).
    private static let channelTag: UInt8 = 0x08
    private static let recordsTag: UInt8 = 0x12

    /// One frame (its 4-byte length first) carrying `records` on `channel`, with this build's
    /// protocol version: the batch's bytes are copied once, into the buffer the socket writes.
    static func encode(channel: UInt64, records: some Collection<UInt8>, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        // The RecordBatch up to its records' bytes, then the Envelope up to the RecordBatch.
        var batch = BinaryWriter(capacity: 24)
        if channel != 0 {
            batch.write(channelTag)
            batch.write(channel)
        }
        if !records.isEmpty {
            batch.write(recordsTag)
            batch.write(UInt64(records.count))
        }
        var envelope = BinaryWriter(capacity: 24)
        let version = UInt64(RPCConfiguration.protocolVersion)
        if version != 0 {
            envelope.write(versionTag)
            envelope.write(version)
        }
        for byte in bodyTag { envelope.write(byte) }
        envelope.write(UInt64(batch.count + records.count))
        let length = envelope.count + batch.count + records.count
        var buffer = allocator.buffer(capacity: 4 + length)
        buffer.writeInteger(UInt32(length))
        buffer.writeBytes(envelope.bytes)
        buffer.writeBytes(batch.bytes)
        buffer.writeBytes(records)
        return buffer
    }

    /// The envelope in `frame` (the bytes after the length) when it is a record batch in the
    /// layout `encode` writes; nil for anything else, which the general decoder reads.
    static func decode(_ frame: ByteBuffer) -> WireEnvelope? {
        var cursor = frame
        var version: UInt64 = 0
        if cursor.getInteger(at: cursor.readerIndex, as: UInt8.self) == versionTag {
            cursor.moveReaderIndex(forwardBy: 1)
            guard let value = readVarint(&cursor), value <= UInt32.max else { return nil }
            version = value
        }
        guard cursor.readBytes(length: bodyTag.count) == bodyTag, let batchLength = readVarint(&cursor),
            batchLength == cursor.readableBytes
        else { return nil }
        var channel: UInt64 = 0
        if cursor.getInteger(at: cursor.readerIndex, as: UInt8.self) == channelTag {
            cursor.moveReaderIndex(forwardBy: 1)
            guard let value = readVarint(&cursor) else { return nil }
            channel = value
        }
        var records = Data()
        if cursor.readableBytes > 0 {
            guard cursor.readInteger(as: UInt8.self) == recordsTag, let length = readVarint(&cursor), length == cursor.readableBytes else {
                return nil
            }
            records = sharedData(cursor)
        }
        var envelope = WireEnvelope()
        envelope.protocolVersion = UInt32(version)
        envelope.recordBatch = .with {
            $0.channel = channel
            $0.records = records
        }
        return envelope
    }

    /// `buffer`'s readable bytes as `Data` that keeps the buffer's storage alive instead of
    /// copying it.
    private static func sharedData(_ buffer: ByteBuffer) -> Data {
        buffer.withUnsafeReadableBytesWithStorageManagement { bytes, storage in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return Data() }
            _ = storage.retain()
            return Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: bytes.count, deallocator: .custom { _, _ in storage.release() })
        }
    }

    /// A varint of at most 10 bytes whose value fits 64 bits; nil otherwise (the general decoder
    /// then names what is wrong).
    private static func readVarint(_ buffer: inout ByteBuffer) -> UInt64? {
        var (result, shift): (UInt64, UInt64) = (0, 0)
        while let byte = buffer.readInteger(as: UInt8.self) {
            guard shift < 64, shift < 63 || byte <= 1 else { return nil }
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return result }
            shift += 7
        }
        return nil
    }
}
