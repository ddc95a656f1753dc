public import BatonTLS

/// How RPC connections authenticate and stay alive.
public struct RPCConfiguration: Sendable {
    /// The cluster's shared secret: both sides of a connection prove they know it.
    public var secret: [UInt8]
    /// How often each side sends a heartbeat.
    public var heartbeatInterval: Duration
    /// How long without any frame from the peer before the connection is closed as lost.
    public var heartbeatTimeout: Duration
    /// How long the handshake may take.
    public var handshakeTimeout: Duration
    /// The largest frame accepted; a larger one closes the connection.
    public var maxFrameBytes: Int
    /// Mutual TLS under the handshake (`rpc.tls`): when set, every connection is TLS 1.3 with a
    /// certificate on both ends from the cluster CA, and the id a peer claims in the handshake
    /// must be its certificate's; nil: plain TCP (loopback only, which the config enforces).
    public var tls: TLSCredentials?

    public init(
        secret: [UInt8], heartbeatInterval: Duration = .seconds(1), heartbeatTimeout: Duration = .seconds(5),
        handshakeTimeout: Duration = .seconds(5), maxFrameBytes: Int = 16 << 20, tls: TLSCredentials? = nil
    ) {
        self.tls = tls
        self.secret = secret
        self.heartbeatInterval = heartbeatInterval
        self.heartbeatTimeout = heartbeatTimeout
        self.handshakeTimeout = handshakeTimeout
        self.maxFrameBytes = maxFrameBytes
    }

    /// The protocol version this build speaks (Envelope.protocol_version).
    public static let protocolVersion: UInt32 = 1
}

/// Who is at one end of a connection.
public struct RPCPeer: Hashable, Sendable, CustomStringConvertible {
    public enum Role: String, Hashable, Sendable { case client, taskExecutor = "task-executor", master }
    public var id: String
    public var role: Role

    public init(id: String, role: Role) {
        self.id = id
        self.role = role
    }

    public var description: String { "\(role.rawValue) \(id)" }
}

/// An RPC failure: a code, what happened, and the peer when known.
public struct RPCError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let value: String
        private init(_ value: String) { self.value = value }
        /// The peer refused the connection (bad secret, other protocol version).
        public static let refused = Code("refused")
        /// The peer could not prove it knows the secret, or its TLS certificate was refused (from
        /// another CA, expired, missing, or naming someone else).
        public static let unauthenticated = Code("unauthenticated")
        /// A frame could not be decoded, or broke the protocol.
        public static let malformed = Code("malformed")
        public static let frameTooLarge = Code("frameTooLarge")
        /// No frame within the heartbeat or handshake timeout, or no reply within a request's.
        public static let timedOut = Code("timedOut")
        /// The connection is closed.
        public static let closed = Code("closed")
        /// The peer answered with a failure.
        public static let remoteFailure = Code("remoteFailure")
        public var description: String { value }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
