import BatonTLS
import BatonWire
import Foundation
import Logging
import NIOCore
import NIOSSL
import SwiftProtobuf

/// Runs one connection: the handshake, then the read and heartbeat loops around `body`.
enum RPCSession {
    enum Side: Sendable {
        case client(RPCPeer)
        case server(RPCPeer)
    }

    static func run<Result: Sendable>(
        _ channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>, side: Side, configuration: RPCConfiguration, logger: Logger,
        body: @escaping @Sendable (RPCConnection) async throws -> Result
    ) async throws -> Result {
        try await channel.executeThenClose { inbound, outbound in
            let (handshake, handshakeDone) = AsyncThrowingStream<RPCConnection, any Error>.makeStream()
            return try await withThrowingTaskGroup(of: Void.self, returning: Result.self) { group in
                group.addTask {
                    var iterator = inbound.makeAsyncIterator()
                    let connection: RPCConnection
                    do {
                        let peer = try await shakeHands(side, &iterator, outbound, configuration, channel.channel)
                        connection = RPCConnection(
                            peer: peer, channel: channel.channel, outbound: outbound, configuration: configuration, logger: logger)
                        handshakeDone.yield(connection)
                        handshakeDone.finish()
                    } catch {
                        handshakeDone.finish(throwing: error)
                        return
                    }
                    try? await connection.readLoop(&iterator)
                }
                group.addTask {
                    try? await Task.sleep(for: configuration.handshakeTimeout)
                    // Still waiting for the handshake: give up on this connection.
                    handshakeDone.finish(throwing: RPCError(.timedOut, "no handshake within \(configuration.handshakeTimeout)"))
                }
                defer { group.cancelAll() }
                var connections = handshake.makeAsyncIterator()
                guard let connection = try await connections.next() else {
                    throw RPCError(.closed, "the connection closed during the handshake")
                }
                group.addTask { try? await connection.heartbeatLoop() }
                let result = try await body(connection)
                connection.close()
                return result
            }
        }
    }

    private static func next(
        _ iterator: inout NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator, _ peer: String, _ address: String
    ) async throws -> WireEnvelope {
        let received: ByteBuffer?
        do { received = try await iterator.next() } catch { throw transportError(error, peer, address) }
        guard let frame = received else { throw RPCError(.closed, "\(peer) closed the connection during the handshake") }
        return try RPCConnection.decode(frame, from: peer, at: address)
    }

    /// Writes a handshake message. When the connection is gone already, the reason (a TLS
    /// refusal by the peer, say) waits in the inbound stream: that is the error thrown.
    private static func write(
        _ envelope: WireEnvelope, _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        _ iterator: inout NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator, _ peer: String, _ address: String
    ) async throws {
        do {
            try await outbound.write(try envelope.frame())
        } catch {
            do { _ = try await iterator.next() } catch { throw transportError(error, peer, address) }
            throw transportError(error, peer, address)
        }
    }

    /// A failure of the connection under the handshake: TLS refusing the peer (or the peer
    /// refusing this side's certificate) is `.unauthenticated`, anything else `.closed`.
    private static func transportError(_ error: any Error, _ peer: String, _ address: String) -> RPCError {
        switch error {
        case let error as RPCError: error
        case is NIOSSLError, is BoringSSLError: RPCError(.unauthenticated, "the TLS handshake with \(peer) at \(address) failed: \(error)")
        default: RPCError(.closed, "the connection to \(peer) at \(address) failed during the handshake: \(error)")
        }
    }

    /// With TLS: the peer's verified certificate must name the id it claims, and the role: a
    /// certificate of the role `client` may claim nothing else; a member's may also act as a
    /// client (a master's REST server asks the leader).
    private static func checkCertificate(
        _ channel: any Channel, _ configuration: RPCConfiguration, claims id: String, role: RPCPeer.Role?, address: String
    ) async throws {
        guard configuration.tls != nil else { return }
        let who = role.map { "\($0.rawValue) \(id)" } ?? "the server \(id)"
        guard let certificate = try await channel.nioSSL_peerCertificate().get() else {
            throw RPCError(.unauthenticated, "\(who) at \(address) presented no TLS certificate")
        }
        let named: TLSPeerIdentity
        do { named = try TLSPeerIdentity(certificate) } catch {
            throw RPCError(.unauthenticated, "the TLS certificate of \(who) at \(address) names nobody: \(error)")
        }
        let roleFits: Bool =
            switch role {
            case nil: named.role != RPCPeer.Role.client.rawValue
            case .client?: true
            case let claimed?: named.role == claimed.rawValue
            }
        guard named.id == id, roleFits else {
            throw RPCError(.unauthenticated, "\(who) at \(address) presents the TLS certificate of \(named)")
        }
    }

