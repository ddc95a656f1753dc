import BatonRPC
import BatonTLS
import BatonWire
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Testing

/// Mutual TLS under the RPC handshake, on real sockets with certificates `ClusterCertificates`
/// issues (what `baton certs` writes).
@Suite("RPC over mutual TLS", .serialized)
struct RPCTLSTests {
    let harness = RPCHarness()

    /// A TLS folder in a fresh temporary folder, removed after `body`.
    static func withCertificates<R>(
        _ members: [ClusterCertificates.Member], now: Date = Date(), validity: TimeInterval = 86_400, _ body: (String) async throws -> R
    ) async throws -> R {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("baton-tls-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try ClusterCertificates.make(cluster: "test", members: members, now: now, validity: validity).write(to: directory)
        return try await body(directory)
    }

    static let members = [
        ClusterCertificates.Member(id: "m1", role: "master", hosts: ["127.0.0.1"]),
        ClusterCertificates.Member(id: "te1", role: "task-executor", hosts: ["127.0.0.1"]),
        ClusterCertificates.Member(id: "client", role: "client", hosts: []),
    ]

    func configuration(_ directory: String, as identity: String) throws -> RPCConfiguration {
        var configuration = harness.configuration()
        configuration.tls = try TLSCredentials.load(directory: directory, identity: identity)
        return configuration
    }

    /// Connects as `identity` (claiming `claim`, by default the identity) and sends one request.
    func call(port: Int, _ configuration: RPCConfiguration, claim: String, role: RPCPeer.Role = .client) async throws -> String {
        try await RPCClient.connect(
            host: "127.0.0.1", port: port, identity: RPCPeer(id: claim, role: role), configuration: configuration, logger: harness.recorder.logger
        ) { connection in
            let reply = try await connection.request(harness.submit("over-tls"), timeout: .seconds(10))
            guard case .jobAccepted(let accepted) = reply.body else { return "?" }
            return accepted.job
        }
    }

    @Test("members with certificates from the cluster CA talk over TLS; each side sees the other's id")
    func mutualTLSCarriesRequests() async throws {
        try await Self.withCertificates(Self.members) { directory in
            try await harness.withEchoServer(try configuration(directory, as: "m1")) { port in
                let client = try configuration(directory, as: "client")
                #expect(try await call(port: port, client, claim: "client") == "over-tls")
                let member = try configuration(directory, as: "te1")
                #expect(try await call(port: port, member, claim: "te1", role: .taskExecutor) == "over-tls")
                // A member's certificate may act as a client (a master's REST server asks the leader).
                #expect(try await call(port: port, member, claim: "te1", role: .client) == "over-tls")
            }
        }
    }

    @Test("a plain TCP client, with the right secret, is refused by a TLS server, and the refusal is logged")
    func plainClientRefused() async throws {
        try await Self.withCertificates(Self.members) { directory in
            try await harness.withEchoServer(try configuration(directory, as: "m1")) { port in
                await #expect(throws: RPCError.self) { try await call(port: port, harness.configuration(), claim: "client") }
                #expect(await eventuallyAsync { harness.recorder.contains("TLS handshake") && harness.recorder.contains("refused a connection") })
            }
        }
    }

    @Test("a client whose certificate comes from another CA is refused, and a client refuses such a server")
    func foreignOrMissingCertificateRefused() async throws {
        try await Self.withCertificates(Self.members) { directory in
            try await Self.withCertificates(Self.members) { foreign in
                try await harness.withEchoServer(try configuration(directory, as: "m1")) { port in
                    let error = await #expect(throws: RPCError.self) { try await call(port: port, try configuration(foreign, as: "client"), claim: "client") }
                    #expect(error?.code == .unauthenticated, "\(String(describing: error))")
                    #expect(await eventuallyAsync { harness.recorder.contains("TLS handshake") && harness.recorder.contains("refused a connection") })
                }
                // The other way round: a client refuses a server from another CA.
                try await harness.withEchoServer(try configuration(foreign, as: "m1")) { port in
                    let error = await #expect(throws: RPCError.self) { try await call(port: port, try configuration(directory, as: "client"), claim: "client") }
                    #expect(error?.code == .unauthenticated, "\(String(describing: error))")
                }
            }
        }
    }

    @Test("an expired certificate from the cluster CA is refused; a current one from the same set is not")
    func expiredCertificateRefused() async throws {
        let expired = ClusterCertificates.Member(id: "te2", role: "task-executor", hosts: [], notValidAfter: Date().addingTimeInterval(-86_400))
        try await Self.withCertificates(Self.members + [expired]) { directory in
            try await harness.withEchoServer(try configuration(directory, as: "m1")) { port in
                let current = try configuration(directory, as: "te1")
                #expect(try await call(port: port, current, claim: "te1", role: .taskExecutor) == "over-tls")
                let late = try configuration(directory, as: "te2")
                let error = await #expect(throws: RPCError.self) { try await call(port: port, late, claim: "te2", role: .taskExecutor) }
                #expect(error?.code == .unauthenticated, "\(String(describing: error))")
            }
        }
    }

    @Test("a TLS client that presents no certificate is refused")
    func clientWithoutCertificateRefused() async throws {
        try await Self.withCertificates(Self.members) { directory in
            try await harness.withEchoServer(try configuration(directory, as: "m1")) { port in
                // TLS that trusts the cluster CA but has no certificate of its own.
                var tls = TLSConfiguration.makeClientConfiguration()
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(directory + "/ca.pem"))
                tls.certificateVerification = .noHostnameVerification
                let context = try NIOSSLContext(configuration: tls)
                let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connect(host: "127.0.0.1", port: port) { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: nil))
                            return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                        }
                    }
                await #expect(throws: (any Error).self) {
                    try await channel.executeThenClose { inbound, outbound in
                        try await outbound.write(ByteBuffer(bytes: [0, 0, 0, 1, 0]))
                        for try await _ in inbound {}
                    }
                }
                #expect(await eventuallyAsync { harness.recorder.contains("TLS handshake") && harness.recorder.contains("refused a connection") })
            }
        }
    }

    @Test("a peer that claims an id other than its certificate's is refused, naming both")
    func claimOtherThanCertificateRefused() async throws {
        try await Self.withCertificates(Self.members) { directory in
            try await harness.withEchoServer(try configuration(directory, as: "m1")) { port in
                // te1's certificate, claiming to be the master m2.
                let error = await #expect(throws: RPCError.self) {
                    try await call(port: port, try configuration(directory, as: "te1"), claim: "m2", role: .master)
                }
                #expect(error?.message.contains("task-executor te1") == true, "\(String(describing: error))")
                // The clients' certificate cannot act as a task executor.
                await #expect(throws: RPCError.self) {
                    try await call(port: port, try configuration(directory, as: "client"), claim: "client", role: .taskExecutor)
                }
            }
        }
    }

    @Test("a TLS folder without the member's files, or with a key others can read, is refused naming the file")
    func unusableTLSFolderNamed() async throws {
        try await Self.withCertificates(Self.members) { directory in
            let missing = #expect(throws: TLSCredentials.Failure.self) { try TLSCredentials.load(directory: directory, identity: "m9") }
            #expect(missing?.message.contains("\(directory)/m9.pem") == true && missing?.message.contains("baton certs") == true, "\(String(describing: missing))")
            chmod(directory + "/te1.key", 0o644)
            let readable = #expect(throws: TLSCredentials.Failure.self) { try TLSCredentials.load(directory: directory, identity: "te1") }
            #expect(readable?.message.contains("chmod 600 \(directory)/te1.key") == true, "\(String(describing: readable))")
            // The set is written once: a second write into the folder is refused.
            #expect(throws: (any Error).self) { try ClusterCertificates.make(cluster: "test", members: Self.members).write(to: directory) }
        }
    }
}

