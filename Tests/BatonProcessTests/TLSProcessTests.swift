import AsyncHTTPClient
import BatonConfig
import BatonCore
import BatonRPC
import BatonStatus
import BatonProcessControl
import BatonClient
import BatonTestKit
import BatonTLS
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import Testing

extension ProcessTests {
    /// A group whose RPC, data plane and REST run over mutual TLS, with certificates `baton certs`
    /// made.
    @Suite("TLS with real processes")
    struct TLSProcessTests {
        let failover = FailoverProcessTests()

        /// `baton certs` for the group's config, into its `tls` folder.
        func writeCertificates(_ group: GroupHarness) throws -> String {
            let folder = group.directory.file("tls")
            let run = try BatonProcess.run(["certs", "--config", group.configPath, "--out", folder])
            #expect(run.status == 0, "\(run.output)")
            return folder
        }

        @Test("`baton certs` writes a CA and a 0600 certificate and key per member and for clients, and refuses to overwrite a set")
        func certsCommand() throws {
            let group = try GroupHarness(backend: "sqlite", masters: 2, taskExecutors: 1, tls: true)
            defer { group.stop() }
            let folder = try writeCertificates(group)
            var info = stat()
            #expect(stat(folder, &info) == 0 && info.st_mode & 0o777 == 0o700)
            let names = ["ca.pem"] + ["m1", "m2", "te1", "client"].flatMap { ["\($0).pem", "\($0).key"] }
            #expect(Set(try FileManager.default.contentsOfDirectory(atPath: folder)) == Set(names))
            for name in names {
                #expect(stat(folder + "/" + name, &info) == 0 && info.st_mode & 0o777 == 0o600, "\(name)")
            }
            for id in ["m1", "te1", "client"] {
                let identity = try TLSPeerIdentity(try NIOSSLCertificate.fromPEMFile(folder + "/\(id).pem")[0])
                #expect(identity.id == id && identity.role == (id == "client" ? "client" : id == "te1" ? "task-executor" : "master"))
            }
            let again = try BatonProcess.run(["certs", "--config", group.configPath, "--out", folder])
            #expect(again.status == 1 && again.output.contains("a certificate set is there already"), "\(again.output)")
        }

        @Test("with TLS on, the group runs a job and fails over without restarts; plain and foreign clients are refused; REST is HTTPS")
        func groupFailsOverWithTLS() async throws {
            let group = try GroupHarness(backend: "sqlite", masters: 3, taskExecutors: 2, slots: 2, tls: true)
            defer { group.stop() }
            let folder = try writeCertificates(group)
            try group.startGroup()
            let output = group.directory.file("out")
            let records = 20_000
            try await failover.submitKeyedCount(group, records: records, output: output, taskExecutors: 2)
            let before = try #require(await failover.runningUnder(group, newerThan: 0), "\(group.logs)")
            let leader = try #require(before.leader)

            // A plain TCP client that knows the secret, and a client with a certificate from another CA.
            let master = try #require(group.configuration.master(MemberID(rawValue: leader.id)!)).rpc
            let plain = RPCConfiguration(secret: group.configuration.rpc.secret)
            await #expect(throws: RPCError.self) {
                try await RPCClient.connect(host: master.host, port: master.port, identity: RPCPeer(id: "client", role: .client), configuration: plain, logger: Logger(label: "t")) { _ in 0 }
            }
            let foreignFolder = group.directory.file("foreign-tls")
            try ClusterCertificates.make(cluster: "test", members: ClusterCertificates.holders(of: group.configuration)).write(to: foreignFolder)
            var foreign = plain
            foreign.tls = try TLSCredentials.load(directory: foreignFolder, identity: "client")
            let refused = await #expect(throws: RPCError.self) {
                try await RPCClient.connect(host: master.host, port: master.port, identity: RPCPeer(id: "client", role: .client), configuration: foreign, logger: Logger(label: "t")) { _ in 0 }
            }
            #expect(refused?.code == .unauthenticated, "\(String(describing: refused))")
            #expect(eventually(timeout: .seconds(5)) { group.logs.contains("TLS handshake") }, "\(group.logs)")

            // REST over HTTPS with the master's certificate; plain HTTP gets no answer.
            let rest = try #require(group.configuration.master(MemberID(rawValue: leader.id)!)).rest
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(folder + "/ca.pem"))
            let https = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
            do {
                let reply = try await https.execute(HTTPClientRequest(url: "https://\(rest.host):\(rest.port)/v1/overview"), timeout: .seconds(15))
                #expect(reply.status == HTTPResponseStatus.ok)
                let http = HTTPClient(eventLoopGroupProvider: .singleton)
                await #expect(throws: (any Error).self) {
                    _ = try await http.execute(HTTPClientRequest(url: "http://\(rest.host):\(rest.port)/v1/overview"), timeout: .seconds(5))
                }
                try await http.shutdown()
            } catch {
                Issue.record("HTTPS: \(error)")
            }
            try await https.shutdown()

            // kill -9 of the leader: the next one takes over over TLS, adopting every task.
            kill(leader.pid, SIGKILL)
            let after = try #require(await failover.runningUnder(group, newerThan: leader.epoch), "\(group.logs)")
            #expect(failover.attempts(after.jobs[0]) == failover.attempts(before.jobs[0]))
            #expect(after.jobs[0].restarts == 0)
            let finished = try #require(await group.waitLive(timeout: .seconds(90)) { $0.jobs.first?.state == "FINISHED" }, "\(group.logs)")
            #expect(finished.jobs[0].restarts == 0)
            try failover.expectExactlyOnce(output, records: records)
            let audit = try BatonProcess.run(["audit", "--config", group.configPath])
            #expect(audit.status == 0, "\(audit.output)")
        }
    }
}
