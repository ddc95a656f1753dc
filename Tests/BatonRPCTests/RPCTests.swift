import BatonRPC
import BatonWire
import Foundation
import Logging
import NIOCore
import NIOPosix
import SwiftProtobuf
import Synchronization
import Testing

/// Collects log messages so tests can check what was logged.
final class LogRecorder: Sendable {
    let lines = Mutex<[String]>([])

    var logger: Logger {
        Logger(label: "test") { _ in Handler(recorder: self) }
    }

    func contains(_ text: String) -> Bool { lines.withLock { $0.contains { $0.contains(text) } } }

    struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let text = "\(event.level) \(event.message) \(event.metadata ?? [:])"
            recorder.lines.withLock { $0.append(text) }
        }
    }
}

struct RPCHarness {
    let secret = Array("correct horse battery staple".utf8)
    let recorder = LogRecorder()

    func configuration(secret: [UInt8]? = nil, interval: Duration = .milliseconds(100), timeout: Duration = .seconds(2)) -> RPCConfiguration {
        RPCConfiguration(secret: secret ?? self.secret, heartbeatInterval: interval, heartbeatTimeout: timeout, handshakeTimeout: .seconds(10), maxFrameBytes: 64 * 1024)
    }

    /// A server that answers every request with a JobAccepted naming the request's job.
    func withEchoServer(_ configuration: RPCConfiguration? = nil, _ body: (Int) async throws -> Void) async throws {
        let server = try await RPCServer.bind(
            host: "127.0.0.1", port: 0, identity: RPCPeer(id: "m1", role: .master), configuration: configuration ?? self.configuration(),
            logger: recorder.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await server.run { connection in
                    for await message in connection.messages {
                        if case .submitJob(let submit) = message.body {
                            var reply = WireEnvelope()
                            reply.jobAccepted = .with { $0.job = String(decoding: submit.jobGraphJson, as: UTF8.self) }
                            try? await connection.reply(to: message, with: reply)
                        }
                    }
                }
            }
            try await body(server.localPort)
            server.close()
            group.cancelAll()
        }
    }

    func submit(_ job: String) -> WireEnvelope {
        var envelope = WireEnvelope()
        envelope.submitJob = .with { $0.jobGraphJson = Data(job.utf8) }
        return envelope
    }

    /// Writes raw bytes to the server and waits until the server closes the socket.
    func sendRaw(_ bytes: [UInt8], port: Int) async throws -> Bool {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: bytes))
            // The server answers nothing useful and closes: the inbound side ends.
            var received = 0
            for try await buffer in inbound { received += buffer.readableBytes }
            return true
        }
    }
}

@Suite("RPC over TCP", .serialized)
struct RPCTests {
    @Test("an authenticated connection carries requests and replies, matched by correlation")
    func requestReply() async throws {
        let harness = RPCHarness()
        try await harness.withEchoServer { port in
            let replies = try await RPCClient.connect(
                host: "127.0.0.1", port: port, identity: RPCPeer(id: "cli", role: .client), configuration: harness.configuration(),
                logger: harness.recorder.logger
            ) { connection in
                #expect(connection.peer == RPCPeer(id: "m1", role: .master))
                return try await withThrowingTaskGroup(of: String.self) { group in
                    for index in 0..<20 {
                        group.addTask {
                            let reply = try await connection.request(harness.submit("job-\(index)"))
                            guard case .jobAccepted(let accepted) = reply.body else { return "?" }
                            return accepted.job
                        }
                    }
                    return try await group.reduce(into: Set<String>()) { $0.insert($1) }
                }
            }
            #expect(replies == Set((0..<20).map { "job-\($0)" }))
        }
    }

    @Test("a run of requests goes out in one write, and a run of answers in one write reaches each request's handler, in order")
    func runsOfRequestsAndAnswers() async throws {
        let harness = RPCHarness()
        let count = 50
        // Not a heartbeat test: a loaded machine (the full suite) may stall a process past the
        // harness's 2 s timeout, which once closed the connection under the run.
        let configuration = harness.configuration(timeout: .seconds(30))
        let server = try await RPCServer.bind(
            host: "127.0.0.1", port: 0, identity: RPCPeer(id: "m1", role: .master), configuration: configuration,
            logger: harness.recorder.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Answers only once the whole run arrived, all of them in one write.
            group.addTask {
                try await server.run { connection in
                    var waiting: [(request: WireEnvelope, answer: WireEnvelope)] = []
                    for await message in connection.messages {
                        guard case .submitJob(let submit) = message.body else { continue }
                        var answer = WireEnvelope()
                        answer.jobAccepted = .with { $0.job = String(decoding: submit.jobGraphJson, as: UTF8.self) }
                        waiting.append((message, answer))
                        if waiting.count == count {
                            try? await connection.reply(to: waiting)
                            waiting = []
                        }
                    }
                }
            }
            let answered = try await RPCClient.connect(
                host: "127.0.0.1", port: server.localPort, identity: RPCPeer(id: "cli", role: .client), configuration: configuration,
                logger: harness.recorder.logger
            ) { connection in
                let (replies, arrived) = AsyncStream<String>.makeStream()
                await connection.send(requests: (0..<count).map { harness.submit("job-\($0)") }, replyTimeout: .seconds(30)) { result in
                    switch result {
                    case .success(let reply): if case .jobAccepted(let accepted) = reply.body { arrived.yield(accepted.job) } else { arrived.yield("? \(reply.body.map { "\($0)" } ?? "empty")") }
                    case .failure(let error): arrived.yield("? \(error)")
                    }
                }
                var jobs: [String] = []
                for await job in replies {
                    jobs.append(job)
                    if jobs.count == count { break }
                }
                return jobs
            }
            #expect(answered == (0..<count).map { "job-\($0)" })
            server.close()
            group.cancelAll()
        }
    }

