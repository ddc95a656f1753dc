import BatonWire
import NIOCore
import SwiftProtobuf

/// Splits the byte stream into frames: a 4-byte big-endian length, then that many bytes. A frame
/// longer than the maximum is an error, which closes the connection.
///
/// A frame that arrives whole within one read is handed on as a slice of that read's buffer (no
/// copy); one that spans reads (a 64 KiB batch often does) is gathered into a buffer of its own,
/// each of its bytes copied once. (NIO's `ByteToMessageHandler` would append
/// every read to one growing buffer shared with the slices already handed on, copying it again
/// on each append.)
final class FrameSplitter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let maxFrameBytes: Int
    /// The bytes of a length that a read ended inside (fewer than 4).
    private var lengthBytes: [UInt8] = []
    /// The frame being gathered and how many of its bytes are still to come.
    private var gathering: ByteBuffer?
    private var missing = 0
    private var failed = false

    init(maxFrameBytes: Int) { self.maxFrameBytes = maxFrameBytes }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var input = unwrapInboundIn(data)
        do {
            while input.readableBytes > 0 {
                if var frame = gathering {
                    // Not referenced from `self` while it grows, so that the write does not copy it.
                    gathering = nil
                    let take = min(missing, input.readableBytes)
                    frame.writeImmutableBuffer(input.readSlice(length: take)!)
                    missing -= take
                    if missing == 0 { context.fireChannelRead(wrapInboundOut(frame)) } else { gathering = frame }
                    continue
                }
                guard let length = readLength(&input) else { break }
                guard length <= maxFrameBytes else {
                    throw RPCError(.frameTooLarge, "a frame of \(length) bytes is larger than the limit of \(maxFrameBytes)")
                }
                if input.readableBytes >= length {
                    context.fireChannelRead(wrapInboundOut(input.readSlice(length: length)!))
                } else {
                    // Room for the whole frame up to 1 MiB; a longer one (rare: batches are 64 KiB)
                    // grows as its bytes come, so that a length alone reserves little.
                    var frame = context.channel.allocator.buffer(capacity: min(length, 1 << 20))
                    missing = length - input.readableBytes
                    frame.writeImmutableBuffer(input.readSlice(length: input.readableBytes)!)
                    gathering = frame
                }
            }
        } catch {
            failed = true
            gathering = nil
            context.fireErrorCaught(error)
        }
    }

    /// The next frame's length, once all 4 of its bytes are in (keeping those of a read that ends
    /// inside it).
    private func readLength(_ input: inout ByteBuffer) -> Int? {
        if lengthBytes.isEmpty, let length = input.readInteger(as: UInt32.self) { return Int(length) }
        while lengthBytes.count < 4, let byte = input.readInteger(as: UInt8.self) { lengthBytes.append(byte) }
        guard lengthBytes.count == 4 else { return nil }
        defer { lengthBytes.removeAll(keepingCapacity: true) }
        return lengthBytes.reduce(0) { $0 << 8 | Int($1) }
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

extension RPCConfiguration {
    /// How a connection sizes the buffers it reads into: small while the peer sends little, growing
    /// up to 1 MiB while it streams, so that a data-plane connection takes many 64 KiB batches in
    /// one read and hands most of them on as slices, without a copy (`FrameSplitter`). NIO's
    /// default stops at 64 KiB, under one batch.
    static let receiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 1 << 20)
}

extension Channel {
    /// Installs the framing handlers and wraps the channel for async use. Call on the event loop.
    func makeFramedAsyncChannel(maxFrameBytes: Int) throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        // Outgoing frames carry their length already (`WireEnvelope.frame()`).
        try pipeline.syncOperations.addHandler(FrameSplitter(maxFrameBytes: maxFrameBytes))
        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: self)
    }
}
