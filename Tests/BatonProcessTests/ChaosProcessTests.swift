import BatonConfig
import BatonCore
import BatonProcessControl
import BatonStatus
import BatonTestKit
import Foundation
import Testing

extension ProcessTests {
    /// `baton chaos` and `baton audit` against real groups.
    @Suite("chaos and audit with real processes")
    struct ChaosProcessTests {
        func chaosSpec(_ output: String) -> String {
            CheckpointProcessTests().keyedCountSpec(id: "chaos-count", records: nil, rate: 2_000, output: output, interval: "300ms")
        }

        @Test("a short chaos run with every kind of fault passes, and the audit agrees", arguments: ["sqlite", "lmdb"])
        func shortChaosRun(_ backend: String) throws {
            let group = try GroupHarness(backend: backend, masters: 3, taskExecutors: 2, slots: 2)
            defer { group.stop() }
            let spec = try group.jobSpec(chaosSpec(group.directory.file("out")), name: "chaos.yaml")
            let report = group.directory.file("report")
            let run = try BatonProcess.run(
                ["chaos", "--config", group.configPath, "--job", spec, "--kills", "6", "--interval", "500ms-1s", "--seed", "11", "--report", report, "--json"],
                timeout: .seconds(240))
            #expect(run.status == 0, "\(run.output)")
            let json = try #require(run.output.split(separator: "\n").last { $0.hasPrefix("{") })
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            let summary = try #require(object["summary"] as? [String: Any])
            #expect(summary["faults"] as? Int == 6)
            #expect(summary["taskRestartsFromMasterFaults"] as? Int == 0)
            #expect(summary["duplicates"] as? Int == 0 && summary["gaps"] as? Int == 0)
            #expect((summary["recordsCommitted"] as? Int ?? 0) > 0)
            #expect((object["violations"] as? [Any])?.isEmpty == true)
            for file in ["report.json", "seed", "group.log"] { #expect(FileManager.default.fileExists(atPath: "\(report)/\(file)"), "\(file)") }
            let audit = try BatonProcess.run(["audit", "--config", group.configPath, "--json"])
            #expect(audit.status == 0, "\(audit.output)")
            #expect(audit.output.contains("\"failovers\""))
        }

        @Test("a leader that restarts tasks on failover is caught by chaos and by the audit")
        func restartOnFailoverIsCaught() throws {
            let group = try GroupHarness(backend: "sqlite", masters: 3, taskExecutors: 2, slots: 2)
            defer { group.stop() }
            let spec = try group.jobSpec(chaosSpec(group.directory.file("out")), name: "chaos.yaml")
            let run = try BatonProcess.run(
                ["chaos", "--config", group.configPath, "--job", spec, "--kills", "2", "--faults", "kill", "--interval", "500ms", "--seed", "5",
                 "--report", group.directory.file("report")],
                timeout: .seconds(180), environment: ["BATON_TEST_RESTART_ON_FAILOVER": "1"])
            #expect(run.status == 1, "\(run.output)")
            #expect(run.output.contains("restart-by-master-failover"), "\(run.output)")
            let audit = try BatonProcess.run(["audit", "--config", group.configPath])
            #expect(audit.status == 1, "\(audit.output)")
            #expect(audit.output.contains("restart-by-master-failover"), "\(audit.output)")
        }
    }
}
