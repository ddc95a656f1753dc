import BatonCore
import BatonDataPlane
import BatonJobGraph
import BatonOperators
import BatonRPC
import BatonTaskRuntime
import Foundation
import Logging
import Synchronization
import Testing

/// Two task executors' data planes in one process (separate registries, real data servers on
/// loopback), running real tasks.
struct TwoExecutors {
    let configuration = RPCConfiguration(secret: Array("data-plane-secret".utf8), heartbeatInterval: .milliseconds(200), heartbeatTimeout: .seconds(3))
    let logger = Logger(label: "test")

    /// Each task executor's budget for blocking results and the folder they spill to (`<spill>/<id>`); nil: all in memory.
    var blockingBudget: (bytes: Int, spill: String)?

    func dataPlane(_ id: ResourceID) -> DataPlane {
        let memory = blockingBudget.map { try! BlockingResultMemory(budgetBytes: $0.bytes, directory: "\($0.spill)/\(id)") }
        return DataPlane(
            taskExecutor: id, registry: PartitionRegistry(blockingMemory: memory), configuration: configuration, logger: logger, patience: .seconds(10))
    }

    /// Runs `body` with the two data planes serving on their ports.
    func run(_ body: @escaping @Sendable (DataPlane, Int, DataPlane, Int) async throws -> Void) async throws {
        let first = dataPlane("te1")
        let second = dataPlane("te2")
        let firstServer = try await RPCServer.bind(host: "127.0.0.1", port: 0, identity: RPCPeer(id: "te1", role: .taskExecutor), configuration: configuration, logger: logger)
        let secondServer = try await RPCServer.bind(host: "127.0.0.1", port: 0, identity: RPCPeer(id: "te2", role: .taskExecutor), configuration: configuration, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await first.serve(firstServer) }
            group.addTask { try await second.serve(secondServer) }
            try await body(first, firstServer.localPort, second, secondServer.localPort)
            firstServer.close()
            secondServer.close()
            group.cancelAll()
        }
    }
}

final class Events: Sendable {
    let list = Mutex<[String: [TaskEvent]]>([:])
    func record(_ name: String) -> @Sendable (TaskEvent) async -> Void {
        { event in self.list.withLock { $0[name, default: []].append(event) } }
    }
    func of(_ name: String) -> [TaskEvent] { list.withLock { $0[name] ?? [] } }
}

@Suite("task runtime and data plane", .serialized)
struct TaskRuntimeTests {
    func producerSpec(job: JobID, subtask: Int, parallelism: Int, to: Int64, consumers: Int, blocking: Bool, pattern: DistributionPattern = .hash) -> TaskSpec {
        TaskSpec(
            attempt: .init(job: job, jobVertex: 0, subtask: subtask, attempt: 0), allocation: 1, vertexID: "source", parallelism: parallelism,
            maxParallelism: 128, operators: [.sequence(from: 0, to: to, keys: 7)], inputs: [],
            outputs: [OutputSpec(result: 0, blocking: blocking, pattern: pattern, key: pattern == .hash ? "key" : nil, consumerParallelism: consumers, consumerMaxParallelism: 128)])
    }

    func consumerSpec(job: JobID, subtask: Int, producers: [(Int, InputChannelSpec.Location?)], blocking: Bool, sink: String, extra: [OperatorSpec] = []) -> TaskSpec {
        let channels = producers.map { producer, location in
            InputChannelSpec(partition: PartitionID(job: job, result: 0, producerSubtask: producer, producerAttempt: 0), subpartition: subtask, location: location)
        }
        return TaskSpec(
            attempt: .init(job: job, jobVertex: 1, subtask: subtask, attempt: 0), allocation: 2, vertexID: "count", parallelism: 2,
            maxParallelism: 128, operators: extra + [.count(), .fileSink(sink, exactlyOnce: false)],
            inputs: [.init(result: 0, blocking: blocking, channels: channels)], outputs: [])
    }

    /// Counts per key in the sink's files (the last value per key).
    func finalCounts(_ directory: String) throws -> [String: Int64] {
        var counts: [String: Int64] = [:]
        for file in try FileManager.default.contentsOfDirectory(atPath: directory) where file.hasPrefix("part-") && !file.hasSuffix(".inprogress") {
            for line in try String(contentsOfFile: directory + "/" + file, encoding: .utf8).split(separator: "\n") {
                let parts = line.split(separator: ",")
                counts[String(parts[0])] = Int64(parts[1])!
            }
        }
        return counts
    }

    func expectedCounts(to: Int64, keys: Int64) -> [String: Int64] {
        var counts: [String: Int64] = [:]
        for n in 0..<to { counts["k\(n % keys)", default: 0] += 1 }
        return counts
    }

