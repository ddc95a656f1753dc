import BatonCheckpointing
import BatonCore
import BatonDataPlane
import BatonJobGraph
import BatonOperators
import BatonTaskRuntime
import Foundation
import Synchronization
import Testing

/// Every (key, count) line in a sink folder's committed files.
func committedSteps(_ directory: String) throws -> [String: [Int64]] {
    var steps: [String: [Int64]] = [:]
    for file in try FileManager.default.contentsOfDirectory(atPath: directory) where file.hasPrefix("part-") {
        for line in try String(contentsOfFile: directory + "/" + file, encoding: .utf8).split(separator: "\n") {
            let parts = line.split(separator: ",")
            steps[String(parts[0]), default: []].append(Int64(parts[1])!)
        }
    }
    return steps
}

/// Waits until `condition` holds, at most `timeout`.
func eventually(_ timeout: Duration = .seconds(20), _ condition: () throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try condition()
}

@Suite("checkpoints in the task runtime", .serialized)
struct CheckpointRuntimeTests {
    let runtime = TaskRuntimeTests()

    func sourceSpec(subtask: Int, attempt: Int, to: Int64, rate: Int = 1_000, restore: TaskRestore?) -> TaskSpec {
        var operators = [OperatorSpec.sequence(from: 0, to: to, keys: 5)]
        operators[0].parameters["rate"] = "\(rate)"
        return TaskSpec(
            attempt: .init(job: "job", jobVertex: 0, subtask: subtask, attempt: attempt), allocation: 1, vertexID: "source", parallelism: 2,
            maxParallelism: 128, operators: operators, inputs: [],
            outputs: [OutputSpec(result: 0, blocking: false, pattern: .hash, key: "key", consumerParallelism: 2, consumerMaxParallelism: 128)],
            restore: restore)
    }

    func sinkSpec(subtask: Int, attempt: Int, locations: [InputChannelSpec.Location], sink: String, restore: TaskRestore?) -> TaskSpec {
        let channels = (0..<2).map { producer in
            InputChannelSpec(
                partition: PartitionID(job: "job", result: 0, producerSubtask: producer, producerAttempt: attempt), subpartition: subtask,
                location: locations[producer])
        }
        return TaskSpec(
            attempt: .init(job: "job", jobVertex: 1, subtask: subtask, attempt: attempt), allocation: 2, vertexID: "count", parallelism: 2,
            maxParallelism: 128, operators: [.count(), .fileSink(sink)], inputs: [.init(result: 0, blocking: false, channels: channels)],
            outputs: [], restore: restore)
    }

    static func acknowledged(_ events: [TaskEvent], _ id: CheckpointID) -> StateHandle? {
        for case .checkpointAcknowledged(id, let handle) in events { return handle }
        return nil
    }

