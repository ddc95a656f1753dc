public import Logging
public import NIOCore
import NIOPosix
import NIOSSL
import BatonTLS

/// A listening RPC server.
public struct RPCServer: Sendable {
    private let listener: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>
    public let identity: RPCPeer
    public let configuration: RPCConfiguration
    private let logger: Logger

    /// The address it listens on (with the real port when bound to port 0).
    public var localPort: Int { listener.channel.localAddress?.port ?? 0 }

    /// Binds `host:port` (port 0: any free port).
    public static func bind(
        host: String, port: Int, identity: RPCPeer, configuration: RPCConfiguration, logger: Logger,
        group: (any EventLoopGroup)? = nil
    ) async throws -> RPCServer {
        let maxFrameBytes = configuration.maxFrameBytes
        let tls = configuration.tls
        let listener = try await ServerBootstrap(group: group ?? MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.recvAllocator, value: RPCConfiguration.receiveBuffers)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.server)) }
                    return try channel.makeFramedAsyncChannel(maxFrameBytes: maxFrameBytes)
                }
            }
        return RPCServer(listener: listener, identity: identity, configuration: configuration, logger: logger)
    }

    /// Accepts connections until cancelled; runs `handler` for each authenticated one (concurrently).
    /// A peer that fails the handshake is logged and closed; the server goes on.
    public func run(handler: @escaping @Sendable (RPCConnection) async -> Void) async throws {
        try await listener.executeThenClose { inbound in
            await withDiscardingTaskGroup { group in
                do {
                    for try await child in inbound {
                        group.addTask {
                            do {
                                try await RPCSession.run(child, side: .server(identity), configuration: configuration, logger: logger) {
                                    connection in
                                    await handler(connection)
                                }
                            } catch let error as RPCError {
                                logger.warning(
                                    "refused a connection", metadata: ["baton.remote": "\(child.channel.remoteAddress.map { "\($0)" } ?? "?")", "baton.error": "\(error.message)"])
                            } catch {
                                logger.warning(
                                    "connection failed", metadata: ["baton.remote": "\(child.channel.remoteAddress.map { "\($0)" } ?? "?")", "baton.error": "\(error)"])
                            }
                        }
                    }
                } catch is CancellationError {
                    // Stopped.
                } catch {
                    logger.warning("the listener failed", metadata: ["baton.error": "\(error)"])
                }
            }
        }
    }

    /// Stops listening.
    public func close() { listener.channel.close(promise: nil) }
}

/// Opens client connections.
public enum RPCClient {
    /// Connects to `host:port`, authenticates, and runs `body` with the connection, which is
    /// closed when `body` returns.
    public static func connect<Result: Sendable>(
        host: String, port: Int, identity: RPCPeer, configuration: RPCConfiguration, logger: Logger,
        group: (any EventLoopGroup)? = nil,
        _ body: @escaping @Sendable (RPCConnection) async throws -> Result
    ) async throws -> Result {
        let maxFrameBytes = configuration.maxFrameBytes
        let tls = configuration.tls
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: group ?? MultiThreadedEventLoopGroup.singleton)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelOption(.recvAllocator, value: RPCConfiguration.receiveBuffers)
                .connectTimeout(.seconds(5))
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls.client, serverHostname: nil))
                        }
                        return try channel.makeFramedAsyncChannel(maxFrameBytes: maxFrameBytes)
                    }
                }
        } catch {
            throw RPCError(.closed, "cannot connect to \(host):\(port): \(error)")
        }
        return try await RPCSession.run(channel, side: .client(identity), configuration: configuration, logger: logger, body: body)
    }
}
