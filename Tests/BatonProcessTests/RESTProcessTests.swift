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
    /// The REST API and the dashboard of a live group: every master serves them, standbys answer
    /// with the leader's view, leadership moves after a kill -9, and a real browser sees it live.
    @Suite("REST API and dashboard with real processes")
    struct RESTProcessTests {
        let http = HTTPTestClient()

        func rest(_ group: GroupHarness, _ id: String) -> String {
            "http://\(group.configuration.masters.first { $0.id.rawValue == id }!.rest)"
        }

        static let streamingSpec = """
            name: Streaming keyed count
            scheduling: eager
            failover: region
            restart: { strategy: fixed-delay, attempts: 100, delay: 500ms }
            checkpoints: { interval: 500ms }
            vertices:
              - id: source
                parallelism: 2
                operators:
                  - sequence: { from: 0, keys: 16, rate: 1000 }
              - id: count
                parallelism: 2
                operators:
                  - count
                  - file-sink: { path: output/keyed-count, exactly-once: true }
            edges:
              - { from: source, to: count, pattern: hash, key: key, result: pipelined }
            """

        @Test("a standby answers with the leader's view; POST /v1/jobs starts the streaming job; leadership on every master moves after kill -9 of the leader")
        func standbysAndLeadership() async throws {
            let group = try GroupHarness(backend: "sqlite", taskExecutors: 2)
            defer { group.stop() }
            try group.startGroup()
            let stable = try #require(group.waitForStableLeader(), "\(group.logs)")
            let leader = try #require(stable.leader)
            let standby = try #require(group.configuration.masters.map(\.id.rawValue).first { $0 != leader.id })
            let standbyURL = rest(group, standby)

            let overview = try #require(
                await http.waitFor("\(standbyURL)/v1/overview") { $0.status == 200 && ($0.json["taskmanagers"] as? Int) == 2 }, "\(group.logs)")
            #expect(overview.json["slots-total"] as? Int == 8)
            #expect(overview.json["jobs-running"] as? Int == 0)
            #expect(overview.json["baton-version"] is String)
            let managers = try await http.get("\(standbyURL)/v1/taskmanagers")
            let first = (managers.json["taskmanagers"] as? [[String: Any]])?.first
            let total = first?["totalResource"] as? [String: Any]
            #expect(first?["slotsNumber"] as? Int == 4 && (total?["cpuCores"] as? Double ?? 0) > 0, "\(managers.text)")
            #expect((first?["freeResource"] as? [String: Any])?["taskHeapMemory"] as? Int == total?["taskHeapMemory"] as? Int)

            // Submit over REST, on a standby: 202 with the job id; then the job runs.
            let submitted = try await http.request(
                "POST", "\(standbyURL)/v1/jobs?jobid=keyed", body: Data(Self.streamingSpec.utf8), contentType: "application/yaml", token: group.restToken)
            #expect(submitted.status == 202, "\(submitted.text)")
            #expect(submitted.json["jobid"] as? String == "keyed")
            let running = try #require(
                await http.waitFor("\(standbyURL)/v1/jobs/overview") { reply in
                    let jobs = reply.json["jobs"] as? [[String: Any]] ?? []
                    let tasks = jobs.first?["tasks"] as? [String: Int]
                    return jobs.first?["state"] as? String == "RUNNING" && tasks?["running"] == 4 && tasks?["total"] == 4
                }, "\(group.logs)")
            let job = try #require((running.json["jobs"] as? [[String: Any]])?.first)
            #expect(job["jid"] as? String == "keyed")
            #expect((job["start-time"] as? Int ?? 0) > 0 && job["end-time"] as? Int == -1)
            let vertex = try await http.get("\(standbyURL)/v1/jobs/keyed/vertices/count")
            let subtasks = vertex.json["subtasks"] as? [[String: Any]] ?? []
            #expect(vertex.status == 200 && subtasks.count == 2 && subtasks.allSatisfy { $0["taskmanager-id"] is String }, "\(vertex.text)")
            let checkpoints = try #require(
                await http.waitFor("\(standbyURL)/v1/jobs/keyed/checkpoints") { (($0.json["counts"] as? [String: Int])?["completed"] ?? 0) > 0 })
            #expect(((checkpoints.json["latest"] as? [String: Any])?["completed"] as? [String: Any])?["status"] as? String == "COMPLETED")

            // The same id again while it runs: 409; an unknown job: 404; a bad spec: 400 naming the key.
            let again = try await http.request("POST", "\(standbyURL)/v1/jobs?jobid=keyed", body: Data(Self.streamingSpec.utf8), token: group.restToken)
            #expect(again.status == 409, "\(again.text)")
            let unknown = try await http.get("\(standbyURL)/v1/jobs/nothing-here")
            #expect(unknown.status == 404 && (unknown.json["errors"] as? [String])?.first?.contains("nothing-here") == true, "\(unknown.text)")
            let bad = try await http.request("POST", "\(standbyURL)/v1/jobs", body: Data("name: x\nparalelism: 2\nvertices: []\n".utf8), token: group.restToken)
            #expect(bad.status == 400 && bad.text.contains("paralelism"), "\(bad.text)")

            // Leadership, on every master, names the same leader and epoch.
            for master in group.configuration.masters {
                let reply = try await http.get("\(rest(group, master.id.rawValue))/v1/cluster/leadership")
                let named = reply.json["leader"] as? [String: Any]
                #expect(named?["id"] as? String == leader.id && named?["epoch"] as? Int == Int(leader.epoch), "\(reply.text)")
                #expect((reply.json["masters"] as? [[String: Any]])?.count == 3)
            }

            // kill -9 of the leader: a surviving master names the new leader within a second
            // (bounded here with a wide margin; the figure is printed).
            let killedAt = ContinuousClock.now
            kill(leader.pid, SIGKILL)
            let moved = try #require(
                await http.waitFor("\(standbyURL)/v1/cluster/leadership", timeout: .seconds(10)) { reply in
                    let named = reply.json["leader"] as? [String: Any]
                    return (named?["epoch"] as? Int ?? 0) > Int(leader.epoch) && named?["id"] as? String != leader.id
                }, "\(group.logs)")
            let elapsed = ContinuousClock.now - killedAt
            print("REST leadership moved \(elapsed) after kill -9 of the leader: \(moved.text)")
            #expect(elapsed < .seconds(5))
            let newEpoch = (moved.json["leader"] as? [String: Any])?["epoch"] as? Int ?? 0
            let failovers = try #require(
                await http.waitFor("\(standbyURL)/v1/cluster/failovers") { reply in
                    (reply.json["failovers"] as? [[String: Any]] ?? []).contains { $0["toEpoch"] as? Int == newEpoch && $0["reconcileMillis"] != nil }
                }, "\(group.logs)")
            #expect(failovers.status == 200)
            let audit = try await http.get("\(standbyURL)/v1/audit")
            #expect(audit.status == 200 && (audit.json["violations"] as? [Any])?.isEmpty == true, "\(audit.text)")
            // The job went on: no restart, still four running tasks.
            let after = try #require(
                await http.waitFor("\(standbyURL)/v1/jobs/keyed") { ($0.json["state"] as? String) == "RUNNING" }, "\(group.logs)")
            #expect(after.json["restarts"] as? Int == 0, "\(after.text)\n\(group.logs)")
        }

        @Test("bad requests get JSON errors and leave the master serving: unknown path and method, malformed and oversized bodies, a bad mode, no or a wrong token")
        func badRequests() async throws {
            let group = try GroupHarness(backend: "lmdb", masters: 1)
            defer { group.stop() }
            try group.startGroup()
            _ = try #require(group.waitForStableLeader(), "\(group.logs)")
            let base = rest(group, "m1")
            _ = try #require(await http.waitFor("\(base)/v1/overview") { $0.status == 200 }, "\(group.logs)")
            func expectError(_ reply: HTTPTestClient.Reply, _ status: Int, _ fragment: String) {
                #expect(reply.status == status, "\(reply.text)")
                #expect(reply.headers["content-type"]?.hasPrefix("application/json") == true)
                let errors = reply.json["errors"] as? [String] ?? []
                #expect(errors.contains { $0.contains(fragment) }, "\(reply.text)")
            }
            expectError(try await http.get("\(base)/v1/no-such-thing"), 404, "/v1/no-such-thing")
            expectError(try await http.request("DELETE", "\(base)/v1/jobs", token: group.restToken), 404, "DELETE")
            expectError(try await http.request("POST", "\(base)/v1/jobs", body: Data("{[: not yaml".utf8), token: group.restToken), 400, "request body")
            expectError(try await http.request("POST", "\(base)/v1/jobs", body: Data(repeating: 0x61, count: 2 << 20), token: group.restToken), 413, "larger than")
            expectError(try await http.request("PATCH", "\(base)/v1/jobs/x?mode=explode", token: group.restToken), 400, "mode=cancel")
            expectError(try await http.request("POST", "\(base)/v1/jobs/x/savepoints", body: Data("[1]".utf8), token: group.restToken), 400, "JSON object")
            expectError(try await http.request("POST", "\(base)/v1/jobs/x/stop", token: group.restToken), 404, "x")
            // An id that is no job id is an unknown job, not a missing leader (it once answered 503).
            expectError(try await http.request("POST", "\(base)/v1/jobs/%F3%90%96%8B/stop", token: group.restToken), 404, "not a valid job id")
            expectError(try await http.request("PATCH", "\(base)/v1/jobs/a%20b?mode=cancel", token: group.restToken), 404, "not a valid job id")
            // Requests that change the cluster without the token, or with another, are refused
            // before they reach the leader: 401 asking for a bearer token; reads on loopback are open.
            for (method, path) in [("POST", "/v1/jobs"), ("PATCH", "/v1/jobs/x?mode=cancel"), ("POST", "/v1/jobs/x/stop"), ("POST", "/v1/jobs/x/savepoints")] {
                for token in [nil, "not-the-token-of-this-group"] {
                    let refused = try await http.request(method, base + path, body: Data("{}".utf8), token: token)
                    expectError(refused, 401, token == nil ? "Authorization: Bearer" : "not this group's REST token")
                    #expect(refused.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
                }
            }
            #expect(try group.status().jobs.isEmpty)
            // Still serving, and still the leader.
            let overview = try await http.get("\(base)/v1/overview")
            #expect(overview.status == 200, "\(overview.text)")
            #expect(try group.status().leader?.id == "m1")
        }

        @Test("headless Chromium: the dashboard shows the leader and epoch, and the new ones after kill -9 of the leader that served it, without a reload")
        func dashboardFollowsTheLeader() async throws {
            let chromium = try #require(HeadlessChromium.executable, "Debian's chromium is needed: .ci/run installs it")
            let group = try GroupHarness(backend: "sqlite", taskExecutors: 1)
            defer { group.stop() }
            // No restarts: the killed master stays gone, so the page must move to another one.
            try group.startGroup(restart: false)
            let leader = try #require(group.waitForStableLeader()?.leader, "\(group.logs)")
            let browser = try HeadlessChromium(executable: chromium)
            defer { browser.close() }
            // The page comes from the leader itself: when it dies, the page must find another master.
            try await browser.open("\(rest(group, leader.id))/")
            let shown = await browser.waitFor("document.getElementById('leader-id').textContent + '@' + document.getElementById('leader-epoch').textContent") {
                ($0 as? String) == "\(leader.id)@\(leader.epoch)"
            }
            let page = String(describing: try? await browser.evaluate("document.body.innerText"))
            #expect(shown != nil, "\(page)")
            _ = try await browser.evaluate("window.loadedOnce = 'yes'")
            let masters = await browser.waitFor("document.querySelectorAll('#masters tbody tr').length") { ($0 as? Int) == 3 }
            #expect(masters != nil)

            kill(leader.pid, SIGKILL)
            let after = await browser.waitFor(
                "document.getElementById('leader-id').textContent + '@' + document.getElementById('leader-epoch').textContent", timeout: .seconds(20)
            ) { value in
                guard let text = value as? String, let at = text.firstIndex(of: "@"), let epoch = UInt64(text[text.index(after: at)...]) else { return false }
                return epoch > leader.epoch && !text.hasPrefix("\(leader.id)@") && !text.hasPrefix("no leader")
            }
            let pageAfter = String(describing: try? await browser.evaluate("document.body.innerText"))
            #expect(after != nil, "\(pageAfter)\n\(group.logs)")
            #expect(try await browser.evaluate("window.loadedOnce") as? String == "yes", "the page reloaded")
            let live = await browser.waitFor("document.getElementById('connection').textContent") { ($0 as? String) == "live" }
            #expect(live != nil)
        }
    }
}