    @Test("aligned checkpoints over local and remote channels; the sink commits on completion; a restore continues exactly once")
    func checkpointAndRestore() async throws {
        let root = NSTemporaryDirectory() + "baton-checkpoint-\(UInt32.random(in: 0...UInt32.max))"
        let sink = root + "/out"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let events = Events()
        let names = ["source0", "source1", "count0", "count1"]
        // At 1,000 records per second the first run cannot finish before it is canceled, however
        // slow a busy machine makes the steps before; the second run goes faster.
        let total: Int64 = 100_000
        try await TwoExecutors().run { te1, port1, te2, port2 in
            let locations = [
                InputChannelSpec.Location(taskExecutor: "te1", host: "127.0.0.1", port: port1),
                InputChannelSpec.Location(taskExecutor: "te2", host: "127.0.0.1", port: port2),
            ]
            let controls = Dictionary(uniqueKeysWithValues: names.map { ($0, Mailbox<TaskControl>(capacity: 8)) })
            // First run: take checkpoint 1, complete it, then fail every task (cancel).
            try await withThrowingTaskGroup(of: Void.self) { group in
                for subtask in 0..<2 {
                    let plane = subtask == 0 ? te1 : te2
                    group.addTask {
                        await TaskRunner.run(
                            self.sourceSpec(subtask: subtask, attempt: 0, to: total, restore: nil), dataPlane: plane,
                            control: controls["source\(subtask)"]!, report: events.record("source\(subtask)"))
                    }
                    group.addTask {
                        await TaskRunner.run(
                            self.sinkSpec(subtask: subtask, attempt: 0, locations: locations, sink: sink, restore: nil), dataPlane: plane,
                            control: controls["count\(subtask)"]!, report: events.record("count\(subtask)"))
                    }
                }
                #expect(try await eventually { names.allSatisfy { events.of($0).contains(.running) } })
                try await Task.sleep(for: .milliseconds(300))
                let trigger = CheckpointTrigger(id: 1, timestamp: WallTime(millisecondsSince1970: 0), directory: root + "/chk-1", isSavepoint: false)
                for source in ["source0", "source1"] { controls[source]!.force(.triggerCheckpoint(trigger)) }
                #expect(try await eventually { names.allSatisfy { Self.acknowledged(events.of($0), 1) != nil } })
                // Acknowledged but not complete: nothing is committed yet.
                #expect(try committedSteps(sink).isEmpty)
                for name in names { controls[name]!.force(.checkpointCompleted(1)) }
                #expect(try await eventually { try !committedSteps(sink).isEmpty })
                // A repeated notice changes nothing.
                for name in names { controls[name]!.force(.checkpointCompleted(1)) }
                try await Task.sleep(for: .milliseconds(300))
                group.cancelAll()
            }
            var restored: [String: StateHandle] = [:]
            for name in names {
                restored[name] = Self.acknowledged(events.of(name), 1)
                #expect(events.of(name).last == .canceled, "\(name): \(events.of(name))")
            }
            // Second run: attempt 1 of every task, restored from checkpoint 1, to the end (a state
            // the first run did not acknowledge fails here, not by crashing the test process).
            for name in names { _ = try #require(restored[name], "\(name) acknowledged no checkpoint 1") }
            let handles = restored
            await withTaskGroup(of: Void.self) { group in
                for subtask in 0..<2 {
                    let plane = subtask == 0 ? te1 : te2
                    group.addTask {
                        await TaskRunner.run(
                            self.sourceSpec(subtask: subtask, attempt: 1, to: total, rate: 200_000, restore: TaskRestore(checkpoint: 1, state: handles["source\(subtask)"]!)),
                            dataPlane: plane, report: events.record("again-source\(subtask)"))
                    }
                    group.addTask {
                        await TaskRunner.run(
                            self.sinkSpec(subtask: subtask, attempt: 1, locations: locations, sink: sink, restore: TaskRestore(checkpoint: 1, state: handles["count\(subtask)"]!)),
                            dataPlane: plane, report: events.record("again-count\(subtask)"))
                    }
                }
            }
        }
        for name in names { #expect(events.of("again-" + name).last == .finished, "\(name): \(events.of("again-" + name))") }
        // Every (key, count) step exactly once, no gap; nothing uncommitted is left.
        let steps = try committedSteps(sink)
        let expected = runtime.expectedCounts(to: total, keys: 5)
        #expect(Set(steps.keys) == Set(expected.keys))
        for (key, values) in steps { #expect(values.sorted() == Array(1...expected[key]!), "key \(key)") }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: sink).filter { !$0.hasPrefix("part-") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    @Test("a damaged state file fails the restore with the file named")
    func damagedState() async throws {
        let root = NSTemporaryDirectory() + "baton-checkpoint-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let path = root + "/source-0.state"
        try Data("BATONTS1 not really".utf8).write(to: URL(fileURLWithPath: path))
        let events = Events()
        try await TwoExecutors().run { te1, _, _, _ in
            await TaskRunner.run(
                self.sourceSpec(subtask: 0, attempt: 1, to: 10, restore: TaskRestore(checkpoint: 3, state: StateHandle(path: path, size: 19, checksum: 1))),
                dataPlane: te1, report: events.record("source"))
        }
        guard case .failed(let message) = events.of("source").last else {
            Issue.record("expected a failure: \(events.of("source"))")
            return
        }
        #expect(message.contains(path))
    }

    @Test("task state files round-trip however small the state is; a changed byte is refused")
    func stateFiles() throws {
        let root = NSTemporaryDirectory() + "baton-state-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        for parts in [[[UInt8]](), [[]], [[0]], [[1, 2, 3], [], Array(repeating: 9, count: 5000)]] {
            let handle = try TaskStateFile.write(parts, to: root + "/chk-1/task.state")
            #expect(try TaskStateFile.read(handle) == parts)
        }
        let handle = try TaskStateFile.write([[1, 2, 3]], to: root + "/chk-2/task.state")
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: handle.path)))
        bytes[bytes.count - 4] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: handle.path))
        #expect(throws: TaskStateError.self) { try TaskStateFile.read(handle) }
    }

    @Test("channel events survive their codec; damaged ones are errors")
    func channelEventCodec() throws {
        let events: [ChannelEvent] = [
            .records([.keyed(key: "a", value: 3), .line("x")]),
            .barrier(CheckpointTrigger(id: 9, timestamp: WallTime(millisecondsSince1970: 17), directory: "/cp/chk-9", isSavepoint: true)),
            .latencyMarker(emittedAt: MonotonicInstant(nanoseconds: 123)),
        ]
        for event in events {
            let bytes = ChannelEventCodec.encode(event)
            #expect(try ChannelEventCodec.decode(bytes) == event)
            for length in 0..<bytes.count { #expect(throws: (any Error).self) { try ChannelEventCodec.decode(Array(bytes.prefix(length))) } }
        }
        #expect(throws: (any Error).self) { try ChannelEventCodec.decode([7, 0]) }
    }
}