    @Test("a remote channel delivers every batch once, in order, while its producer sends runs of batches against credits granted in runs")
    func remoteBatchesInOrderUnderCredits() async throws {
        let batches = 300
        try await TwoExecutors().run { producerPlane, producerPort, consumerPlane, _ in
            let id = PartitionID(job: "credits", result: 0, producerSubtask: 0, producerAttempt: 0)
            // Room for every batch at once: the producer side is limited only by the consumer's credits.
            let subpartition = PipelinedSubpartition(capacity: batches + 1)
            await producerPlane.registry.register(id, .pipelined([subpartition]))
            for index in 0..<batches {
                await subpartition.write(ChannelEventCodec.encode(records: (0..<50).map { .keyed(key: "b\(index)", value: Int64($0)) }))
            }
            await subpartition.finish()
            // A gate of two slots: the consumer falls behind and the producer waits for credits.
            let gate = InputGate(
                channels: [InputChannelSpec(partition: id, subpartition: 0, location: .init(taskExecutor: "te1", host: "127.0.0.1", port: producerPort))],
                capacity: 2)
            let reader = Task { await gate.run(opener: consumerPlane) }
            var seen: [String] = []
            var records = 0
            while let event = try await gate.mailbox.take() {
                switch event {
                case .records(let batch):
                    records += batch.count
                    if seen.last != batch[0].key { seen.append(batch[0].key) }
                    try await Task.sleep(for: .microseconds(200))
                case .channelEnded: break
                default: Issue.record("unexpected \(event)")
                }
            }
            await reader.value
            #expect(records == batches * 50)
            #expect(seen == (0..<batches).map { "b\($0)" })
        }
    }

    @Test("a remote channel's credit window is its share of the gate's credits, between two and the per-channel maximum")
    func creditWindowIsAShareOfTheGate() {
        let plane = DataPlane(
            taskExecutor: "te1", registry: PartitionRegistry(), configuration: RPCConfiguration(secret: Array(repeating: 1, count: 32)),
            logger: Logger(label: "test"), maxCreditsPerChannel: 16, creditsPerGate: 32)
        #expect([1, 2, 3, 8, 16, 100].map { plane.initialCredit(channels: $0) } == [16, 16, 10, 4, 2, 2])
    }

    @Test("records flow through local and remote channels, hashed by key, with blocking and pipelined results", arguments: [true, false])
    func pipeline(_ blocking: Bool) async throws {
        try await runPipeline(blocking: blocking, executors: TwoExecutors())
    }

    @Test("blocking results past a task executor's memory budget spill to files and read back whole, in order, locally and remotely")
    func blockingResultsSpill() async throws {
        let spill = NSTemporaryDirectory() + "baton-spill-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: spill) }
        var executors = TwoExecutors()
        executors.blockingBudget = (bytes: 4096, spill: spill)
        let spilled = try await runPipeline(blocking: true, executors: executors) { planes in
            var files = 0
            for plane in planes {
                guard let memory = plane.registry.blockingMemory else { continue }
                #expect(memory.usedBytes <= 4096)
                files += try FileManager.default.contentsOfDirectory(atPath: memory.directory).count
                await plane.registry.release(job: "job")
                #expect(memory.usedBytes == 0, "released results give their memory back")
                #expect(try FileManager.default.contentsOfDirectory(atPath: memory.directory).isEmpty, "and their spill files go")
            }
            return files
        }
        #expect(spilled >= 2, "each producer's results went past 4 KiB: \(spilled) spill files")
    }

    /// Two sources and two keyed counts across two task executors; `inspect` sees the data planes
    /// once every task ended, before they stop.
    @discardableResult
    func runPipeline(
        blocking: Bool, executors: TwoExecutors, inspect: @escaping @Sendable ([DataPlane]) async throws -> Int = { _ in 0 }
    ) async throws -> Int {
        let sink = NSTemporaryDirectory() + "baton-runtime-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: sink) }
        let events = Events()
        let inspected = Mutex(0)
        try await executors.run { te1, port1, te2, port2 in
            let locations = [
                InputChannelSpec.Location(taskExecutor: "te1", host: "127.0.0.1", port: port1),
                InputChannelSpec.Location(taskExecutor: "te2", host: "127.0.0.1", port: port2),
            ]
            await withTaskGroup(of: Void.self) { group in
                // source[0] on te1, source[1] on te2; count[0] on te1, count[1] on te2.
                for subtask in 0..<2 {
                    let plane = subtask == 0 ? te1 : te2
                    group.addTask {
                        await TaskRunner.run(self.producerSpec(job: "job", subtask: subtask, parallelism: 2, to: 10_000, consumers: 2, blocking: blocking), dataPlane: plane, report: events.record("source\(subtask)"))
                    }
                    group.addTask {
                        await TaskRunner.run(
                            self.consumerSpec(job: "job", subtask: subtask, producers: [(0, locations[0]), (1, locations[1])], blocking: blocking, sink: sink),
                            dataPlane: plane, report: events.record("count\(subtask)"))
                    }
                }
            }
            let result = try await inspect([te1, te2])
            inspected.withLock { $0 = result }
        }
        for name in ["source0", "source1", "count0", "count1"] {
            #expect(events.of(name) == [.initializing, .running, .finished], "\(name): \(events.of(name))")
        }
        #expect(try finalCounts(sink) == expectedCounts(to: 10_000, keys: 7))
        return inspected.withLock { $0 }
    }

