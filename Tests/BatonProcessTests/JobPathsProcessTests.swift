import BatonCheckpointing
import BatonConfig
import BatonCore
import BatonFiles
import BatonJobGraph
import BatonProcessControl
import BatonStatus
import BatonExecutionGraph
import BatonTestKit
import Foundation
import Testing

extension ProcessTests {
    /// A leader runs no job that names a path outside the folders jobs may use, and no savepoint
    /// it cannot verify.
    @Suite("confined job paths with real processes")
    struct JobPathsProcessTests {
        let http = HTTPTestClient()

        /// A batch job reading `input` into `output`.
        func readerSpec(input: String, output: String) -> String {
            """
            name: reader
            vertices:
              - id: src
                parallelism: 1
                operators: [ { text-file: { path: "\(input)" } } ]
              - id: sink
                parallelism: 1
                operators: [ { file-sink: { path: "\(output)", exactly-once: false } } ]
            edges: [ { from: src, to: sink, pattern: forward } ]
            """
        }

        @Test("a job reading outside the allowed folders, through .., a symlink or over REST, is refused at submit, naming the path and the folders; inside, it runs")
        func outsideRefusedAtSubmit() async throws {
            let group = try GroupHarness(backend: "sqlite", masters: 1, taskExecutors: 1)
            defer { group.stop() }
            try group.startGroup()
            _ = try #require(await group.waitLive { $0.taskExecutors.first?.registeredEpoch != nil }, "\(group.logs)")
            let outside = try TemporaryDirectory("baton-outside")
            defer { outside.remove() }
            let secret = try outside.write("not for jobs\n", to: "secret.txt")
            try FileManager.default.createSymbolicLink(atPath: group.directory.file("escape"), withDestinationPath: outside.path)

            for (name, input) in [("absolute", secret), ("dotdot", "../\(URL(fileURLWithPath: outside.path).lastPathComponent)/secret.txt"), ("symlink", "escape/secret.txt")] {
                let spec = try group.jobSpec(readerSpec(input: input, output: "out-\(name)"), name: "\(name).yaml")
                let run = try BatonProcess.run(["submit", "--config", group.configPath, spec])
                #expect(run.status == 1, "\(name): \(run.output)")
                #expect(run.output.contains("outside the folders jobs may use") && run.output.contains(group.directory.path), "\(name): \(run.output)")
            }
            // Over REST: the spec has no folder, its paths resolve against the config's.
            let rest = "http://\(group.configuration.masters[0].rest)"
            let posted = try await http.request(
                "POST", "\(rest)/v1/jobs", body: Data(readerSpec(input: secret, output: "out-rest").utf8), token: group.restToken)
            #expect(posted.status == 400 && posted.text.contains(secret), "\(posted.text)")
            #expect(try group.status().jobs.isEmpty, "a refused job left a trace")
            #expect(!FileManager.default.fileExists(atPath: group.directory.file("out-absolute")))

            // Inside: the spec's folder is a root too when the spec comes from a file.
            let specFolder = try TemporaryDirectory("baton-spec-folder")
            defer { specFolder.remove() }
            _ = try specFolder.write("a b a\n", to: "words.txt")
            let spec = try specFolder.write(readerSpec(input: "words.txt", output: "out"), to: "reader.yaml")
            let accepted = try BatonProcess.run(["submit", "--config", group.configPath, spec, "--wait"], timeout: .seconds(60))
            #expect(accepted.status == 0, "\(accepted.output)\n\(group.logs)")
        }

        @Test("a per-job group runs a spec from a folder of its own, whose paths lie in that folder; one reading outside is refused and the group exits 1")
        func perJobGroupUsesTheSpecFolder() throws {
            let group = try GroupHarness(backend: "sqlite", masters: 1, taskExecutors: 1)
            defer { group.stop() }
            let specFolder = try TemporaryDirectory("baton-spec-folder")
            defer { specFolder.remove() }
            _ = try specFolder.write("a b a\n", to: "words.txt")
            let inside = try specFolder.write(readerSpec(input: "words.txt", output: "out"), to: "reader.yaml")
            let run = try group.start(["group", "--config", group.configPath, "--job", inside], log: "per-job.log")
            #expect(run.wait(timeout: .seconds(120)), "the per-job group did not end:\n\(group.logs)")
            #expect(run.exitStatus == 0 && run.log.contains("FINISHED"), "\(run.log)")
            let outside = try specFolder.write(readerSpec(input: "/etc/hostname", output: "out-2"), to: "outside.yaml")
            let refused = try group.start(["group", "--config", group.configPath, "--job", outside], log: "per-job-outside.log")
            #expect(refused.wait(timeout: .seconds(120)), "the per-job group did not end:\n\(group.logs)")
            #expect(refused.exitStatus == 1 && refused.log.contains("outside the folders jobs may use"), "\(refused.log)")
        }

        @Test("a savepoint signed with another cluster's key, or outside the allowed folders, is refused before it is read")
        func forgedSavepointRefused() async throws {
            let group = try GroupHarness(backend: "sqlite", masters: 1, taskExecutors: 1)
            defer { group.stop() }
            try group.startGroup()
            _ = try #require(await group.waitLive { $0.taskExecutors.first?.registeredEpoch != nil }, "\(group.logs)")
            _ = try group.directory.write("a b\n", to: "words.txt")
            let spec = try group.jobSpec(readerSpec(input: "words.txt", output: "out"), name: "reader.yaml")
            // Metadata that would point a restore at files of its choosing, signed with a key that is not the cluster's.
            let forged = CompletedCheckpoint(
                job: "reader", id: 1, isSavepoint: true, triggeredAt: .init(millisecondsSince1970: 0), completedAt: .init(millisecondsSince1970: 1),
                duration: .milliseconds(1), directory: "/etc", vertices: [.init(index: 1, id: "sink", parallelism: 1)],
                states: [ExecutionVertexID(jobVertex: 1, subtask: 0): StateHandle(path: "/etc/passwd", size: 1, checksum: 0)])
            let folder = group.directory.file("forged-savepoint")
            try DurableFiles.write(CompletedCheckpointCodec.encodeFile(forged, key: Array("another cluster's secret".utf8)), to: folder + "/_metadata")
            let refused = try BatonProcess.run(["submit", "--config", group.configPath, spec, "--from-savepoint", folder])
            #expect(refused.status == 1 && refused.output.contains("signature does not match"), "\(refused.output)")
            // The same file where jobs may not look is refused for where it is.
            let outside = try TemporaryDirectory("baton-outside-savepoint")
            defer { outside.remove() }
            try DurableFiles.write(CompletedCheckpointCodec.encodeFile(forged, key: group.configuration.rpc.secret), to: outside.file("_metadata"))
            let elsewhere = try BatonProcess.run(["submit", "--config", group.configPath, spec, "--from-savepoint", outside.path])
            #expect(elsewhere.status == 1 && elsewhere.output.contains("the savepoint") && elsewhere.output.contains("outside"), "\(elsewhere.output)")
            #expect(try group.status().jobs.isEmpty)
        }
    }
}