/// A rate-limited source waits between its batches; control must not wait with it.
@Suite("throttled sources")
struct ThrottledSourceTests {
    @Test("a source at one record per 10 s acts on a checkpoint trigger and on the end of its input at once, not at its next batch")
    func controlDuringTheWait() async throws {
        let root = NSTemporaryDirectory() + "baton-throttled-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        var operators = [OperatorSpec.sequence(from: 0, to: 1_000, keys: 5)]
        // One record per 10 s: acting at the next batch would take 9.7 s, far from the bounds
        // below, which leave a loaded machine (a synced state file, other tests) seconds to act.
        operators[0].parameters["rate"] = "0.1"
        let spec = TaskSpec(
            attempt: .init(job: "job", jobVertex: 0, subtask: 0, attempt: 0), allocation: 1, vertexID: "source", parallelism: 1,
            maxParallelism: 128, operators: operators, inputs: [], outputs: [], restore: nil)
        let events = Events()
        let control = Mailbox<TaskControl>(capacity: 8)
        let plane = TwoExecutors().dataPlane("te1")
        let task = Task { await TaskRunner.run(spec, dataPlane: plane, control: control, report: events.record("source")) }
        defer { task.cancel() }
        #expect(try await eventually { events.of("source").contains(.running) })
        // Well inside the wait for its second record.
        try await Task.sleep(for: .milliseconds(300))
        let triggered = ContinuousClock.now
        control.force(.triggerCheckpoint(CheckpointTrigger(id: 1, timestamp: WallTime(millisecondsSince1970: 0), directory: root + "/chk-1", isSavepoint: false)))
        #expect(try await eventually(.seconds(10)) { CheckpointRuntimeTests.acknowledged(events.of("source"), 1) != nil })
        let acknowledgedAfter = ContinuousClock.now - triggered
        // Generous against the 1 ms target; the next batch is 9.7 s away.
        #expect(acknowledgedAfter < .seconds(4), "the trigger waited \(acknowledgedAfter)")
        let ended = ContinuousClock.now
        control.force(.endInput)
        #expect(try await eventually(.seconds(10)) { events.of("source").last == .finished })
        let finishedAfter = ContinuousClock.now - ended
        #expect(finishedAfter < .seconds(4), "the end of input waited \(finishedAfter)")
        print("throttled source: trigger acknowledged after \(acknowledgedAfter), end of input finished after \(finishedAfter)")
    }

    @Test("a throttled source emits a couple of milliseconds' worth at a time")
    func smallBatches() {
        #expect(TaskRunner.throttledBatch(rate: 1_000) == 2)
        #expect(TaskRunner.throttledBatch(rate: 0.5) == 1)
        #expect(TaskRunner.throttledBatch(rate: 10_000_000) == TaskRunner.batchRecords)
    }
}
