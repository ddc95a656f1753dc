import BatonCheckpointing
import BatonCore
import BatonElection
import BatonHAStore
import BatonJobGraph
import BatonJobManager
import BatonStoreRecords
import Dispatch
import Synchronization

/// The `store-values` target: a `StoreImage` is written into an in-memory HA store with the
/// store's own writer, then read back by every reader of stored values: the leadership record
/// and the term journal (election, status), the jobs as a new leader loads them (job records,
/// each job's snapshot and change records rebuilt into its ExecutionGraph, its checkpoint counter
/// and retained checkpoints), each job's checkpoint history and change records (audit), the
/// reconciliation journal and the job history (status).
///
/// A job a new leader would fail instead of loading (its record does not decode, its records do
/// not rebuild it) rejects the image with the reason the leader gives; so does any reader's
/// error. Change records of a job with no record are rebuilt into the sample job's graph.
enum StoreValuesTarget {
    static func read(_ bytes: [UInt8]) throws {
        let image = try StoreImage(decoding: bytes)
        try ImageStore.shared.read(image) { reader in try readEverything(reader, jobs: image.jobIDs) }
    }

    private static func readEverything(_ reader: StoreReader, jobs ids: [JobID]) throws {
        _ = try reader.leadershipRecord()
        _ = try reader.terms()
        _ = try reader.values(ReconciliationRecord.self, .reconciliations)
        _ = try JobSummary.latestRuns(reader)
        let (jobs, undecodable) = try JobManager.RecoveredJob.load(reader)
        if let id = undecodable.keys.min() {
            throw FuzzTargetError("a new leader fails job \(id): its record does not decode: \(undecodable[id]!)")
        }
        if let job = jobs.first(where: { $0.unreadable != nil }) {
            throw FuzzTargetError("a new leader fails job \(job.record.graph.id): \(job.unreadable!)")
        }
        let loaded = Set(jobs.map(\.record.graph.id))
        for id in ids {
            _ = try CheckpointRecords.read(reader, job: id)
            _ = try CheckpointRecords.readHistory(reader, job: id)
            let stored = try StoredChanges.read(of: id, in: reader)
            if !loaded.contains(id) {
                do {
                    _ = try stored.rebuild(SampleJob.graph)
                } catch {
                    throw FuzzTargetError("the change records of job \(id) do not rebuild the sample job's graph: \(error)")
                }
            }
        }
    }
}

/// The in-memory store images are read through: one per process, one image at a time.
final class ImageStore: Sendable {
    static let shared = ImageStore()

    private let store: HAStore
    /// Held from writing an image to the end of reading it back.
    private let turn = Mutex(())

    private init() {
        do {
            store = try HAStore.open(
                remote: "memory:baton-fuzz", backendName: "memory", access: .readWrite,
                options: StoreOptions(checkIntegrityOnOpen: false), now: WallTime(millisecondsSince1970: 0),
                makeBackend: { MemoryHAStoreBackend(path: "memory:baton-fuzz") })
        } catch {
            preconditionFailure("an in-memory store does not open: \(error)")
        }
    }

    /// Replaces the store's entries (all but its format entries) with `image`'s, then runs
    /// `body` in one read transaction.
    func read<T: Sendable>(_ image: StoreImage, _ body: @escaping @Sendable (StoreReader) throws -> T) throws -> T {
        try turn.withLock { _ in
            try write { writer in
                for namespace in StoreNamespace.allCases where namespace != .meta {
                    for entry in try writer.reader.entries(namespace) { try writer.delete(namespace, entry.key) }
                }
                for entry in image.entries { try writer.put(entry.namespace, entry.key, bytes: entry.value) }
            }
            return try store.readBlocking(body)
        }
    }

    /// Runs one write transaction of the store from a synchronous caller (the fuzzer's thread, a
    /// test's): the task runs on the store's own thread, so no thread of the caller's pool is
    /// needed while the caller waits.
    func write(_ body: @escaping @Sendable (StoreWriter) throws -> Void) throws {
        let outcome = Mutex<Result<Void, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let store = self.store
        Task(executorPreference: store.executor) {
            let result: Result<Void, any Error>
            do {
                result = .success(try await store.unfencedWrite(body))
            } catch {
                result = .failure(error)
            }
            outcome.withLock { $0 = result }
            done.signal()
        }
        done.wait()
        try outcome.withLock { $0! }.get()
    }
}
