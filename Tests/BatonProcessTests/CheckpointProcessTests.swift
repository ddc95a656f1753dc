import BatonCheckpointing
import BatonConfig
import BatonCore
import BatonHAStore
import BatonHAStoreSelection
import BatonStoreRecords
import BatonProcessControl
import BatonStatus
import BatonTestKit
import BatonWire
import Foundation
import Testing

extension ProcessTests {
    /// Checkpoints, the exactly-once file sink and savepoints with real processes.
    @Suite("checkpoints with real processes")
    struct CheckpointProcessTests {
        /// A keyed count over `records` numbers (endless when nil) on 16 keys, `rate` per source
        /// subtask, into an exactly-once file sink at `output`.
        func keyedCountSpec(id: String, records: Int?, rate: Int, output: String, interval: String = "500ms") -> String {
            """
            id: \(id)
            name: keyed count
            scheduling: eager
            failover: region
            restart: { strategy: fixed-delay, attempts: 1000, delay: 200ms }
            checkpoints: { interval: \(interval) }
            vertices:
              - id: source
                parallelism: 2
                operators:
                  - sequence: { from: 0, \(records.map { "to: \($0), " } ?? "")keys: 16, rate: \(rate) }
              - id: count
                parallelism: 2
                operators:
                  - count
                  - file-sink: { path: \(output), exactly-once: true }
            edges:
              - { from: source, to: count, pattern: hash, key: key, result: pipelined }
            """
        }

        /// Every committed (key, count) step in `directory`, and the names of files not committed.
        func committed(_ directory: String) throws -> (steps: [String: [Int64]], uncommitted: [String]) {
            var steps: [String: [Int64]] = [:]
            var uncommitted: [String] = []
            for file in try FileManager.default.contentsOfDirectory(atPath: directory) {
                guard file.hasPrefix("part-") else {
                    uncommitted.append(file)
                    continue
                }
                for line in try String(contentsOfFile: directory + "/" + file, encoding: .utf8).split(separator: "\n") {
                    let parts = line.split(separator: ",")
                    steps[String(parts[0]), default: []].append(Int64(parts[1])!)
                }
            }
            return (steps, uncommitted)
        }

        /// How many of `records` numbers fall on each key.
        func expected(records: Int) -> [String: Int64] {
            var counts: [String: Int64] = [:]
            for n in 0..<records { counts["k\(n % 16)", default: 0] += 1 }
            return counts
        }

