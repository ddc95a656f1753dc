import BatonWire
import NIOCore
import SwiftProtobuf

/// Splits the byte stream into frames: a 4-byte big-endian length, then that many bytes. A frame
/// longer than the maximum is an error, which closes the connection.
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    let maxFrameBytes: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard Int(length) <= maxFrameBytes else {
            throw RPCError(.frameTooLarge, "a frame of \(length) bytes is larger than the limit of \(maxFrameBytes)")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// The bytes of one message in a frame, as SwiftProtobuf writes and reads them: a message is
/// serialized straight into the ByteBuffer that goes out, after the frame's 4-byte length, and a
/// received frame is decoded where it lies. No copy either way.
struct FrameBytes: SwiftProtobufContiguousBytes {
    /// The frame: `header` bytes (the length, on the way out; none for a received frame), then the message.
    var buffer: ByteBuffer
    let header: Int

    init(received frame: ByteBuffer) {
        buffer = frame
        header = 0
    }

    /// An outgoing frame of `count` message bytes, each `byte`.
    init(repeating byte: UInt8, count: Int) {
        buffer = ByteBufferAllocator().buffer(capacity: 4 + count)
        buffer.writeInteger(UInt32(count))
        buffer.writeRepeatingByte(byte, count: count)
        header = 4
    }

    init<S: Sequence>(_ sequence: S) where S.Element == UInt8 {
        let bytes = Array(sequence)
        self.init(repeating: 0, count: bytes.count)
        buffer.setBytes(bytes, at: buffer.readerIndex + header)
    }

    var count: Int { buffer.readableBytes - header }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeReadableBytes { try body(UnsafeRawBufferPointer(rebasing: $0.dropFirst(header))) }
    }

    mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        let header = self.header
        return try buffer.withUnsafeMutableReadableBytes { try body(UnsafeMutableRawBufferPointer(rebasing: $0.dropFirst(header))) }
    }
}

extension WireEnvelope {
    /// This envelope as one frame to write (its protocol version set): its length, then its bytes.
    func frame() throws -> ByteBuffer {
        var envelope = self
        envelope.protocolVersion = RPCConfiguration.protocolVersion
        let bytes: FrameBytes = try envelope.serializedBytes()
        return bytes.buffer
    }
}

extension Channel {
    /// Installs the framing handlers and wraps the channel for async use. Call on the event loop.
    func makeFramedAsyncChannel(maxFrameBytes: Int) throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        // Outgoing frames carry their length already (`WireEnvelope.frame()`).
        try pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: maxFrameBytes)))
        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: self)
    }
}
