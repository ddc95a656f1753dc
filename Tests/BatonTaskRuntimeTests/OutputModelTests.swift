import BatonAudit
import BatonCore
import BatonDataPlane
import BatonJobGraph
import BatonOperators
import BatonTaskRuntime
import Foundation
import Testing

/// The exact model of a job's committed output, judged against real runs of the task runtime
/// (sources that record their ranges, an exactly-once sink), clean and with injected faults.
@Suite("output model and its checker", .serialized)
struct OutputModelTests {
    let keys = 7

    /// sequence (2 subtasks) -hash-> count + exactly-once file sink (2 subtasks).
    func graph(to: Int64?, sink: String) throws -> JobGraph {
        var job = JobGraphBuilder(id: "job")
        job.addVertex("source", operators: [.sequence(from: 0, to: to, keys: keys)], parallelism: 2, maxParallelism: 128)
        job.addVertex("count", operators: [.count(), .fileSink(sink)], parallelism: 2, maxParallelism: 128)
        job.connect("source", to: "count", .hash, key: "key")
        return try job.build()
    }

    /// Runs the graph's four tasks on two data planes; with `stopAfter`, the sources are unbounded
    /// and their input is ended then (stop with drain). Returns the ranges folder.
    func run(to: Int64?, stopAfter: Duration?, sink: String, ranges: String) async throws {
        let controls = [Mailbox<TaskControl>(capacity: 4), Mailbox<TaskControl>(capacity: 4)]
        try await TwoExecutors().run { te1, port1, te2, port2 in
            let locations = [
                InputChannelSpec.Location(taskExecutor: "te1", host: "127.0.0.1", port: port1),
                InputChannelSpec.Location(taskExecutor: "te2", host: "127.0.0.1", port: port2),
            ]
            await withTaskGroup(of: Void.self) { group in
                for subtask in 0..<2 {
                    let plane = subtask == 0 ? te1 : te2
                    let source = TaskSpec(
                        attempt: .init(job: "job", jobVertex: 0, subtask: subtask, attempt: 0), allocation: 1, vertexID: "source", parallelism: 2,
                        maxParallelism: 128,
                        operators: [stopAfter == nil ? .sequence(from: 0, to: to, keys: keys) : OperatorSpec("sequence", ["keys": "\(keys)", "rate": "20000"])],
                        inputs: [],
                        outputs: [OutputSpec(result: 0, blocking: false, pattern: .hash, key: "key", consumerParallelism: 2, consumerMaxParallelism: 128)])
                    let channels = (0..<2).map { producer in
                        InputChannelSpec(
                            partition: PartitionID(job: "job", result: 0, producerSubtask: producer, producerAttempt: 0), subpartition: subtask,
                            location: locations[producer])
                    }
                    let count = TaskSpec(
                        attempt: .init(job: "job", jobVertex: 1, subtask: subtask, attempt: 0), allocation: 2, vertexID: "count", parallelism: 2,
                        maxParallelism: 128, operators: [.count(), .fileSink(sink)], inputs: [.init(result: 0, blocking: false, channels: channels)],
                        outputs: [])
                    group.addTask {
                        await TaskRunner.run(source, dataPlane: plane, control: controls[subtask], options: .init(sourceRangeDirectory: ranges)) { _ in }
                    }
                    group.addTask { await TaskRunner.run(count, dataPlane: plane) { _ in } }
                }
                if let stopAfter {
                    try? await Task.sleep(for: stopAfter)
                    for control in controls { control.force(.endInput) }
                }
            }
        }
    }

    func folder() -> String { NSTemporaryDirectory() + "baton-output-model-\(UInt32.random(in: 0...UInt32.max))" }

    @Test("a real run ended by stop with drain: the sources' ranges predict the committed output exactly, and the checker is silent")
    func cleanRunIsSilent() async throws {
        let directory = folder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (sink, ranges) = ("\(directory)/out", "\(directory)/sources")
        try await run(to: nil, stopAfter: .milliseconds(300), sink: sink, ranges: ranges)
        let recorded = try SourceRanges.read(ranges)
        #expect(recorded.count == 2 && recorded.allSatisfy { $0.ending == .inputEnded }, "\(recorded)")
        let result = try OutputAudit.check(graph: try graph(to: nil, sink: sink), sourceRanges: ranges)
        #expect(result.violations.isEmpty, "\(result.violations)")
        #expect(result.recordsCommitted > 0 && result.checks[0].expectedRecords == result.recordsCommitted)
    }

