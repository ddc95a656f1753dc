import BatonConfig
import BatonProcessControl
import BatonStatus
import BatonTestKit
import Foundation
import Testing

extension ProcessTests {
    /// The cluster's secret with real processes: made by the group when missing, private, and
    /// refused when others can read it.
    @Suite("the cluster's secret file with real processes")
    struct SecretProcessTests {
        @Test("baton group makes the missing secret and REST token files (mode 0600) and the group runs on them; made readable by others, every command refuses it, saying how to fix it")
        func groupMakesThePrivateSecret() throws {
            let directory = try TemporaryDirectory("baton-secret-test")
            defer { directory.remove() }
            let config = try directory.write(
                TestConfigs.group(backend: "sqlite", masters: 2).replacingOccurrences(of: "secret: test-cluster-secret", with: "secretFile: data/cluster.secret")
                    + "rest: { tokenFile: data/rest.token }\n",
                to: "ha.yaml")
            let secret = directory.file("data/cluster.secret")
            #expect(!FileManager.default.fileExists(atPath: secret))
            let group = try BatonProcess(executable: BatonProcess.executable("baton"), arguments: ["group", "--config", config], logPath: directory.file("group.log"))
            defer { group.stop() }
            #expect(
                eventually(timeout: .seconds(30)) {
                    guard let configuration = try? HAConfiguration.load(path: config) else { return false }
                    return (try? GroupStatus.read(configuration))?.leader?.alive == true
                }, "\(group.log)")
            let attributes = try FileManager.default.attributesOfItem(atPath: secret)
            #expect(attributes[.posixPermissions] as? Int == 0o600)
            #expect(group.log.contains("created the cluster's secret file \(secret) (mode 0600)"), "\(group.log)")
            let token = directory.file("data/rest.token")
            #expect(group.log.contains("created the REST token file \(token) (mode 0600)"), "\(group.log)")
            #expect(try FileManager.default.attributesOfItem(atPath: token)[.posixPermissions] as? Int == 0o600)
            #expect(!group.log.contains(try String(contentsOfFile: token, encoding: .utf8).trimmingCharacters(in: .newlines)))
            #expect(!group.log.contains("rpc.secret is inline"), "a secret file is no inline secret")
            // Nothing secret in the logs.
            let text = try String(contentsOfFile: secret, encoding: .utf8).trimmingCharacters(in: .newlines)
            #expect(!group.log.contains(text))

            chmod(secret, 0o644)
            let status = try BatonProcess.run(["status", "--config", config])
            #expect(status.status == 2, "\(status.output)")
            #expect(status.output.contains("chmod 600 \(secret)") && !status.output.contains(text), "\(status.output)")
            chmod(secret, 0o600)
            #expect(try BatonProcess.run(["status", "--config", config]).status == 0)
        }

        @Test("baton init makes the secret file once and leaves it afterwards; members warn about an inline secret")
        func initAndInlineWarning() throws {
            let directory = try TemporaryDirectory("baton-init-test")
            defer { directory.remove() }
            let config = try directory.write(
                TestConfigs.group(backend: "sqlite", masters: 1).replacingOccurrences(of: "secret: test-cluster-secret", with: "secretFile: keys/cluster.secret"),
                to: "ha.yaml")
            let first = try BatonProcess.run(["init", "--config", config])
            #expect(first.status == 0 && first.output.contains("created \(directory.file("keys/cluster.secret")) (mode 0600)"), "\(first.output)")
            let made = try String(contentsOfFile: directory.file("keys/cluster.secret"), encoding: .utf8)
            let second = try BatonProcess.run(["init", "--config", config])
            #expect(second.status == 0 && second.output.contains("exists"), "\(second.output)")
            #expect(try String(contentsOfFile: directory.file("keys/cluster.secret"), encoding: .utf8) == made)

            let inline = try GroupHarness(backend: "sqlite", masters: 1)
            defer { inline.stop() }
            try inline.startGroup()
            _ = try #require(inline.waitForStableLeader(), "\(inline.logs)")
            #expect(eventually(timeout: .seconds(5)) { inline.logs.contains("rpc.secret is inline in the config") }, "\(inline.logs)")
            #expect(!inline.logs.contains("test-cluster-secret"))
        }
    }
}
