import BatonRPC
import BatonWire
import NIOCore
import NIOEmbedded

/// The `frame` target: a byte stream as an RPC connection receives it, through the connection's
/// own frame decoder (in an `EmbeddedChannel`, the pipeline a connection has) and envelope check.
enum FrameTarget {
    /// The largest frame the fuzzed connection takes. Smaller than a connection's default (16 MiB,
    /// `rpc.maxFrame`) so that the refusal of a longer frame is reachable from short inputs.
    static let maxFrameBytes = 64 << 10

    /// The envelopes of the stream, in order; throws at the first frame that is too long or not
    /// an envelope of this protocol version, and when the stream ends inside a frame.
    static func envelopes(in bytes: [UInt8]) throws -> [WireEnvelope] {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        try RPCFraming.addFrameDecoder(to: channel.pipeline.syncOperations, maxFrameBytes: maxFrameBytes)
        try channel.writeInbound(ByteBuffer(bytes: bytes))
        var envelopes: [WireEnvelope] = []
        var consumed = 0
        while let frame = try channel.readInbound(as: ByteBuffer.self) {
            consumed += 4 + frame.readableBytes
            if let disagreement = RPCFraming.fastPathDisagreement(in: frame) { throw FramePathsDisagree(description: disagreement) }
            envelopes.append(try RPCFraming.envelope(in: frame, from: "the peer", at: "frame \(envelopes.count + 1) of the stream"))
        }
        guard consumed == bytes.count else {
            throw FuzzTargetError(
                "the stream ends inside a frame: \(bytes.count - consumed) bytes follow the last whole frame (\(envelopes.count) whole frames)")
        }
        return envelopes
    }
}

/// The record-batch fast path read a frame differently from SwiftProtobuf: a bug, never a clear
/// rejection (no target documents it, so the fuzzer stops on it).
struct FramePathsDisagree: Error, CustomStringConvertible {
    var description: String
}
