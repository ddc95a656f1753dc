import BatonCore
import BatonJobGraph
import BatonOperators
import Foundation
import Testing

@Suite("exactly-once file sink")
struct FileSinkTests {
    func sink(_ directory: String, attempt: Int = 0) throws -> any StreamOperator {
        try OperatorFactory.transform(
            .fileSink(directory),
            context: OperatorContext(jobVertex: "count", subtask: 0, parallelism: 1, attempt: attempt, boundedInput: false))
    }

    func write(_ sink: inout any StreamOperator, _ range: ClosedRange<Int64>) throws {
        for value in range { try sink.process(.keyed(key: "k", value: value)) { _ in } }
    }

    func files(_ directory: String) throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: directory).sorted() }

    func lines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    @Test("data becomes visible only on completion; a repeated notice changes nothing")
    func twoPhaseCommit() throws {
        let root = NSTemporaryDirectory() + "baton-sink-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        var operation = try sink(root)
        try write(&operation, 1...3)
        _ = try operation.snapshotState(checkpoint: 1)
        try write(&operation, 4...5)
        _ = try operation.snapshotState(checkpoint: 2)
        #expect(try files(root).filter { $0.hasPrefix("part-") }.isEmpty)
        try operation.checkpointCompleted(1)
        try operation.checkpointCompleted(1)
        #expect(try files(root) == [".part-0-2.pending", "part-0-1"])
        #expect(try lines(root + "/part-0-1") == ["k,1", "k,2", "k,3"])
        try operation.checkpointCompleted(2)
        #expect(try files(root) == ["part-0-1", "part-0-2"])
    }

    @Test("a sink that goes away without finishing (its task failed or was canceled) removes its in-progress file and keeps its pending ones")
    func abandonedSinkRemovesItsInProgressFile() throws {
        let root = NSTemporaryDirectory() + "baton-sink-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        do {
            var operation = try sink(root, attempt: 3)
            try write(&operation, 1...3)
            _ = try operation.snapshotState(checkpoint: 1)
            // Enough records that some reach the in-progress file before any checkpoint.
            try write(&operation, 4...400_000)
            let present = try files(root)
            #expect(present.contains { $0.hasPrefix(".part-0-3-") && $0.hasSuffix(".inprogress") }, "\(present)")
        }
        #expect(try files(root) == [".part-0-1.pending"])
    }

    @Test("a checkpoint's file holds every record when syncs start early in the background, across several files")
    func earlyWritebackKeepsEveryRecord() throws {
        let root = NSTemporaryDirectory() + "baton-sink-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        var operation = try sink(root)
        // About 20 MB per checkpoint: several background syncs each, the last one perhaps still
        // running when the checkpoint closes the file.
        try write(&operation, 1...1_500_000)
        _ = try operation.snapshotState(checkpoint: 1)
        try write(&operation, 1_500_001...3_000_000)
        _ = try operation.snapshotState(checkpoint: 2)
        try operation.checkpointCompleted(2)
        #expect(try files(root) == ["part-0-1", "part-0-2"])
        let first = try lines(root + "/part-0-1")
        let second = try lines(root + "/part-0-2")
        #expect(first.count == 1_500_000 && first.first == "k,1" && first.last == "k,1500000")
        #expect(second.count == 1_500_000 && second.first == "k,1500001" && second.last == "k,3000000")
    }

    @Test("a restore commits what its checkpoint staged and removes everything written after it, the end commit included")
    func restoreDiscardsLaterOutput() throws {
        let root = NSTemporaryDirectory() + "baton-sink-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        var first = try sink(root)
        try write(&first, 1...3)
        let state = try first.snapshotState(checkpoint: 7)
        try write(&first, 4...6)
        _ = try first.snapshotState(checkpoint: 8)
        try write(&first, 7...9)
        // The input ended before checkpoint 7's notice: everything is committed at the end.
        try first.finish { _ in }
        #expect(try files(root) == ["part-0-7", "part-0-8", "part-0-end"])
        // Another task failed: this (finished) sink restarts from checkpoint 7.
        var second = try sink(root, attempt: 1)
        try second.restoreState(state, checkpoint: 7)
        #expect(try files(root) == ["part-0-7"])
        #expect(try lines(root + "/part-0-7") == ["k,1", "k,2", "k,3"])
    }

    @Test("a savepoint keeps its staged data even when the job later restores from an older checkpoint")
    func savepointKeepsItsFiles() throws {
        let root = NSTemporaryDirectory() + "baton-sink-\(UInt32.random(in: 0...UInt32.max))"
        let output = root + "/out"
        let savepoint = root + "/savepoint-job-6"
        defer { try? FileManager.default.removeItem(atPath: root) }
        var running = try sink(output)
        try write(&running, 1...2)
        let checkpoint5 = try running.snapshotState(checkpoint: 5)
        try running.checkpointCompleted(5)
        try write(&running, 3...4)
        let savepoint6 = try running.snapshotState(checkpoint: 6, savepointDirectory: savepoint)
        // The job fails and restores from checkpoint 5: its pending file of 6 is removed.
        var restarted = try sink(output, attempt: 1)
        try restarted.restoreState(checkpoint5, checkpoint: 5)
        #expect(try files(output) == ["part-0-5"])
        // A new job from the savepoint still commits the savepoint's data.
        var resumed = try sink(root + "/elsewhere")
        try resumed.restoreState(savepoint6, checkpoint: 6)
        #expect(try files(output) == ["part-0-5", "part-0-6"])
        #expect(try lines(output + "/part-0-6") == ["k,3", "k,4"])
    }
}
