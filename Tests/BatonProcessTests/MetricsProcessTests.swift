import BatonConfig
import BatonCore
import BatonProcessControl
import BatonStatus
import BatonTestKit
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessTests {
    /// `/metrics` of every master and task executor, checked by Debian's `promtool`, and scraped
    /// by Debian's `prometheus` server across a failover.
    @Suite("Prometheus metrics with real processes")
    struct MetricsProcessTests {
        let http = HTTPTestClient()

        static func tool(_ name: String) -> String? {
            ["/usr/bin/\(name)", "/usr/local/bin/\(name)"].first { FileManager.default.isExecutableFile(atPath: $0) }
        }

        /// `promtool check metrics` on `text`: its exit status and what it said.
        func promtoolCheck(_ text: String, promtool: String, in directory: TemporaryDirectory, name: String) throws -> (Int32, String) {
            let file = try directory.write(text, to: "\(name).prom")
            return try BatonProcess.run(["-c", "'\(promtool)' check metrics < '\(file)'"], executable: "/bin/sh", timeout: .seconds(30))
        }

        @Test("promtool finds nothing wrong with /metrics of every master and task executor, and fires on a counter without _total")
        func promtoolPasses() async throws {
            let promtool = try #require(Self.tool("promtool"), "Debian's prometheus package (promtool) is needed: .ci/run installs it")
            let group = try GroupHarness(backend: "sqlite", taskExecutors: 2, metrics: true)
            defer { group.stop() }
            try group.startGroup()
            let leader = try #require(group.waitForStableLeader()?.leader, "\(group.logs)")
            let master = "http://\(group.configuration.masters.first { $0.id.rawValue == leader.id }!.rest)"
            _ = try #require(await http.waitFor("\(master)/v1/overview") { ($0.json["taskmanagers"] as? Int) == 2 }, "\(group.logs)")
            let submitted = try await http.request("POST", "\(master)/v1/jobs?jobid=keyed", body: Data(RESTProcessTests.streamingSpec.utf8), token: group.restToken)
            #expect(submitted.status == 202, "\(submitted.text)")
            // Task metrics appear once the job runs and a checkpoint completed.
            _ = try #require(
                await http.waitFor("\(master)/metrics") { $0.text.contains("baton_checkpoints_completed_total{job=\"keyed\"}") }, "\(group.logs)")
            var expositions: [(String, String)] = []
            for member in group.configuration.masters {
                let reply = try await http.get("http://\(member.rest)/metrics")
                #expect(reply.status == 200 && reply.headers["content-type"]?.hasPrefix("text/plain") == true)
                expositions.append((member.id.rawValue, reply.text))
            }
            for executor in group.configuration.taskExecutors {
                let metrics = try #require(executor.metrics)
                let reply = try #require(await http.waitFor("http://\(metrics)/metrics") { $0.text.contains("baton_taskexecutor_commands_refused_total") })
                expositions.append((executor.id.rawValue, reply.text))
            }
            let all = expositions.map(\.1).joined()
            for name in ["baton_master_is_leader", "baton_leader_epoch", "baton_store_commit_seconds_bucket", "baton_taskexecutors_registered",
                "baton_slots_available", "baton_jobs_running", "baton_last_checkpoint_duration_seconds", "baton_task_records_in_total",
                "baton_task_records_out_total", "baton_task_backpressured_seconds_total", "baton_failover_detect_seconds_count"] {
                #expect(all.contains(name), "\(name) is missing")
            }
            for (member, text) in expositions {
                let (status, output) = try promtoolCheck(text, promtool: promtool, in: group.directory, name: member)
                #expect(status == 0, "promtool on \(member): \(output)\n\(text)")
            }
            // The check can fail: a counter named without `_total` (what a wrong rename would give).
            let broken = expositions[0].1.replacingOccurrences(of: "baton_leadership_changes_total", with: "baton_leadership_changes")
            let (status, output) = try promtoolCheck(broken, promtool: promtool, in: group.directory, name: "broken")
            #expect(status != 0 && output.contains("baton_leadership_changes"), "\(output)")
        }

        @Test("a real Prometheus server scraping the group: its query API shows the leader epoch move after kill -9 of the leader")
        func prometheusSeesTheFailover() async throws {
            let prometheus = try #require(Self.tool("prometheus"), "Debian's prometheus package is needed: .ci/run installs it")
            let group = try GroupHarness(backend: "lmdb", taskExecutors: 1, metrics: true)
            defer { group.stop() }
            try group.startGroup()
            let first = try #require(group.waitForStableLeader()?.leader, "\(group.logs)")
            // A running job: a failover then reconciles it (and records how long that took).
            let master = "http://\(group.configuration.masters.first { $0.id.rawValue == first.id }!.rest)"
            _ = try #require(await http.waitFor("\(master)/v1/overview") { ($0.json["taskmanagers"] as? Int) == 1 }, "\(group.logs)")
            let submitted = try await http.request("POST", "\(master)/v1/jobs?jobid=keyed", body: Data(RESTProcessTests.streamingSpec.utf8), token: group.restToken)
            #expect(submitted.status == 202, "\(submitted.text)")
            _ = try #require(await http.waitFor("\(master)/v1/jobs/keyed") { ($0.json["state"] as? String) == "RUNNING" }, "\(group.logs)")
            let targets = group.configuration.masters.map { "\"\($0.rest)\"" } + group.configuration.taskExecutors.compactMap { $0.metrics.map { "\"\($0)\"" } }
            let config = try group.directory.write(
                """
                global: { scrape_interval: 250ms, scrape_timeout: 200ms }
                scrape_configs:
                  - job_name: baton
                    static_configs: [ { targets: [\(targets.joined(separator: ", "))] } ]
                """, to: "prometheus.yml")
            let port = FreePort.next()
            let server = try group.start(
                [
                    "--config.file=\(config)", "--storage.tsdb.path=\(group.directory.file("tsdb"))", "--web.listen-address=127.0.0.1:\(port)",
                    "--log.level=warn",
                ], log: "prometheus.log", executable: prometheus)
            defer { server.kill() }
            let api = "http://127.0.0.1:\(port)/api/v1/query?query="
            func epoch(_ query: String) async -> (Int, String)? {
                let encoded = query.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? query
                guard let reply = try? await http.get(api + encoded), let data = reply.json["data"] as? [String: Any],
                    let result = (data["result"] as? [[String: Any]])?.first, let value = (result["value"] as? [Any])?.last as? String
                else { return nil }
                return (Int(Double(value) ?? -1), ((result["metric"] as? [String: String])?["master"]) ?? "")
            }
            // The leader Prometheus shows is the group's (under a loaded machine a lease may have
            // lapsed meanwhile: then the newer leader is the one to kill).
            var target = first
            let seen = await eventuallyAsync(timeout: .seconds(30)) {
                guard let current = try? group.status().leader, current.alive, let (value, _) = await epoch("max(baton_leader_epoch)"),
                    value == Int(current.epoch), await epoch("baton_master_is_leader == 1")?.1 == current.id
                else { return false }
                target = current
                return true
            }
            #expect(seen, "Prometheus never showed the group's leader and epoch:\n\(server.log)\n\(group.logs)")
            let leader = target

            kill(leader.pid, SIGKILL)
            let after = await eventuallyAsync(timeout: .seconds(30)) {
                guard let (value, _) = await epoch("max(baton_leader_epoch)"), value > Int(leader.epoch) else { return false }
                guard let (one, master) = await epoch("baton_master_is_leader == 1"), one == 1 else { return false }
                return master != leader.id
            }
            #expect(after, "Prometheus never saw a new leader after epoch \(leader.epoch):\n\(server.log)\n\(group.logs)")
            let detect = await eventuallyAsync(timeout: .seconds(10)) { (await epoch("sum(baton_failover_reconcile_seconds_count)")?.0 ?? 0) >= 1 }
            #expect(detect, "no failover histogram reached Prometheus")
        }
    }
}
