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

    /// What a request sent with `send(request:replyTimeout:onReply:)` is answered with: its reply,
    /// or why none came.
    public typealias ReplyHandler = @Sendable (Result<WireEnvelope, RPCError>) -> Void

    private struct State {
        var pending: [UInt64: CheckedContinuation<WireEnvelope, any Error>] = [:]
        /// Requests whose replies go to a handler, with the instant they time out.
        var handlers: [UInt64: (deadline: ContinuousClock.Instant, handler: ReplyHandler)] = [:]
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
        try await send(CollectionOfOne(envelope))
    }

    /// Sends envelopes in order, in one write to the connection (one system call for a run of
    /// small messages, rather than one each).
    public func send(_ envelopes: some Collection<WireEnvelope>) async throws {
        try await write { try envelopes.map { try $0.frame() } }
    }

    /// Sends record batches on `channel`, each as the Envelope with a RecordBatch that `send`
    /// would write, in one write, copying each batch once (`RecordBatchFrame`).
    public func send(recordBatches batches: some Collection<some Collection<UInt8>>, channel: UInt64) async throws {
        try await write { batches.map { RecordBatchFrame.encode(channel: channel, records: $0) } }
    }

    private func write(_ makeFrames: () throws -> [ByteBuffer]) async throws {
        if let reason = state.withLock({ $0.closedReason }) { throw reason }
        do {
            let frames = try makeFrames()
            if frames.count == 1 {
                try await outbound.write(frames[0])
            } else {
                try await outbound.write(contentsOf: frames)
            }
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

    /// Sends `envelope` as a request, in order with everything else sent on this connection, and
    /// returns once it is handed to the connection, without waiting for the reply: `onReply` gets
    /// the reply, or `.timedOut` once `replyTimeout` passed (checked each heartbeat interval), or
    /// `.closed` when it cannot be sent or the connection ends first; exactly one of them. Requests
    /// sent this way are pipelined.
    public func send(request envelope: WireEnvelope, replyTimeout: Duration, onReply: @escaping ReplyHandler) async {
        await send(requests: [envelope], replyTimeout: replyTimeout, onReply: onReply)
    }

    /// Sends `envelopes` as requests the way `send(request:replyTimeout:onReply:)` sends one, in
    /// one write; `onReply` gets each one's reply (or failure).
    public func send(requests envelopes: [WireEnvelope], replyTimeout: Duration, onReply: @escaping ReplyHandler) async {
        let deadline = ContinuousClock.now + replyTimeout
        let correlations = state.withLock { state -> Range<UInt64> in
            let first = state.nextCorrelation
            state.nextCorrelation += UInt64(envelopes.count)
            for correlation in first..<state.nextCorrelation { state.handlers[correlation] = (deadline, onReply) }
            return first..<state.nextCorrelation
        }
        var requests = envelopes
        for (index, correlation) in zip(requests.indices, correlations) { requests[index].correlation = correlation }
        do {
            try await send(requests)
        } catch {
            // Unless the connection's end already answered them.
            let handlers = state.withLock { state in correlations.compactMap { state.handlers.removeValue(forKey: $0)?.handler } }
            for handler in handlers { handler(.failure(error as? RPCError ?? RPCError(.closed, "cannot send to \(peer): \(error)"))) }
        }
    }

    /// Sends `reply` as the answer to `request`.
    public func reply(to request: WireEnvelope, with answer: WireEnvelope) async throws {
        try await reply(to: [(request, answer)])
    }

    /// Sends each answer to its request, in order, in one write.
    public func reply(to answers: [(request: WireEnvelope, answer: WireEnvelope)]) async throws {
        try await send(answers.map { request, answer in
            var reply = answer
            reply.correlation = request.correlation
            return reply
        })
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
                if envelope.correlation != 0 {
                    let (waiter, handler) = state.withLock {
                        ($0.pending.removeValue(forKey: envelope.correlation), $0.handlers.removeValue(forKey: envelope.correlation)?.handler)
                    }
                    if let waiter {
                        waiter.resume(returning: envelope)
                        continue
                    }
                    if let handler {
                        handler(.success(envelope))
                        continue
                    }
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
            let now = ContinuousClock.now
            let expired = state.withLock { state -> [ReplyHandler] in
                let late = state.handlers.filter { $0.value.deadline <= now }
                for correlation in late.keys { state.handlers[correlation] = nil }
                return late.values.map(\.handler)
            }
            for handler in expired { handler(.failure(RPCError(.timedOut, "no reply from \(peer) in time"))) }
            let silent = state.withLock { now - $0.lastReceived }
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
        let (waiters, handlers) = state.withLock { state -> ([CheckedContinuation<WireEnvelope, any Error>], [ReplyHandler]) in
            if state.closedReason == nil { state.closedReason = reason }
            defer {
                state.pending.removeAll()
                state.handlers.removeAll()
            }
            return (Array(state.pending.values), state.handlers.values.map(\.handler))
        }
        for waiter in waiters { waiter.resume(throwing: reason) }
        for handler in handlers { handler(.failure(reason)) }
        continuation.finish()
    }

    static func decode(_ frame: ByteBuffer, from peer: Any, at address: String) throws -> WireEnvelope {
        let envelope: WireEnvelope
        if let batch = RecordBatchFrame.decode(frame) {
            envelope = batch
        } else {
            do {
                envelope = try WireEnvelope(serializedBytes: FrameBytes(received: frame))
            } catch {
                throw RPCError(.malformed, "a frame from \(peer) at \(address) is not a valid message: \(error)")
            }
        }
        guard envelope.protocolVersion == RPCConfiguration.protocolVersion else {
            throw RPCError(
                .malformed,
                "\(peer) at \(address) speaks protocol version \(envelope.protocolVersion), this side \(RPCConfiguration.protocolVersion)")
        }
        return envelope
    }
}
