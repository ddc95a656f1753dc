import BatonCheckpointing
import BatonCore
import BatonElection
import BatonExecutionGraph
import BatonHAStore
import BatonJobGraph
import BatonJobManager
import BatonJobMaster
import BatonStoreRecords

/// The seeds of the `store-values` target: images of stores written by the election and the job
/// manager's store writes, through the store's own writer.
extension FuzzSeeds {
    /// A fresh in-memory store (not the one the target reads images through).
    static func freshStore() throws -> HAStore {
        try HAStore.open(
            remote: "memory:baton-fuzz-seeds", backendName: "memory", access: .readWrite, now: start,
            makeBackend: { MemoryHAStoreBackend(path: "memory:baton-fuzz-seeds") })
    }

    /// Everything `store` holds (but its format entries), as an image.
    static func image(of store: HAStore) async throws -> StoreImage {
        try await store.read { reader in
            var entries: [StoreImage.Entry] = []
            for namespace in StoreNamespace.allCases where namespace != .meta {
                for entry in try reader.entries(namespace) { entries.append(StoreImage.Entry(namespace, key: entry.key, value: entry.value)) }
            }
            return StoreImage(entries: entries)
        }
    }

    static func time(_ seconds: Int64) -> WallTime { WallTime(millisecondsSince1970: start.millisecondsSince1970 + seconds * 1000) }

    /// Two terms: m1 won the first, m2 took over after m1's lease lapsed.
    static func elect(_ store: HAStore) async throws {
        let m1 = LeaderIdentity(member: "m1", incarnation: Incarnation(rawValue: 11), address: "127.0.0.1:6123", pid: 4101)
        let m2 = LeaderIdentity(member: "m2", incarnation: Incarnation(rawValue: 12), address: "127.0.0.1:6124", pid: 4102)
        _ = try await store.campaign(as: m1, expecting: .vacant(epoch: .none), leaseMillis: 2000, now: time(0))
        _ = try await store.campaign(as: m2, expecting: .leaseLapsed(epoch: Epoch(1), renewals: 0), leaseMillis: 2000, now: time(10))
    }

    /// What a leader writes for the sample job: its record, change records (a subtask failed
    /// and restarted), a snapshot, checkpoints and their history, and its term's journal entry.
    static func runJob(_ store: HAStore) async throws {
        var graph = ExecutionGraph(jobGraph: SampleJob.graph)
        var changes: [ExecutionGraphChange] = []
        let te1 = TaskLocation(taskExecutor: "te1", allocation: 7)
        let te2 = TaskLocation(taskExecutor: "te2", allocation: 8)
        for vertex in graph.allVertices {
            let id = graph.attemptID(vertex)
            let location = vertex.subtask == 0 ? te1 : te2
            changes.append(try graph.transition(id, to: .scheduled))
            changes.append(try graph.transition(id, to: .deploying, location: location))
            changes.append(try graph.transition(id, to: .initializing))
            changes.append(try graph.transition(id, to: .running))
        }
        let failed = ExecutionVertexID(jobVertex: 1, subtask: 1)
        changes.append(try graph.transition(graph.attemptID(failed), to: .failed))
        changes.append(try graph.resetForNewAttempt(failed))
        changes.append(try graph.transition(graph.attemptID(failed), to: .scheduled))
        let snapshotAt = changes.count
        let snapshot = ExecutionGraphSnapshot(graph, log: ChangeLog(next: UInt64(snapshotAt)))
        changes.append(try graph.transition(graph.attemptID(failed), to: .deploying, location: te2))

        let record = JobRecord(graph: SampleJob.graph, state: .running, submittedAt: time(11), restarts: 1, failure: nil, run: 1)
        var writes: [JobManager.StoreWrite] = [.newRun(job), .job(record)]
        writes += changes.prefix(snapshotAt).enumerated().map { .change(job, sequence: UInt64($0.offset), $0.element) }
        writes.append(.snapshot(job, snapshot))
        writes += changes.dropFirst(snapshotAt).enumerated().map { .change(job, sequence: UInt64(snapshotAt + $0.offset), $0.element) }
        var first = sampleCheckpoint
        first.id = CheckpointID(rawValue: 1)
        writes += [
            .checkpointCounter(job, next: CheckpointID(rawValue: 3)),
            .checkpointCompleted(first, subsumed: [], committedAt: time(20)),
            .checkpointCompleted(sampleCheckpoint, subsumed: [first.id], committedAt: time(21)),
            .restore(job, checkpoint: sampleCheckpoint.id, attempt: graph.attemptID(failed), at: time(22)),
            .journal(
                ReconciliationRecord(
                    fromEpoch: Epoch(1), toEpoch: Epoch(2), leader: "m2", previousTermEndedAt: time(10), previousTermEnd: .leaseExpired,
                    electedAt: time(10), loadedAt: time(10), reconciledAt: time(11), reconcileMillis: 830, jobs: 1, adopted: 3, finished: 0,
                    restarted: 1, cancelled: 0, windowClosed: false,
                    checkpointsAtTakeover: [job.rawValue: .init(id: sampleCheckpoint.id, completedAt: sampleCheckpoint.completedAt)])),
        ]
        try await apply(writes, to: store)
    }

