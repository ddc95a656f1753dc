import BatonProcessControl
import BatonTestKit
import Foundation
import Testing

extension ProcessTests {
    /// `baton run`: one job in one process, its progress printed, its outcome the exit status.
    @Suite("baton run (local mode) as a real process")
    struct RunProcessTests {
        @Test("a batch job runs to FINISHED (exit 0) and commits its output; a streaming job's input ends with --for; a failing job exits 1 naming FAILED and the cause after its restarts")
        func localRuns() throws {
            let directory = try TemporaryDirectory("baton-run-test")
            defer { directory.remove() }
            let words = try directory.write((0..<300).map { "w\($0 % 7) w\($0 % 3)" }.joined(separator: "\n") + "\n", to: "words.txt")
            let batch = try directory.write(
                """
                name: words
                scheduling: lazy-from-sources
                failover: region
                vertices:
                  - id: read
                    parallelism: 2
                    operators:
                      - text-file: { path: \(words) }
                      - tokenize
                  - id: count
                    parallelism: 2
                    operators:
                      - count
                      - file-sink: { path: out }
                edges:
                  - { from: read, to: count, pattern: hash, key: key, result: blocking }
                """, to: "words.yaml")
            let finished = try BatonProcess.run(["run", batch], timeout: .seconds(60))
            #expect(finished.status == 0, "\(finished.output)")
            #expect(finished.output.contains("job words FINISHED"), "\(finished.output)")
            let output = try FileManager.default.contentsOfDirectory(atPath: directory.file("out"))
            #expect(!output.isEmpty, "no output files: \(finished.output)")

            let streaming = try directory.write(
                """
                name: endless
                checkpoints: { interval: 200ms }
                vertices:
                  - id: source
                    parallelism: 2
                    operators:
                      - sequence: { keys: 8, rate: 2000 }
                  - id: sink
                    parallelism: 1
                    operators:
                      - count
                      - discard
                edges:
                  - { from: source, to: sink, pattern: hash, key: key }
                """, to: "endless.yaml")
            let stopped = try BatonProcess.run(["run", streaming, "--for", "2s", "--taskexecutors", "2"], timeout: .seconds(60))
            #expect(stopped.status == 0, "\(stopped.output)")
            #expect(stopped.output.contains("RUNNING  tasks 3 running") && stopped.output.contains("job endless FINISHED"), "\(stopped.output)")
            #expect(stopped.output.contains("checkpoint "), "\(stopped.output)")

            let broken = try directory.write(
                """
                name: broken
                restart: { strategy: fixed-delay, attempts: 2, delay: 50ms }
                vertices:
                  - id: source
                    parallelism: 1
                    operators:
                      - text-file: { path: does-not-exist.txt }
                      - discard
                """, to: "broken.yaml")
            let failed = try BatonProcess.run(["run", broken], timeout: .seconds(60))
            #expect(failed.status == 1, "\(failed.output)")
            #expect(failed.output.contains("job broken FAILED") && failed.output.contains("cannot read"), "\(failed.output)")

            let bad = try BatonProcess.run(["run", try directory.write("name: x\nvertices: 3\n", to: "bad.yaml")], timeout: .seconds(30))
            #expect(bad.status == 2 && bad.output.contains("vertices"), "\(bad.output)")
        }
    }
}
