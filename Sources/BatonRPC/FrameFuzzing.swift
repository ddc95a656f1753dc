public import BatonWire
public import NIOCore

/// The steps a connection applies to the bytes it receives, reachable from outside the module for
/// the fuzz targets (`tools/fuzz frame`, `Sources/BatonFuzzTargets`), so that they feed the very
/// decoder a connection runs rather than a copy of it:
///
/// 1. `addFrameDecoder(to:maxFrameBytes:)` installs the `FrameDecoder` that
///    `makeFramedAsyncChannel` installs (a 4-byte big-endian length, then that many bytes; a frame
///    longer than the limit is an `RPCError` with code `.frameTooLarge`);
/// 2. `envelope(in:from:at:)` decodes one frame the way `RPCConnection` does: an Envelope of this
///    protocol version, or an `RPCError` with code `.malformed` naming the sender.
///
/// `frame(_:)` is the other direction, as a connection sends (for the fuzz targets' seeds).
/// Nothing else of a connection (handshake, heartbeats, correlation) is reachable from here.
public enum RPCFraming {
    /// Adds the frame decoder to a pipeline (on its event loop); frames leave it as `ByteBuffer`s.
    public static func addFrameDecoder(to pipeline: ChannelPipeline.SynchronousOperations, maxFrameBytes: Int) throws {
        try pipeline.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: maxFrameBytes)))
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
}
