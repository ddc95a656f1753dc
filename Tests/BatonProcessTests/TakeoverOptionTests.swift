import BatonGroup
import BatonJobMaster
import BatonProcessControl
import BatonTestKit
import Foundation
import Testing

@Suite("test faults are options, never environment")
struct TakeoverOptionTests {
    @Test("--takeover takes reconcile or restart-all and names the allowed values otherwise")
    func parsing() throws {
        #expect(try TakeoverPolicy.parse("reconcile") == .reconcile)
        #expect(try TakeoverPolicy.parse("restart-all") == .restartAll)
        let error = #expect(throws: TakeoverPolicyError.self) { try TakeoverPolicy.parse("restart") }
        #expect(error?.description.contains("reconcile, restart-all") == true)
    }

    @Test("a group passes no inherited BATON_* variable to its members, only the one it sets")
    func memberEnvironment() {
        let environment = GroupSupervisor.memberEnvironment(
            inherited: ["BATON_TEST_RESTART_ON_FAILOVER": "1", "BATON_LOG_LEVEL": "trace", "BATON_GROUP_PID": "1", "PATH": "/usr/bin"], groupPID: 42)
        #expect(environment == ["PATH": "/usr/bin", "BATON_GROUP_PID": "42"])
    }

    @Test("a bad --takeover is a usage error (exit 2) on every command that takes it")
    func badValueIsUsage() throws {
        for command in [["master", "--id", "m1"], ["group"], ["chaos", "--job", "x.yaml"], ["bench", "failover"]] {
            let directory = try TemporaryDirectory("baton-takeover-test")
            defer { directory.remove() }
            let config = try directory.write(TestConfigs.group(backend: "sqlite", masters: 1), to: "ha.yaml")
            let run = try BatonProcess.run(command + ["--config", config, "--takeover", "sometimes"])
            #expect(run.status == 2 && run.output.contains("--takeover"), "\(command): \(run.output)")
        }
    }
}
