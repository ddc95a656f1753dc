public import BatonWire
import Logging
import NIOCore
import Synchronization
import SwiftProtobuf

/// One authenticated connection: send envelopes, make requests that wait for their replies, and
/// read everything else the peer sends from `messages`.
///
/// Guarantees: `messages` yields frames in the order they arrived; every frame is a well-formed
/// Envelope of this protocol version (a malformed or oversized frame closes the connection, with a
/// log line); heartbeats are answered and consumed here; a connection silent for longer than the
/// heartbeat timeout is closed. When the connection closes, `messages` ends and pending requests
/// fail with `.closed`.
public final class RPCConnection: Sendable {
    public let peer: RPCPeer
    public let remoteAddress: String
    public let messages: AsyncStream<WireEnvelope>

    private struct State {
        var pending: [UInt64: CheckedContinuation<WireEnvelope, any Error>] = [:]
        var nextCorrelation: UInt64 = 1
        var lastReceived: ContinuousClock.Instant
        var closedReason: RPCError?
    }

    private let channel: any Channel
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private let continuation: AsyncStream<WireEnvelope>.Continuation
    private let state: Mutex<State>
    private let configuration: RPCConfiguration
    private let logger: Logger

    init(
        peer: RPCPeer, channel: any Channel, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        configuration: RPCConfiguration, logger: Logger
    ) {
        self.peer = peer
        self.channel = channel
        self.remoteAddress = channel.remoteAddress.map { "\($0)" } ?? "unknown"
        self.outbound = outbound
        self.configuration = configuration
        self.logger = logger
        (messages, continuation) = AsyncStream<WireEnvelope>.makeStream()
        state = Mutex(State(lastReceived: .now))
    }

    /// Sends one envelope (its protocol version is set here).
    public func send(_ envelope: WireEnvelope) async throws {
        if let reason = state.withLock({ $0.closedReason }) { throw reason }
        var envelope = envelope
        envelope.protocolVersion = RPCConfiguration.protocolVersion
        do {
            try await outbound.write(ByteBuffer(bytes: try envelope.serializedBytes() as [UInt8]))
        } catch let error as RPCError {
            throw error
        } catch {
            throw RPCError(.closed, "cannot send to \(peer) at \(remoteAddress): \(error)")
        }
    }

    /// Sends `envelope` as a request and waits for the reply with the same correlation number.
    public func request(_ envelope: WireEnvelope, timeout: Duration = .seconds(30)) async throws -> WireEnvelope {
        var envelope = envelope
        let correlation = state.withLock { state -> UInt64 in
            defer { state.nextCorrelation += 1 }
            return state.nextCorrelation
        }
        envelope.correlation = correlation
        return try await withThrowingTaskGroup(of: WireEnvelope.self) { group in
            group.addTask {
                try await withCheckedThrowingContinuation { waiter in
                    let closed = self.state.withLock { state -> RPCError? in
                        if let reason = state.closedReason { return reason }
                        state.pending[correlation] = waiter
                        return nil
                    }
                    if let closed { waiter.resume(throwing: closed) }
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw RPCError(.timedOut, "no reply from \(self.peer) within \(timeout)")
            }
            do {
                try await send(envelope)
                let reply = try await group.next()!
                group.cancelAll()
                return reply
            } catch {
                if let waiter = state.withLock({ $0.pending.removeValue(forKey: correlation) }) {
                    waiter.resume(throwing: error)
                }
                group.cancelAll()
                throw error
            }
        }
    }

    /// Sends `reply` as the answer to `request`.
    public func reply(to request: WireEnvelope, with reply: WireEnvelope) async throws {
        var reply = reply
        reply.correlation = request.correlation
        try await send(reply)
    }

    /// Closes the connection.
    public func close() {
        channel.close(promise: nil)
    }

    // MARK: machinery

    /// Reads frames until the connection ends; routes replies, consumes heartbeats.
    func readLoop(_ iterator: inout NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator) async throws {
        do {
            while let frame = try await iterator.next() {
                let envelope = try Self.decode(frame, from: peer, at: remoteAddress)
                state.withLock { $0.lastReceived = .now }
                if case .heartbeat = envelope.body { continue }
                if envelope.correlation != 0, let waiter = state.withLock({ $0.pending.removeValue(forKey: envelope.correlation) }) {
                    waiter.resume(returning: envelope)
                    continue
                }
                continuation.yield(envelope)
            }
            shutDown(RPCError(.closed, "\(peer) at \(remoteAddress) closed the connection"))
        } catch {
            let reason = error as? RPCError ?? RPCError(.closed, "connection to \(peer) at \(remoteAddress) failed: \(error)")
            if reason.code != .closed {
                logger.warning(
                    "closing the connection", metadata: ["baton.peer": "\(peer)", "baton.remote": "\(remoteAddress)", "baton.error": "\(reason)"])
            }
            shutDown(reason)
            throw reason
        }
    }

    /// Sends heartbeats and closes the connection when the peer falls silent.
    func heartbeatLoop() async throws {
        while !Task.isCancelled {
            try await Task.sleep(for: configuration.heartbeatInterval)
            let silent = state.withLock { ContinuousClock.now - $0.lastReceived }
            if silent > configuration.heartbeatTimeout {
                logger.warning(
                    "peer silent for longer than the heartbeat timeout: closing",
                    metadata: ["baton.peer": "\(peer)", "baton.remote": "\(remoteAddress)", "baton.silent": "\(silent)"])
                shutDown(RPCError(.timedOut, "\(peer) sent nothing for \(silent)"))
                close()
                return
            }
            var heartbeat = WireEnvelope()
            heartbeat.heartbeat = WireHeartbeat()
            try? await send(heartbeat)
        }
    }

    func shutDown(_ reason: RPCError) {
        let waiters = state.withLock { state -> [CheckedContinuation<WireEnvelope, any Error>] in
            if state.closedReason == nil { state.closedReason = reason }
            defer { state.pending.removeAll() }
            return Array(state.pending.values)
        }
        for waiter in waiters { waiter.resume(throwing: reason) }
        continuation.finish()
    }

    static func decode(_ frame: ByteBuffer, from peer: Any, at address: String) throws -> WireEnvelope {
        let envelope: WireEnvelope
        do {
            envelope = try WireEnvelope(serializedBytes: Array(frame.readableBytesView))
        } catch {
            throw RPCError(.malformed, "a frame from \(peer) at \(address) is not a valid message: \(error)")
        }
        guard envelope.protocolVersion == RPCConfiguration.protocolVersion else {
            throw RPCError(
                .malformed,
                "\(peer) at \(address) speaks protocol version \(envelope.protocolVersion), this side \(RPCConfiguration.protocolVersion)")
        }
        return envelope
    }
}
