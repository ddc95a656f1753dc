import BatonRPC
import BatonWire
import Foundation
import NIOCore
import NIOEmbedded
import SwiftProtobuf
import Testing

/// The data plane's record-batch frames (`RPCFraming.recordBatchFrame`, read by every
/// connection's decoder) against SwiftProtobuf, which defines the wire format.
@Suite struct RecordBatchFrameTests {
    static let channels: [UInt64] = [0, 1, 127, 128, 300, UInt64(UInt32.max) + 1, .max]
    static let sizes = [0, 1, 127, 128, 16_383, 16_384, 70_000]

    static func records(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) } }

    static func envelope(channel: UInt64, records: [UInt8]) -> WireEnvelope {
        .with {
            $0.protocolVersion = RPCConfiguration.protocolVersion
            $0.recordBatch = .with {
                $0.channel = channel
                $0.records = Data(records)
            }
        }
    }

    /// The frame without its 4-byte length, as the frame decoder hands it on.
    static func body(_ frame: ByteBuffer) -> ByteBuffer {
        var frame = frame
        let length = frame.readInteger(as: UInt32.self)
        #expect(length.map(Int.init) == frame.readableBytes, "the length prefix counts the rest of the frame")
        return frame
    }

    @Test("a batch frame is byte for byte the frame SwiftProtobuf makes of the same envelope", arguments: channels)
    func encodesAsSwiftProtobuf(channel: UInt64) throws {
        for size in Self.sizes {
            let records = Self.records(size)
            let fast = RPCFraming.recordBatchFrame(channel: channel, records: records)
            let general = try RPCFraming.frame(Self.envelope(channel: channel, records: records))
            #expect(fast == general, "channel \(channel), \(size) bytes")
        }
    }

    @Test("a connection reads a batch frame to the envelope SwiftProtobuf reads, whichever side wrote it")
    func decodesAsSwiftProtobuf() throws {
        for channel in Self.channels {
            for size in Self.sizes {
                let expected = Self.envelope(channel: channel, records: Self.records(size))
                for frame in [RPCFraming.recordBatchFrame(channel: channel, records: Self.records(size)), try RPCFraming.frame(expected)] {
                    let body = Self.body(frame)
                    #expect(RPCFraming.fastPathDisagreement(in: body) == nil)
                    #expect(try RPCFraming.envelope(in: body, from: "te1", at: "test") == expected, "channel \(channel), \(size) bytes")
                }
            }
        }
    }

    @Test("envelopes the fast path does not take (a count, an epoch, a correlation, another body) read as before")
    func otherLayoutsFallBack() throws {
        var withCount = Self.envelope(channel: 3, records: Self.records(40))
        withCount.recordBatch.count = 2
        var withEpoch = Self.envelope(channel: 3, records: Self.records(40))
        withEpoch.epoch = 9
        var withCorrelation = Self.envelope(channel: 3, records: Self.records(40))
        withCorrelation.correlation = 5
        let credit = WireEnvelope.with { $0.credit = .with { $0.channel = 1; $0.batches = 4 } }
        for envelope in [withCount, withEpoch, withCorrelation, credit] {
            let body = Self.body(try RPCFraming.frame(envelope))
            var expected = envelope
            expected.protocolVersion = RPCConfiguration.protocolVersion
            #expect(try RPCFraming.envelope(in: body, from: "te1", at: "test") == expected)
        }
    }

    @Test("a batch frame of another protocol version, cut short, or with bytes after its batch is refused as malformed, naming the sender")
    func damagedFramesAreRefused() throws {
        let frame = RPCFraming.recordBatchFrame(channel: 1, records: Self.records(300))
        var bytes = Array(Self.body(frame).readableBytesView)
        var otherVersion = bytes
        otherVersion[1] = UInt8(RPCConfiguration.protocolVersion + 1)
        let cut = Array(bytes.dropLast(7))
        bytes.append(0x1F)  // a stray byte after the batch: field 3 with wire type 7, which does not exist
        for damaged in [otherVersion, cut, bytes] {
            let body = ByteBuffer(bytes: damaged)
            #expect(RPCFraming.fastPathDisagreement(in: body) == nil)
            let error = #expect(throws: RPCError.self) { try RPCFraming.envelope(in: body, from: "te1", at: "10.0.0.2:6123") }
            #expect(error?.code == .malformed && error?.message.contains("te1") == true, "\(String(describing: error))")
        }
    }

    @Test("the records of a received batch stay readable after the frame's buffer is gone and its memory reused")
    func recordsOutliveTheirBuffer() throws {
        let records = Self.records(50_000)
        var envelope: WireEnvelope?
        do {
            let body = Self.body(RPCFraming.recordBatchFrame(channel: 7, records: records))
            envelope = try RPCFraming.envelope(in: body, from: "te1", at: "test")
        }
        // Allocate and scribble over buffers of the same size, as the next reads would.
        var scratch: [ByteBuffer] = []
        for _ in 0..<16 {
            var buffer = ByteBufferAllocator().buffer(capacity: 60_000)
            buffer.writeRepeatingByte(0xEE, count: 60_000)
            scratch.append(buffer)
        }
        #expect(Array(try #require(envelope).recordBatch.records) == records)
        #expect(scratch.count == 16)
    }

    @Test("mutated batch frames are either declined by the fast path or read as SwiftProtobuf reads them")
    func mutationsAgreeWithSwiftProtobuf() throws {
        var generator = SplitMix64(seed: 0xBA70)
        let seeds = Self.channels.flatMap { channel in [0, 1, 130].map { RPCFraming.recordBatchFrame(channel: channel, records: Self.records($0)) } }
        var taken = 0
        for round in 0..<20_000 {
            var bytes = Array(Self.body(seeds[round % seeds.count]).readableBytesView)
            for _ in 0...(generator.next() % 3) {
                guard !bytes.isEmpty else { break }
                let position = Int(generator.next() % UInt64(bytes.count))
                switch generator.next() % 3 {
                case 0: bytes[position] = UInt8(truncatingIfNeeded: generator.next())
                case 1: bytes.remove(at: position)
                default: bytes.insert(UInt8(truncatingIfNeeded: generator.next()), at: position)
                }
            }
            let body = ByteBuffer(bytes: bytes)
            let disagreement = RPCFraming.fastPathDisagreement(in: body)
            #expect(disagreement == nil, "\(bytes.prefix(16)): \(disagreement ?? "")")
            if (try? RPCFraming.envelope(in: body, from: "te1", at: "test")) != nil { taken += 1 }
        }
        #expect(taken > 100, "the mutations must reach frames that decode (\(taken))")
    }
}