    @Test("a slow consumer makes its producer wait: nothing is lost and nothing piles up")
    func backpressure() async throws {
        let sink = NSTemporaryDirectory() + "baton-runtime-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: sink) }
        let events = Events()
        try await TwoExecutors().run { te1, port1, te2, _ in
            let location = InputChannelSpec.Location(taskExecutor: "te1", host: "127.0.0.1", port: port1)
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    await TaskRunner.run(self.producerSpec(job: "slow", subtask: 0, parallelism: 1, to: 1_200_000, consumers: 1, blocking: false, pattern: .forward), dataPlane: te1, report: events.record("source"))
                }
                group.addTask {
                    // 400,000 records per second: the 1,200,000 take about 3 s, and the pipeline's buffers (the
                    // subpartition's 8 batches, 16 credits in flight, the gate's 16: about 330,000 of these
                    // records) hold far fewer.
                    await TaskRunner.run(
                        TaskSpec(
                            attempt: .init(job: "slow", jobVertex: 1, subtask: 0, attempt: 0), allocation: 2, vertexID: "count", parallelism: 1, maxParallelism: 128,
                            operators: [OperatorSpec("throttle", ["rate": "400000"]), .count(), .fileSink(sink, exactlyOnce: false)],
                            inputs: [.init(result: 0, blocking: false, channels: [InputChannelSpec(partition: PartitionID(job: "slow", result: 0, producerSubtask: 0, producerAttempt: 0), subpartition: 0, location: location)])],
                            outputs: []),
                        dataPlane: te2, report: events.record("sink"))
                }
                // While it runs, the source may be at most the pipeline's buffers ahead of the sink.
                try? await Task.sleep(for: .milliseconds(800))
                #expect(events.of("source").last == .running, "the source must still be running: it waits for the slow sink")
            }
        }
        #expect(events.of("sink") == [.initializing, .running, .finished])
        #expect(try finalCounts(sink) == expectedCounts(to: 1_200_000, keys: 7))
    }

    @Test("a canceled task reports CANCELED and its consumers fail instead of waiting")
    func cancel() async throws {
        let events = Events()
        try await TwoExecutors().run { te1, port1, te2, _ in
            let location = InputChannelSpec.Location(taskExecutor: "te1", host: "127.0.0.1", port: port1)
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    await TaskRunner.run(
                        TaskSpec(attempt: .init(job: "endless", jobVertex: 0, subtask: 0, attempt: 0), allocation: 1, vertexID: "source", parallelism: 1, maxParallelism: 128,
                                 operators: [.sequence(keys: 3)], inputs: [],
                                 outputs: [OutputSpec(result: 0, blocking: false, pattern: .forward, key: nil, consumerParallelism: 1, consumerMaxParallelism: 128)]),
                        dataPlane: te1, report: events.record("source"))
                }
                group.addTask {
                    await TaskRunner.run(
                        TaskSpec(attempt: .init(job: "endless", jobVertex: 1, subtask: 0, attempt: 0), allocation: 2, vertexID: "sink", parallelism: 1, maxParallelism: 128,
                                 operators: [.discard()],
                                 inputs: [.init(result: 0, blocking: false, channels: [InputChannelSpec(partition: PartitionID(job: "endless", result: 0, producerSubtask: 0, producerAttempt: 0), subpartition: 0, location: location)])],
                                 outputs: []),
                        dataPlane: te2, report: events.record("sink"))
                }
                try? await Task.sleep(for: .milliseconds(500))
                group.cancelAll()
            }
        }
        #expect(events.of("source").last == .canceled)
        #expect(events.of("sink").last == .canceled || { if case .failed = events.of("sink").last { true } else { false } }())
    }

    @Test("records survive the batch codec; damaged batches are errors")
    func codec() throws {
        let records: [Record] = [.line("hello world"), .keyed(key: "k", value: -42), .keyed(key: "", value: Int64.max), .line("")]
        #expect(try RecordBatchCodec.decode(RecordBatchCodec.encode(records)) == records)
        let bytes = RecordBatchCodec.encode(records)
        for length in 0..<bytes.count { #expect(throws: (any Error).self) { try RecordBatchCodec.decode(Array(bytes.prefix(length))) } }
        #expect(KeyGroups.subtask(for: "k3", maxParallelism: 128, parallelism: 4) == KeyGroups.subtask(for: "k3", maxParallelism: 128, parallelism: 4))
        let spread = Set((0..<100).map { KeyGroups.subtask(for: "key\($0)", maxParallelism: 128, parallelism: 4) })
        #expect(spread == [0, 1, 2, 3])
    }
}