    private static func shakeHands(
        _ side: Side, _ iterator: inout NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
        _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, _ configuration: RPCConfiguration, _ channel: any Channel
    ) async throws -> RPCPeer {
        let address = channel.remoteAddress.map { "\($0)" } ?? "unknown"
        switch side {
        case .client(let me):
            let clientNonce = HandshakeProof.nonce()
            var hello = WireEnvelope()
            hello.hello = .with {
                $0.protocolVersion = RPCConfiguration.protocolVersion
                $0.peerID = me.id
                $0.role = me.role.wire
                $0.clientNonce = Data(clientNonce)
            }
            try await write(hello, outbound, &iterator, "the server", address)
            let challengeEnvelope = try await next(&iterator, "the server", address)
            if case .refused(let refused) = challengeEnvelope.body {
                throw RPCError(.refused, "the server at \(address) refused the connection: \(refused.reason)")
            }
            guard case .challenge(let challenge) = challengeEnvelope.body, challenge.serverNonce.count == 32 else {
                throw RPCError(.malformed, "the server at \(address) did not send a challenge")
            }
            try await checkCertificate(channel, configuration, claims: challenge.serverID, role: nil, address: address)
            var proof = WireEnvelope()
            proof.proof = .with {
                $0.clientProof = Data(
                    HandshakeProof.make(
                        secret: configuration.secret, side: "client", verifierNonce: Array(challenge.serverNonce), proverNonce: clientNonce,
                        proverID: me.id))
            }
            try await write(proof, outbound, &iterator, "the server", address)
            let welcomeEnvelope = try await next(&iterator, "the server", address)
            if case .refused(let refused) = welcomeEnvelope.body {
                throw RPCError(.refused, "the server at \(address) refused the connection: \(refused.reason)")
            }
            guard case .welcome(let welcome) = welcomeEnvelope.body,
                HandshakeProof.verify(
                    Array(welcome.serverProof), secret: configuration.secret, side: "server", verifierNonce: clientNonce,
                    proverNonce: Array(challenge.serverNonce), proverID: challenge.serverID)
            else {
                throw RPCError(.unauthenticated, "the server at \(address) does not know the cluster secret")
            }
            return RPCPeer(id: challenge.serverID, role: .master)

        case .server(let me):
            let helloEnvelope = try await next(&iterator, "a peer", address)
            guard case .hello(let hello) = helloEnvelope.body, hello.clientNonce.count == 32, let role = RPCPeer.Role(wire: hello.role) else {
                throw RPCError(.malformed, "the peer at \(address) did not start with a valid hello")
            }
            do {
                try await checkCertificate(channel, configuration, claims: hello.peerID, role: role, address: address)
            } catch let error as RPCError {
                var refused = WireEnvelope()
                refused.refused = .with { $0.reason = "authentication failed: \(error.message)" }
                try? await outbound.write(try refused.frame())
                throw error
            }
            let serverNonce = HandshakeProof.nonce()
            var challenge = WireEnvelope()
            challenge.challenge = .with {
                $0.protocolVersion = RPCConfiguration.protocolVersion
                $0.serverID = me.id
                $0.serverNonce = Data(serverNonce)
            }
            try await write(challenge, outbound, &iterator, "a peer", address)
            let proofEnvelope = try await next(&iterator, "\(role.rawValue) \(hello.peerID)", address)
            guard case .proof(let proof) = proofEnvelope.body,
                HandshakeProof.verify(
                    Array(proof.clientProof), secret: configuration.secret, side: "client", verifierNonce: serverNonce,
                    proverNonce: Array(hello.clientNonce), proverID: hello.peerID)
            else {
                var refused = WireEnvelope()
                refused.refused = .with { $0.reason = "authentication failed: the cluster secret does not match" }
                try? await outbound.write(try refused.frame())
                throw RPCError(.unauthenticated, "\(role.rawValue) \(hello.peerID) at \(address) does not know the cluster secret")
            }
            var welcome = WireEnvelope()
            welcome.welcome = .with {
                $0.serverProof = Data(
                    HandshakeProof.make(
                        secret: configuration.secret, side: "server", verifierNonce: Array(hello.clientNonce), proverNonce: serverNonce,
                        proverID: me.id))
            }
            try await write(welcome, outbound, &iterator, "\(role.rawValue) \(hello.peerID)", address)
            return RPCPeer(id: hello.peerID, role: role)
        }
    }
}

extension RPCPeer.Role {
    var wire: WirePeerRole {
        switch self {
        case .client: .client
        case .taskExecutor: .taskExecutor
        case .master: .master
        }
    }

    init?(wire: WirePeerRole) {
        switch wire {
        case .client: self = .client
        case .taskExecutor: self = .taskExecutor
        case .master: self = .master
        default: return nil
        }
    }
}