        @Test("exactly-once keyed count through two kill -9 of task executors: every step once, no gap, ids increasing")
        func exactlyOnceThroughTaskExecutorKills() async throws {
            let group = try GroupHarness(backend: "sqlite", masters: 1, taskExecutors: 3, slots: 2)
            defer { group.stop() }
            try group.startGroup()
            let output = group.directory.file("out")
            let records = 40_000
            let spec = try group.jobSpec(keyedCountSpec(id: "counts", records: records, rate: 2_000, output: output), name: "counts.yaml")
            _ = try #require(await group.waitLive { $0.taskExecutors.filter { $0.registeredEpoch != nil }.count == 3 }, "\(group.logs)")
            #expect(try BatonProcess.run(["submit", "--config", group.configPath, spec]).status == 0)
            var seen: [UInt64] = []
            for round in 0..<2 {
                // Wait for a checkpoint newer than what was seen, with every task running.
                let floor = seen.last ?? 0
                let running = try #require(await group.waitLive(timeout: .seconds(40)) { status in
                    guard let job = status.jobs.first, let id = job.lastCheckpoint.id else { return false }
                    return id > floor + 1 && job.vertices.flatMap(\.subtasks).allSatisfy { $0.state == "RUNNING" }
                }, "round \(round): \(group.logs)")
                let job = running.jobs[0]
                seen.append(try #require(job.lastCheckpoint.id))
                #expect(job.lastCheckpoint.sizeBytes ?? 0 > 0)
                #expect(job.lastCheckpoint.time != nil && job.lastCheckpoint.durationMillis != nil)
                let victim = try #require(job.vertices.flatMap(\.subtasks).compactMap(\.taskExecutor).sorted().first)
                let pid = try #require(running.taskExecutors.first { $0.id == victim }?.pid)
                kill(pid, SIGKILL)
                _ = try #require(await group.waitLive { $0.jobs.first.map { $0.restarts > 0 } ?? false }, "\(group.logs)")
            }
            let finished = try #require(await group.waitLive(timeout: .seconds(90)) { $0.jobs.first?.state == "FINISHED" }, "\(group.logs)")
            #expect(finished.jobs[0].restarts >= 4)
            seen.append(try #require(finished.jobs[0].lastCheckpoint.id))
            #expect(seen == seen.sorted() && Set(seen).count == seen.count, "checkpoint ids \(seen)")
            // The committed output holds every (key, count) step exactly once, with no gap.
            let (steps, uncommitted) = try committed(output)
            #expect(uncommitted.isEmpty, "\(uncommitted)")
            let counts = expected(records: records)
            #expect(Set(steps.keys) == Set(counts.keys))
            for (key, values) in steps { #expect(values.sorted() == Array(1...counts[key]!), "key \(key): \(values.count) steps") }
            // The store holds the counter past every retained checkpoint, ids strictly increasing.
            let store = try HAStoreSelection.open(group.configuration.store, access: .readOnly)
            let (next, retained) = try await store.read { try CheckpointRecords.read($0, job: "counts") }
            let ids = retained.map(\.id)
            #expect(!ids.isEmpty && ids.count <= group.configuration.checkpoints.retain)
            #expect(ids == ids.sorted() && Set(ids).count == ids.count)
            #expect(next > ids.last ?? 0)
            #expect(ids.last?.rawValue == seen.last)
        }

        @Test("a savepoint of a running job starts a new job that continues the counts")
        func savepointRestore() async throws {
            let group = try GroupHarness(backend: "lmdb", masters: 1, taskExecutors: 1, slots: 4)
            defer { group.stop() }
            try group.startGroup()
            let records = 16_000
            let first = group.directory.file("first")
            let second = group.directory.file("second")
            let specA = try group.jobSpec(keyedCountSpec(id: "before", records: records, rate: 1_000, output: first), name: "before.yaml")
            let specB = try group.jobSpec(keyedCountSpec(id: "after", records: records, rate: 4_000, output: second), name: "after.yaml")
            _ = try #require(await group.waitLive { $0.taskExecutors.first?.registeredEpoch != nil }, "\(group.logs)")
            #expect(try BatonProcess.run(["submit", "--config", group.configPath, specA]).status == 0)
            _ = try #require(await group.waitLive { ($0.jobs.first?.lastCheckpoint.id ?? 0) >= 2 }, "\(group.logs)")
            let savepoint = try BatonProcess.run(["savepoint", "--config", group.configPath, "before"], timeout: .seconds(60))
            #expect(savepoint.status == 0, "\(savepoint.output)")
            let path = savepoint.output.split(separator: "\n").last.map(String.init) ?? ""
            #expect(FileManager.default.fileExists(atPath: path + "/_metadata"), "\(savepoint.output)")
            #expect(try BatonProcess.run(["cancel", "--config", group.configPath, "before"]).status == 0)
            _ = try #require(await group.waitLive { $0.jobs.first { $0.id == "before" }?.state == "CANCELED" }, "\(group.logs)")
            // A job whose shape does not match the savepoint is refused, with the reason.
            let mismatched = try group.jobSpec(
                keyedCountSpec(id: "wrong", records: records, rate: 1_000, output: second).replacingOccurrences(of: "parallelism: 2", with: "parallelism: 3"),
                name: "wrong.yaml")
            let refused = try BatonProcess.run(["submit", "--config", group.configPath, mismatched, "--from-savepoint", path])
            #expect(refused.status == 1 && refused.output.contains("parallelism 3"), "\(refused.output)")
            let resumed = try BatonProcess.run(
                ["submit", "--config", group.configPath, specB, "--from-savepoint", path, "--wait"], timeout: .seconds(90))
            #expect(resumed.status == 0, "\(resumed.output)\n\(group.logs)")
            // The new job's counts go on from the savepoint: no key starts again at 1, none has a
            // gap, and each ends at its total; with the first job's output nothing is missing.
            let counts = expected(records: records)
            let (after, uncommitted) = try committed(second)
            #expect(uncommitted.isEmpty, "\(uncommitted)")
            let (before, _) = try committed(first)
            for (key, total) in counts {
                let values = (after[key] ?? []).sorted()
                let lowest = try #require(values.first, "key \(key): the resumed job committed nothing")
                #expect(lowest > 1, "key \(key) started again at 1")
                #expect(values == Array(lowest...total), "key \(key): a gap or a duplicate after the savepoint")
                // The first job committed every step below the savepoint's, each once (it may
                // have gone on past the savepoint before it was cancelled).
                let earlier = (before[key] ?? []).sorted()
                #expect(earlier == Array(1...max(1, earlier.last ?? 0)) && !earlier.isEmpty, "key \(key): the first job's steps")
                #expect((earlier.last ?? 0) >= lowest - 1, "key \(key): steps \((earlier.last ?? 0) + 1) to \(lowest - 1) are missing")
            }
        }
    }
}