/// A small deterministic generator (the same mutations every run).
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The frame splitter a connection reads with (`RPCFraming.addFrameDecoder`), fed a stream cut
/// into reads every which way.
@Suite struct FrameSplitterTests {
    static func frames(in chunks: [[UInt8]], maxFrameBytes: Int = 4 << 20) throws -> [[UInt8]] {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        try RPCFraming.addFrameDecoder(to: channel.pipeline.syncOperations, maxFrameBytes: maxFrameBytes)
        var frames: [[UInt8]] = []
        for chunk in chunks {
            try channel.writeInbound(ByteBuffer(bytes: chunk))
            while let frame = try channel.readInbound(as: ByteBuffer.self) { frames.append(Array(frame.readableBytesView)) }
        }
        return frames
    }

    static func stream(_ bodies: [[UInt8]]) -> [UInt8] {
        bodies.flatMap { body in withUnsafeBytes(of: UInt32(body.count).bigEndian, Array.init) + body }
    }

    @Test("frames come out whole and in order however the stream is cut: inside lengths, inside frames, many frames a read")
    func anyCuttingGivesTheSameFrames() throws {
        var generator = SplitMix64(seed: 42)
        let bodies = (0..<40).map { index in (0..<[0, 1, 3, 700, 70_000][index % 5]).map { UInt8(truncatingIfNeeded: $0 &+ index) } }
        let stream = Self.stream(bodies)
        #expect(try Self.frames(in: [stream]) == bodies)
        #expect(try Self.frames(in: stream.map { [$0] }) == bodies, "one byte a read")
        // And a frame longer than the 1 MiB a gathered frame starts with, cut every which way too.
        let large = bodies + [(0..<1_500_000).map { UInt8(truncatingIfNeeded: $0 / 3) }] + bodies.prefix(3)
        let largeStream = Self.stream(large)
        #expect(try Self.frames(in: [largeStream]) == large)
        for _ in 0..<20 {
            var chunks: [[UInt8]] = []
            var position = 0
            while position < largeStream.count {
                let length = min(largeStream.count - position, 1 + Int(generator.next() % 100_000))
                chunks.append(Array(largeStream[position..<position + length]))
                position += length
            }
            #expect(try Self.frames(in: chunks) == large)
        }
    }

    @Test("a length over the limit is a frameTooLarge error, even when it arrives split over reads")
    func oversizedFrameIsRefused() throws {
        let stream = Self.stream([[1, 2, 3], Array(repeating: 9, count: 5_000)])
        for chunks in [[stream], stream.map { [$0] }] {
            let error = #expect(throws: RPCError.self) { try Self.frames(in: chunks, maxFrameBytes: 4_096) }
            #expect(error?.code == .frameTooLarge && error?.message.contains("5000") == true, "\(String(describing: error))")
        }
    }
}
