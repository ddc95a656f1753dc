import BatonConfig
import BatonCore
import BatonElection
import BatonHAStore
import BatonHAStoreSelection
import BatonProcessControl
import BatonTestKit
import Foundation
import Testing

/// The store and the commands with real processes: concurrent writers, refused files, bad configs.
extension ProcessTests {
@Suite("store and commands with real processes")
struct StoreProcessTests {
    struct HammerReport: Decodable {
        var id: String
        var won: Int
        var lost: Int
        var writes: Int
        var refusedStale: Int
        var acceptedStale: Int
        var busy: Int
        var outcomeUnknown: Int
        var otherErrors: [String]
    }

    @Test("a task executor whose checkpoints.dir it cannot write and read back does not start, naming the folder; with a usable one it starts")
    func checkpointStorageProbe() throws {
        let directory = try TemporaryDirectory("baton-probe-test")
        defer { directory.remove() }
        // A folder under a regular file can never be made.
        _ = try directory.write("not a folder", to: "blocker")
        let unusable = directory.file("blocker/checkpoints")
        let config = try directory.write(
            TestConfigs.group(backend: "sqlite", masters: 1, taskExecutors: 1) + "checkpoints: { dir: \(unusable) }\n", to: "probe.yaml")
        let refused = try BatonProcess.run(["taskexecutor", "--config", config, "--id", "te1"], timeout: .seconds(30))
        #expect(refused.status == 1)
        #expect(refused.output.contains("checkpoints.dir"))
        #expect(refused.output.contains(unusable))
        // A usable folder: the task executor gets past the probe (it then waits for a store), and
        // leaves no probe file behind once stopped.
        let usable = directory.file("shared/checkpoints")
        let good = try directory.write(
            TestConfigs.group(backend: "sqlite", masters: 1, taskExecutors: 1) + "checkpoints: { dir: \(usable) }\n", to: "good.yaml")
        let executor = try ChildProcess(
            executable: ChildProcess.executable("baton"), arguments: ["taskexecutor", "--config", good, "--id", "te1"], logPath: directory.file("te1.log"))
        defer { executor.kill() }
        let deadline = ContinuousClock.now + .seconds(20)
        while !executor.log.contains("waiting for a master to create the store"), executor.isRunning, ContinuousClock.now < deadline { usleep(20_000) }
        #expect(executor.log.contains("waiting for a master to create the store"), "\(executor.log)")
        executor.stop()
        #expect(try FileManager.default.contentsOfDirectory(atPath: usable).filter { $0.hasPrefix(".probe") }.isEmpty)
    }

    @Test("the LMDB map grows as the store fills, while another process keeps writing to it")
    func lmdbMapGrows() async throws {
        let directory = try TemporaryDirectory("baton-lmdb-growth")
        defer { directory.remove() }
        let config = directory.file("local.yaml")
        try TestConfigs.group(backend: "lmdb", masters: 1)
            .replacingOccurrences(of: "path: data/ha.lmdb }", with: "path: data/ha.lmdb, mapSize: 1MiB }")
            .write(toFile: config, atomically: true, encoding: .utf8)
        let configuration = try HAConfiguration.load(path: config)
        try FileManager.default.createDirectory(atPath: directory.file("data"), withIntermediateDirectories: true)
        let store = try HAStoreSelection.open(configuration.store, access: .readWrite)
        // A writer in another process that holds the store open the whole time.
        let hammer = try ChildProcess(
            executable: BatonProcess.executable("baton-store"), arguments: ["hammer", "--config", config, "--id", "w1", "--seconds", "4"],
            logPath: directory.file("w1.json"))
        defer { hammer.stop() }
        try await Task.sleep(for: .milliseconds(500))
        // Four times the configured map, 64 KiB at a time.
        for index in 0..<64 {
            try await store.unfencedWrite { try $0.put(.jobs, StoreKey.text("fill/") + StoreKey.uint64(UInt64(index)), bytes: [UInt8](repeating: 7, count: 64 << 10)) }
        }
        #expect(try store.readBlocking { try $0.entries(.jobs, prefix: StoreKey.text("fill/")).count } == 64)
        #expect(hammer.wait(timeout: .seconds(60)), "the writer hung")
        #expect(hammer.exitStatus == 0, "\(hammer.log)")
        let line = try #require(hammer.log.split(separator: "\n").last { $0.hasPrefix("{") }, "\(hammer.log)")
        let report = try JSONDecoder().decode(HammerReport.self, from: Data(line.utf8))
        #expect(report.otherErrors.isEmpty, "\(report.otherErrors)")
        #expect(report.writes > 0)
    }