    @Test("faults injected into a real run's committed output fire: duplicate, missing, unexpected and no output")
    func injectedFaultsFire() async throws {
        let directory = folder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (sink, ranges) = ("\(directory)/out", "\(directory)/sources")
        try await run(to: 4_000, stopAfter: nil, sink: sink, ranges: ranges)
        let job = try graph(to: 4_000, sink: sink)
        func kinds() throws -> [String] { try OutputAudit.check(graph: job, sourceRanges: ranges).violations.map(\.kind) }
        #expect(try kinds() == [])
        let files = try FileManager.default.contentsOfDirectory(atPath: sink).filter { $0.hasPrefix("part-") }.sorted()
        let first = try #require(files.first)
        // A commit repeated (a second copy of a committed file): duplicates.
        try FileManager.default.copyItem(atPath: "\(sink)/\(first)", toPath: "\(sink)/part-9-copy")
        #expect(try kinds() == ["duplicate-output"])
        try FileManager.default.removeItem(atPath: "\(sink)/part-9-copy")
        // A lost commit: missing lines.
        try FileManager.default.moveItem(atPath: "\(sink)/\(first)", toPath: "\(directory)/held")
        #expect(try kinds() == ["missing-output"])
        try FileManager.default.moveItem(atPath: "\(directory)/held", toPath: "\(sink)/\(first)")
        // A line no run produces.
        try "k1,999999\n".write(toFile: "\(sink)/part-9-junk", atomically: true, encoding: .utf8)
        #expect(try kinds() == ["unexpected-output"])
        try FileManager.default.removeItem(atPath: "\(sink)/part-9-junk")
        // Nothing committed at all.
        for file in files { try FileManager.default.removeItem(atPath: "\(sink)/\(file)") }
        #expect(try kinds() == ["no-output", "missing-output"])
    }

    @Test("a job whose model expects no line passes with nothing committed: no-output needs expected output")
    func nothingExpectedNothingCommitted() async throws {
        let directory = folder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var job = JobGraphBuilder(id: "empty")
        job.addVertex("s", operators: [.sequence(from: 0, to: 10, keys: 2), .filter("value-odd"), .filter("value-even"), .fileSink("\(directory)/out")], parallelism: 1)
        #expect(try OutputAudit.check(graph: try job.build(), sourceRanges: "\(directory)/none").violations.isEmpty)
    }

    @Test("a source that records a later end than it emitted (records lost on the way) shows as missing output")
    func lostTailIsMissing() async throws {
        let directory = folder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (sink, ranges) = ("\(directory)/out", "\(directory)/sources")
        try await run(to: 2_000, stopAfter: nil, sink: sink, ranges: ranges)
        // The job as the checker knows it emitted 2,010 numbers: the last ones never arrived.
        #expect(try OutputAudit.check(graph: try graph(to: 2_010, sink: sink), sourceRanges: "\(directory)/none").violations.map(\.kind) == ["missing-output"])
    }

    @Test("the model follows map, filter, forward and broadcast edges, and counts per key")
    func modelSemantics() throws {
        var job = JobGraphBuilder(id: "m")
        job.addVertex("source", operators: [.sequence(from: 0, to: 10, keys: 2), .filter("value-even"), .map("increment")], parallelism: 1)
        job.addVertex("count", operators: [.count(), .fileSink("/a")], parallelism: 2)
        job.addVertex("copy", operators: [.fileSink("/b")], parallelism: 2)
        job.connect("source", to: "count", .hash, key: "key")
        job.connect("source", to: "copy", .broadcast)
        let model = try OutputModel(graph: try job.build(), sourceEnds: .init())
        // 0, 2, 4, 6, 8 are even (all key k0), incremented to 1, 3, 5, 7, 9.
        #expect(model.sinks.map(\.path) == ["/a", "/b"])
        #expect(model.sinks[0].expected == ["k0,1": 1, "k0,2": 1, "k0,3": 1, "k0,4": 1, "k0,5": 1])
        #expect(model.sinks[1].expected == ["k0,1": 2, "k0,3": 2, "k0,5": 2, "k0,7": 2, "k0,9": 2])
    }

