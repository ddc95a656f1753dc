import BatonConfig
import BatonCore
import BatonProcessControl
import BatonStatus
import BatonTestKit
import Foundation
import Testing

extension ProcessTests {
    /// The OpenAPI document in docs/ against a live group: the document validates, and every
    /// response schemathesis provokes from a standby conforms to it.
    @Suite("OpenAPI document against real processes")
    struct OpenAPIProcessTests {
        let http = HTTPTestClient()

        static var specPath: String {
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("docs/openapi.yaml").path
        }

        static var schemathesis: String? {
            let candidates = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/schemathesis" }
            return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
        }

        /// Runs `command` with `/bin/sh` inside `directory` (where schemathesis keeps its caches and reports).
        func shell(_ command: String, in directory: TemporaryDirectory, timeout: Duration = .seconds(300)) throws -> (Int32, String) {
            try BatonProcess.run(["-c", "cd '\(directory.path)' && \(command)"], executable: "/bin/sh", timeout: timeout)
        }

        func validateSpec(_ path: String, in directory: TemporaryDirectory) throws -> (Int32, String) {
            try shell(
                "python3 -c 'import sys, yaml; from openapi_spec_validator import validate; validate(yaml.safe_load(open(sys.argv[1]))); print(\"valid\")' '\(path)'",
                in: directory, timeout: .seconds(60))
        }

        @Test("the OpenAPI document validates, and a document with a broken reference does not")
        func specValidates() throws {
            let directory = try TemporaryDirectory("baton-openapi")
            defer { directory.remove() }
            let (status, output) = try validateSpec(Self.specPath, in: directory)
            #expect(status == 0 && output.contains("valid"), "\(output)")
            let spec = try String(contentsOfFile: Self.specPath, encoding: .utf8)
            let broken = try directory.write(spec.replacingOccurrences(of: "#/components/schemas/Overview\"", with: "#/components/schemas/Nowhere\""), to: "broken.yaml")
            let (brokenStatus, brokenOutput) = try validateSpec(broken, in: directory)
            #expect(brokenStatus != 0, "\(brokenOutput)")
        }

        @Test("schemathesis: every response of a standby conforms to the document; a document that asks for a field the API lacks fails it")
        func responsesConform() async throws {
            let schemathesis = try #require(Self.schemathesis, "schemathesis from PyPI is needed: tools/install-deps installs it")
            let group = try GroupHarness(backend: "sqlite", taskExecutors: 1)
            defer { group.stop() }
            try group.startGroup()
            let leader = try #require(group.waitForStableLeader()?.leader, "\(group.logs)")
            let standby = try #require(group.configuration.masters.first { $0.id.rawValue != leader.id })
            let base = "http://\(standby.rest)"
            _ = try #require(await http.waitFor("\(base)/v1/overview") { ($0.json["taskmanagers"] as? Int) == 1 }, "\(group.logs)")
            // The document's example job id names a running job, so its paths answer 200 too.
            let submitted = try await http.request("POST", "\(base)/v1/jobs?jobid=keyed", body: Data(RESTProcessTests.streamingSpec.utf8), token: group.restToken)
            #expect(submitted.status == 202, "\(submitted.text)")
            _ = try #require(await http.waitFor("\(base)/v1/jobs/keyed") { ($0.json["state"] as? String) == "RUNNING" }, "\(group.logs)")

            let run = { (spec: String) throws -> (Int32, String) in
                try shell(
                    "'\(schemathesis)' run '\(spec)' --url \(base) --header 'Authorization: Bearer \(group.restToken)' --checks not_a_server_error,status_code_conformance,content_type_conformance,"
                        + "response_schema_conformance,response_headers_conformance --exclude-path /v1/events --max-examples 10 --workers 1 "
                        + "--seed 1 --phases examples,coverage,fuzzing --no-color",
                    in: group.directory)
            }
            let (status, output) = try run(Self.specPath)
            #expect(status == 0, "\(output)")
            #expect(output.contains("passed"), "\(output)")
            // Still serving after the run.
            #expect(try await http.get("\(base)/v1/overview").status == 200)

            // The same check fires when the document and the API disagree.
            let spec = try String(contentsOfFile: Self.specPath, encoding: .utf8)
            let wrong = try group.directory.write(
                spec.replacingOccurrences(of: "required: [taskmanagers, slots-total,", with: "required: [not-a-field, taskmanagers, slots-total,"),
                to: "wrong.yaml")
            let (wrongStatus, wrongOutput) = try run(wrong)
            #expect(wrongStatus != 0 && wrongOutput.contains("not-a-field"), "\(wrongOutput)")
        }
    }
}