    /// A snapshot of the sample job with every subtask failed at the attempt before the largest
    /// there is, and a change record that restarts one subtask at the largest attempt: numbers
    /// at their longest on the wire, a byte off is past them. No job record, so that the image is
    /// small (the target rebuilds the records into the sample job's graph). Only 2^31 restarts
    /// would make such a graph, so its snapshot is written field by field in
    /// `ExecutionGraphCodec`'s format (2: per subtask its attempt, state, flags and task
    /// executor, none here).
    static func writeLastAttempts(_ store: HAStore) async throws {
        let graph = ExecutionGraph(jobGraph: SampleJob.graph)
        var executions = BinaryWriter()
        executions.write(UInt8(2))
        executions.write(UInt64(graph.vertexCount))
        executions.write(UInt64(0))
        for _ in 0..<graph.vertexCount {
            executions.write(UInt64(Int32.max - 1))
            executions.write(ExecutionState.failed.rawValue)
            executions.write(UInt8(0))
            executions.write(UInt64(0))
        }
        var snapshot = ExecutionGraphSnapshot(graph, log: ChangeLog(next: 0))
        snapshot.executions = executions.bytes
        try await apply([.snapshot(job, snapshot), .change(job, sequence: 0, .reset(ExecutionVertexID(jobVertex: 1, subtask: 0), .max))], to: store)
    }

    static func apply(_ writes: [JobManager.StoreWrite], to store: HAStore) async throws {
        for write in writes { try await store.unfencedWrite { try write.apply(to: $0, epoch: Epoch(2)) } }
    }

    static func storeSeeds() async throws -> [FuzzSeed] {
        var seeds: [FuzzSeed] = [FuzzSeed("valid-empty-store.bin", [])]
        let elected = try freshStore()
        try await elect(elected)
        seeds.append(FuzzSeed("valid-two-terms.bin", try await image(of: elected).encoded()))

        let running = try freshStore()
        try await elect(running)
        try await runJob(running)
        let runningImage = try await image(of: running)
        seeds.append(FuzzSeed("valid-running-job.bin", runningImage.encoded()))

        let ended = try freshStore()
        try await elect(ended)
        try await runJob(ended)
        try await apply(
            [
                .runEnded(
                    JobSummary(
                        id: job, run: 1, name: SampleJob.graph.name, state: .finished, submittedAt: time(11), endedAt: time(40), restarts: 1,
                        failure: nil, lastCheckpoint: .init(id: sampleCheckpoint.id, completedAt: sampleCheckpoint.completedAt)))
            ], to: ended)
        seeds.append(FuzzSeed("valid-ended-job.bin", try await image(of: ended).encoded()))

        let lastAttempts = try freshStore()
        try await writeLastAttempts(lastAttempts)
        seeds.append(FuzzSeed("valid-changes-at-the-largest-attempt.bin", try await image(of: lastAttempts).encoded()))

        func invalid(_ name: String, _ change: (inout [StoreImage.Entry]) -> Void) {
            var entries = runningImage.entries
            change(&entries)
            seeds.append(FuzzSeed("invalid-\(name).bin", StoreImage(entries: entries).encoded()))
        }
        invalid("job-record-not-json") { entries in
            for index in entries.indices where entries[index].namespace == .jobs { entries[index].value = Array("{\"graph\":".utf8) }
        }
        invalid("change-record-unknown-kind") { entries in
            entries.append(.init(.executionGraphs, key: JobKeys.change(job, 40), value: StoreKey.uint64(2) + [1, 9, 0, 0, 0]))
        }
        invalid("change-record-gap") { entries in
            entries.append(.init(.executionGraphs, key: JobKeys.change(job, 40), value: ChangeRecord.value(epoch: Epoch(2), .reset(ExecutionVertexID(jobVertex: 0, subtask: 0), 1))))
        }
        invalid("checkpoint-counter-short") { entries in
            entries.append(.init(.checkpoints, key: CheckpointRecords.counterKey(job), value: [0, 3]))
        }
        invalid("checkpoint-metadata-truncated") { entries in
            for index in entries.indices where entries[index].key == CheckpointRecords.checkpointKey(job, sampleCheckpoint.id) {
                entries[index].value.removeLast(2)
            }
        }
        invalid("leadership-record-not-json") { entries in
            for index in entries.indices where entries[index].namespace == .leadership { entries[index].value = Array("[]".utf8) }
        }
        seeds.append(FuzzSeed("invalid-truncated-image.bin", Array(runningImage.encoded().dropLast(1))))
        seeds.append(FuzzSeed("invalid-meta-namespace.bin", StoreImage(entries: [.init(.meta, key: Array("format".utf8), value: [])]).encoded()))
        return seeds
    }
}