    @Test("jobs whose output cannot be predicted exactly are refused with the reason")
    func refusals() throws {
        func refused(_ build: (inout JobGraphBuilder) -> Void) throws -> String {
            var job = JobGraphBuilder(id: "r")
            build(&job)
            let graph = try job.build()
            do {
                _ = try OutputModel(graph: graph, sourceEnds: .atStart(of: graph))
                return ""
            } catch {
                return error.description
            }
        }
        #expect(try refused { $0.addVertex("s", operators: [.textFile("/x"), .fileSink("/o")], parallelism: 1) }.contains("only sequence sources"))
        #expect(try refused { $0.addVertex("s", operators: [.sequence(), .tokenize(), .fileSink("/o")], parallelism: 1) }.contains("'tokenize'"))
        #expect(
            try refused { job in
                job.addVertex("s", operators: [.sequence()], parallelism: 2)
                job.addVertex("c", operators: [.count(), .fileSink("/o")], parallelism: 2)
                job.connect("s", to: "c", .rebalance)
            }.contains("rebalance"))
        // A running sum over a key fed by two producers depends on arrival order.
        var job = JobGraphBuilder(id: "sum")
        job.addVertex("s", operators: [.sequence(from: 0, to: 100, keys: 1)], parallelism: 2)
        job.addVertex("c", operators: [.sum(), .fileSink("/o")], parallelism: 1)
        job.connect("s", to: "c", .hash, key: "key")
        #expect(throws: OutputModelError.self) { _ = try OutputModel(graph: try job.build(), sourceEnds: .init()) }
        // Decided from the graph alone, before any record: a running sum behind a hash edge from
        // two producers is refused even when no record was emitted yet.
        #expect(throws: OutputModelError.self) { _ = try OutputModel(graph: try job.build(), sourceEnds: .atStart(of: try job.build())) }
        // A count first regroups the records per key: a running sum after it is predictable.
        var regrouped = JobGraphBuilder(id: "regrouped")
        regrouped.addVertex("s", operators: [.sequence(from: 0, to: 100, keys: 3)], parallelism: 2)
        regrouped.addVertex("c", operators: [.count(), .sum(), .fileSink("/o")], parallelism: 1)
        regrouped.connect("s", to: "c", .hash, key: "key")
        #expect(try OutputModel(graph: try regrouped.build(), sourceEnds: .init()).sinks[0].expected.values.reduce(0, +) == 100)
        // A sequence over no keys is refused, not a crash.
        var noKeys = JobGraphBuilder(id: "nokeys")
        noKeys.addVertex("s", operators: [OperatorSpec("sequence", ["to": "5", "keys": "0"]), .fileSink("/o")], parallelism: 1)
        #expect(throws: OutputModelError.self) { _ = try OutputModel(graph: try noKeys.build(), sourceEnds: .init()) }
        // An unbounded source with no recorded range has no end.
        var open = JobGraphBuilder(id: "open")
        open.addVertex("s", operators: [.sequence(), .fileSink("/o")], parallelism: 1)
        #expect(throws: OutputModelError.self) { _ = try OutputModel(graph: try open.build(), sourceEnds: .init()) }
    }

    @Test("source ranges round-trip, refuse a damaged file, and count records emitted twice by overlapping attempts")
    func sourceRanges() throws {
        let directory = folder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func state(_ next: Int64) -> [UInt8] {
            var writer = BinaryWriter(capacity: 9)
            writer.write(signed: next)
            return writer.bytes
        }
        // Subtask 0 of a parallelism-2 sequence: attempt 0 ran 0..<100, attempt 1 restored at 60 and ran to 200.
        let ranges = [
            SourceRange(vertex: "source", subtask: 0, attempt: 0, start: state(0), end: state(100), ending: .stopped),
            SourceRange(vertex: "source", subtask: 0, attempt: 1, start: state(60), end: state(200), ending: .inputEnded),
        ]
        for range in ranges { try SourceRanges.write(range, to: directory) }
        #expect(try SourceRanges.read(directory) == ranges)
        let graph = try graph(to: nil, sink: "/o")
        #expect(try SourceRanges.reemittedRecords(ranges, graph: graph) == 20)
        #expect(try SourceRanges.reemittedRecords([ranges[1]], graph: graph) == 0)
        let path = "\(directory)/source-0-1.range"
        var bytes = try #require(FileManager.default.contents(atPath: path))
        bytes[bytes.count - 12] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect(throws: SourceRangeError.self) { _ = try SourceRanges.read(directory) }
    }
}