    @Test("a peer without the secret is refused and logged; the server goes on")
    func wrongSecret() async throws {
        let harness = RPCHarness()
        try await harness.withEchoServer { port in
            let error = await #expect(throws: RPCError.self) {
                try await RPCClient.connect(
                    host: "127.0.0.1", port: port, identity: RPCPeer(id: "intruder", role: .taskExecutor),
                    configuration: harness.configuration(secret: Array("guess".utf8)), logger: harness.recorder.logger
                ) { _ in 0 }
            }
            #expect(error?.code == .refused)
            #expect(error?.message.contains("secret does not match") == true)
            #expect(await eventuallyAsync { harness.recorder.contains("does not know the cluster secret") })
            let reply = try await RPCClient.connect(
                host: "127.0.0.1", port: port, identity: RPCPeer(id: "friend", role: .client), configuration: harness.configuration(),
                logger: harness.recorder.logger
            ) { connection in try await connection.request(harness.submit("after")) }
            #expect(reply.jobAccepted.job == "after")
        }
    }

    @Test("garbage, a truncated frame, an oversized frame or another protocol version close only that connection")
    func badFrames() async throws {
        let harness = RPCHarness()
        try await harness.withEchoServer { port in
            let garbage: [UInt8] = [0, 0, 0, 8] + Array("\u{FF}\u{FF}nonsense".utf8.prefix(8))
            #expect(try await harness.sendRaw(garbage, port: port))
            #expect(try await harness.sendRaw([0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3], port: port))
            #expect(try await harness.sendRaw([0, 0, 0, 50, 1, 2], port: port))
            var hello = WireEnvelope()
            hello.protocolVersion = 99
            hello.hello = .with { $0.peerID = "old"; $0.role = .client; $0.clientNonce = Data(repeating: 1, count: 32) }
            let bytes: [UInt8] = try hello.serializedBytes()
            #expect(try await harness.sendRaw([0, 0, 0, UInt8(bytes.count)] + bytes, port: port))
            #expect(await eventuallyAsync { harness.recorder.contains("larger than the limit") })
            #expect(await eventuallyAsync { harness.recorder.contains("protocol version 99") })
            // The server still serves a well-behaved client.
            let reply = try await RPCClient.connect(
                host: "127.0.0.1", port: port, identity: RPCPeer(id: "cli", role: .client), configuration: harness.configuration(),
                logger: harness.recorder.logger
            ) { connection in try await connection.request(harness.submit("still-here")) }
            #expect(reply.jobAccepted.job == "still-here")
        }
    }

    @Test("a peer that stops sending heartbeats is disconnected after the timeout")
    func heartbeatTimeout() async throws {
        let harness = RPCHarness()
        try await harness.withEchoServer(harness.configuration(interval: .milliseconds(50), timeout: .milliseconds(400))) { port in
            let started = ContinuousClock.now
            // This client sends its heartbeats only every 10 s: the server gives up on it.
            let ended = try await RPCClient.connect(
                host: "127.0.0.1", port: port, identity: RPCPeer(id: "sleepy", role: .taskExecutor),
                configuration: harness.configuration(interval: .seconds(10), timeout: .seconds(30)), logger: harness.recorder.logger
            ) { connection in
                for await _ in connection.messages {}
                return ContinuousClock.now - started
            }
            #expect(ended >= .milliseconds(350) && ended < .seconds(3), "closed after \(ended)")
            #expect(harness.recorder.contains("heartbeat timeout"))
        }
    }

    @Test("heartbeats keep an idle connection open")
    func heartbeatsKeepAlive() async throws {
        let harness = RPCHarness()
        // Idle for well over the timeout; the timeout itself is generous, so that a busy machine's
        // stall of a few hundred milliseconds does not pass for a silent peer.
        let configuration = harness.configuration(interval: .milliseconds(100), timeout: .milliseconds(1500))
        try await harness.withEchoServer(configuration) { port in
            let reply = try await RPCClient.connect(
                host: "127.0.0.1", port: port, identity: RPCPeer(id: "idle", role: .client), configuration: configuration,
                logger: harness.recorder.logger
            ) { connection in
                try await Task.sleep(for: .seconds(4))
                return try await connection.request(harness.submit("awake"))
            }
            #expect(reply.jobAccepted.job == "awake")
        }
    }
}

/// Whether `condition` holds within `timeout`, checked every 10 ms; sleeps without holding a
/// thread of the cooperative pool (the server whose log the condition reads runs there too).
func eventuallyAsync(timeout: Duration = .seconds(5), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}
