import BatonCore
import BatonDataPlane
import Foundation
import Testing

@Suite("blocking results within a memory budget")
struct BlockingSpillTests {
    static func folder() -> String { NSTemporaryDirectory() + "baton-spill-unit-\(UInt32.random(in: 0...UInt32.max))" }

    @Test("batches past the budget go to a spill file; every reader gets them all in order; release gives the memory back and removes the file")
    func spillAndRelease() async throws {
        let directory = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let memory = try BlockingResultMemory(budgetBytes: 100, directory: directory)
        let subpartition = BlockingSubpartition(memory: memory, name: "r0")
        let batches = (0..<10).map { index in [UInt8](repeating: UInt8(index), count: 30) }
        for batch in batches { await subpartition.write(batch) }
        try await subpartition.finish()
        let held = await subpartition.byteCount
        #expect(memory.usedBytes == 90 && held == 90)
        let path = try #require(await subpartition.spillPath)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == 7 * (4 + 30))
        #expect(try await subpartition.completeBatches() == batches)
        #expect(try await subpartition.completeBatches() == batches, "a second consumer attempt reads it all again")
        await subpartition.release()
        #expect(memory.usedBytes == 0)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test("a batch that cannot be spilled fails the producer when it finishes, naming the file")
    func spillFailureFailsProducer() async throws {
        let directory = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let memory = try BlockingResultMemory(budgetBytes: 10, directory: directory)
        try FileManager.default.removeItem(atPath: directory)
        let subpartition = BlockingSubpartition(memory: memory, name: "r0")
        await subpartition.write([UInt8](repeating: 1, count: 30))
        await #expect(throws: SpillError.self) { try await subpartition.finish() }
        do {
            try await subpartition.finish()
        } catch {
            #expect("\(error)".contains(directory))
        }
    }

    @Test("releasing one producer attempt's results drops exactly those partitions: their memory back, their files gone, the rest kept")
    func releaseOneProducer() async throws {
        let directory = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let memory = try BlockingResultMemory(budgetBytes: 40, directory: directory)
        let registry = PartitionRegistry(blockingMemory: memory)
        var subpartitions: [PartitionID: BlockingSubpartition] = [:]
        for (subtask, attempt) in [(0, 0), (1, 0), (1, 1)] {
            let id = PartitionID(job: "job", result: 0, producerSubtask: subtask, producerAttempt: attempt)
            let subpartition = BlockingSubpartition(memory: memory, name: "\(subtask)-\(attempt)")
            for _ in 0..<2 { await subpartition.write([UInt8](repeating: 7, count: 30)) }
            try await subpartition.finish()
            subpartitions[id] = subpartition
            await registry.register(id, .blocking([subpartition]))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).count == 3)
        await registry.release(job: "job", results: [0], producerSubtask: 1, producerAttempt: 0)
        #expect(await registry.count == 2)
        #expect(await registry.lookup(PartitionID(job: "job", result: 0, producerSubtask: 1, producerAttempt: 0)) == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).count == 2)
        let kept = try #require(subpartitions[PartitionID(job: "job", result: 0, producerSubtask: 1, producerAttempt: 1)])
        #expect(try await kept.completeBatches().count == 2)
        await registry.release(job: "job")
        #expect(await registry.count == 0 && memory.usedBytes == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
    }

    @Test("a task executor's spill folder is emptied when it starts: files a killed process left go")
    func leftoversRemoved() throws {
        let directory = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: directory + "/1-old.spill", contents: Data([1, 2, 3]))
        _ = try BlockingResultMemory(budgetBytes: 10, directory: directory)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
        let mode = try FileManager.default.attributesOfItem(atPath: directory)[.posixPermissions] as? Int
        #expect(mode == 0o700, "spilled records are private to the task executor's user")
    }
}
