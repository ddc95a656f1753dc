public import BatonWire
public import NIOCore

/// The steps a connection applies to the bytes it receives, reachable from outside the module for
/// the fuzz targets (`tools/fuzz frame`, `Sources/BatonFuzzTargets`), so that they feed the very
/// decoder a connection runs rather than a copy of it:
///
/// 1. `addFrameDecoder(to:maxFrameBytes:)` installs the `FrameSplitter` that
///    `makeFramedAsyncChannel` installs (a 4-byte big-endian length, then that many bytes; a frame
///    longer than the limit is an `RPCError` with code `.frameTooLarge`);
/// 2. `envelope(in:from:at:)` decodes one frame the way `RPCConnection` does: an Envelope of this
///    protocol version, or an `RPCError` with code `.malformed` naming the sender.
///
/// `frame(_:)` is the other direction, as a connection sends (for the fuzz targets' seeds).
/// `fastPathDisagreement(in:)` lets the `frame` target check the data plane's record-batch fast
/// path (`RecordBatchFrame`) against SwiftProtobuf on every frame it decodes.
/// Nothing else of a connection (handshake, heartbeats, correlation) is reachable from here.
public enum RPCFraming {
    /// Adds the frame decoder to a pipeline (on its event loop); frames leave it as `ByteBuffer`s.
    public static func addFrameDecoder(to pipeline: ChannelPipeline.SynchronousOperations, maxFrameBytes: Int) throws {
        try pipeline.addHandler(FrameSplitter(maxFrameBytes: maxFrameBytes))
    }

    /// The envelope in one frame, as a connection reads it from `peer` at `address` (both only
    /// name the sender in the error).
    public static func envelope(in frame: ByteBuffer, from peer: String, at address: String) throws -> WireEnvelope {
        try RPCConnection.decode(frame, from: peer, at: address)
    }

    /// `envelope` as one frame, as a connection writes it: its length, then its bytes, with this
    /// build's protocol version set.
    public static func frame(_ envelope: WireEnvelope) throws -> ByteBuffer {
        try envelope.frame()
    }

    /// `records` on `channel` as one frame, as the data plane sends a batch
    /// (`RPCConnection.send(recordBatches:channel:)`): the bytes `frame(_:)` makes of that envelope.
    public static func recordBatchFrame(channel: UInt64, records: [UInt8]) -> ByteBuffer {
        RecordBatchFrame.encode(channel: channel, records: records)
    }

    /// Where a connection's record-batch fast path and SwiftProtobuf read `frame` (the bytes after
    /// its length) differently: nil when the fast path declines it, or decodes it to the envelope
    /// SwiftProtobuf decodes.
    public static func fastPathDisagreement(in frame: ByteBuffer) -> String? {
        guard let fast = RecordBatchFrame.decode(frame) else { return nil }
        let general: WireEnvelope
        do { general = try WireEnvelope(serializedBytes: FrameBytes(received: frame)) } catch {
            return "the fast path decoded \(fast), SwiftProtobuf refused the frame: \(error)"
        }
        return general == fast ? nil : "the fast path decoded \(fast), SwiftProtobuf \(general)"
    }
}