    @Test("concurrent writers from several processes never corrupt the store", arguments: ["sqlite", "lmdb"])
    func concurrentWriters(_ backend: String) throws {
        let group = try GroupHarness(backend: backend)
        defer { group.stop() }
        let writers = (1...4).map { "w\($0)" }
        let processes = try writers.enumerated().map { index, id in
            try group.start(
                ["hammer", "--config", group.configPath, "--id", id, "--seconds", "3", "--seed", "\(index + 1)"],
                log: "\(id).json", executable: BatonProcess.executable("baton-store"))
        }
        for process in processes { #expect(process.wait(timeout: .seconds(60)), "a writer hung") }
        let reports = try processes.map { process -> HammerReport in
            #expect(process.exitStatus == 0, "\(process.log)")
            let line = try #require(process.log.split(separator: "\n").last { $0.hasPrefix("{") }, "\(process.log)")
            return try JSONDecoder().decode(HammerReport.self, from: Data(line.utf8))
        }
        #expect(reports.reduce(0) { $0 + $1.won } > 4, "the writers must take turns leading")
        #expect(reports.reduce(0) { $0 + $1.writes } > 20)
        #expect(reports.reduce(0) { $0 + $1.refusedStale } > 0, "stale writes must have been tried")
        for report in reports {
            #expect(report.acceptedStale == 0, "\(report.id) had a stale write accepted")
            #expect(report.otherErrors.isEmpty, "\(report.id): \(report.otherErrors)")
        }
        let check = try BatonProcess.run(["check", "--config", group.configPath], executable: BatonProcess.executable("baton-store"))
        #expect(check.status == 0, "\(check.output)")
        let store = try HAStoreSelection.open(group.configuration.store, access: .readOnly)
        let terms = try store.readBlocking { try $0.terms() }
        #expect(terms.map(\.epoch.rawValue) == Array(1...UInt64(terms.count)))
        for report in reports {
            let id = report.id
            let entries = try store.readBlocking { try $0.entries(.jobs, prefix: StoreKey.text("hammer/\(id)/")) }
            // Every write that returned is there (a commit whose outcome was unknown may be too).
            #expect(entries.count >= report.writes && entries.count <= report.writes + report.outcomeUnknown, "\(id)")
            for entry in entries {
                // Each was written under a term that this writer held.
                let epoch = Epoch(UInt64(String(decoding: entry.value, as: UTF8.self))!)
                let holder = terms.first { $0.epoch == epoch }?.holder.member.rawValue
                #expect(holder == id, "\(id) wrote under epoch \(epoch) held by \(holder ?? "nobody")")
            }
            let stale = try store.readBlocking { try $0.bytes(.jobs, StoreKey.text("stale/\(id)")) }
            #expect(stale == nil)
        }
    }

    @Test("a master refuses a corrupt or foreign store file, names it, and leaves it unchanged", arguments: ["sqlite", "lmdb"])
    func masterRefusesBadStore(_ backend: String) throws {
        let group = try GroupHarness(backend: backend)
        defer { group.stop() }
        let path = group.configuration.store.path
        // A real store first (then replaced by bad contents of its own length class).
        _ = try HAStoreSelection.open(group.configuration.store, access: .readWrite)
        let bytes = try #require(FileBytes.read(path))
        let garbage = Array("this is not a store, it is a shopping list\n".utf8)
        for (name, contents) in [("foreign", garbage), ("truncated", Array(bytes.prefix(1000)))] {
            try FileBytes.write(contents, to: path)
            let run = try BatonProcess.run(["master", "--config", group.configPath, "--id", "m1"], timeout: .seconds(30))
            #expect(run.status == 1, "\(name): \(run.output)")
            #expect(run.output.contains(path), "\(name): the error must name the file: \(run.output)")
            #expect(FileBytes.read(path) == contents, "\(name): the file must be left unchanged")
        }
    }

    @Test("config errors name the file and the key and exit with status 2")
    func configErrors() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let bad = try directory.write(
            TestConfigs.group(backend: "sqlite").replacingOccurrences(of: "lease: 1s", with: "leese: 1s"), to: "bad.yaml")
        for command in [["status"], ["master", "--id", "m1"], ["group"], ["bench", "election"]] {
            let run = try BatonProcess.run([command[0]] + Array(command.dropFirst()) + ["--config", bad])
            #expect(run.status == 2, "\(command): \(run.output)")
            #expect(run.output.contains(bad) && run.output.contains("election.leese"), "\(command): \(run.output)")
        }
        let good = try directory.write(TestConfigs.group(backend: "sqlite"), to: "good.yaml")
        let unknownMaster = try BatonProcess.run(["master", "--config", good, "--id", "m9"])
        #expect(unknownMaster.status == 2)
        #expect(unknownMaster.output.contains("no master 'm9'"))
        let usage = try BatonProcess.run(["status"])
        #expect(usage.status == 2, "\(usage.output)")
        let missing = try BatonProcess.run(["status", "--config", directory.file("absent.yaml")])
        #expect(missing.status == 2, "\(missing.output)")
    }

    @Test("a second master with the same id is refused while the first runs")
    func duplicateMaster() throws {
        let group = try GroupHarness(backend: "sqlite", masters: 1)
        defer { group.stop() }
        try group.startMaster("m1")
        _ = try #require(group.waitForStableLeader())
        let second = try BatonProcess.run(["master", "--config", group.configPath, "--id", "m1"], timeout: .seconds(30))
        #expect(second.status == 1)
        #expect(second.output.contains("already running"), "\(second.output)")
    }
}
}
