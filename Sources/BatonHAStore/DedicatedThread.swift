import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One operating-system thread that runs submitted work items in order, and that can serve as
/// the executor of an actor or as a task executor preference.
///
/// The HA store runs every backend call on its own dedicated thread: a SQLite connection is then
/// used by one thread only, LMDB's write lock is always taken and released by the same thread (it
/// belongs to the thread that took it), and blocking fsyncs never occupy Swift's cooperative pool.
/// A component that mostly talks to the store (the master's election loop, a benchmark) runs on
/// this thread too (`unownedExecutor`, `withTaskExecutorPreference`), so that its store calls run
/// inline instead of paying two thread wake-ups each.
public final class DedicatedThread: SerialExecutor, TaskExecutor, @unchecked Sendable {
    // @unchecked: `queue` and `running` are guarded by `condition`; `threadID` is written once by
    // the thread before `init` returns (ordered by the semaphore) and only read afterwards.
    private let condition = NSCondition()
    private var queue: [@Sendable () -> Void] = []
    private var running = true
    private nonisolated(unsafe) var threadID = pthread_t()

    public init(name: String) {
        let started = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            self.threadID = pthread_self()
            started.signal()
            self.loop()
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
        started.wait()
    }

    private func loop() {
        while true {
            condition.lock()
            while queue.isEmpty && running { condition.wait() }
            if queue.isEmpty && !running {
                condition.unlock()
                return
            }
            let work = queue.removeFirst()
            condition.unlock()
            work()
        }
    }

    /// Whether the caller is this thread.
    public var isCurrent: Bool { pthread_equal(pthread_self(), threadID) != 0 }

    @discardableResult
    private func submit(_ work: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard running else { return false }
        queue.append(work)
        condition.signal()
        return true
    }

    /// Runs `body` on the thread and returns its result to the awaiting task; inline when the
    /// caller already runs on the thread.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        if isCurrent { return try body() }
        return try await withCheckedThrowingContinuation { continuation in
            let accepted = submit { continuation.resume(with: Result { try body() }) }
            if !accepted { continuation.resume(throwing: CancellationError()) }
        }
    }

    /// Runs `body` on the thread, blocking the caller until it is done (inline when called on the thread).
    public func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        if isCurrent { return try body() }
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox<T>()
        let accepted = submit {
            box.result = Result { try body() }
            done.signal()
        }
        if !accepted { throw CancellationError() }
        done.wait()
        return try box.result!.get()
    }

    /// Lets queued work finish, then ends the thread. Work submitted later is refused.
    public func shutdown() {
        condition.lock()
        running = false
        condition.signal()
        condition.unlock()
    }

    // MARK: executor

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let accepted = submit { [self] in
            job.runSynchronously(isolatedTo: asUnownedSerialExecutor(), taskExecutor: asUnownedTaskExecutor())
        }
        precondition(accepted, "a job was enqueued on a dedicated thread after its shutdown")
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }

    public func checkIsolated() {
        precondition(isCurrent, "expected to run on dedicated thread")
    }
}

private final class ResultBox<T>: @unchecked Sendable {
    // @unchecked: written by the dedicated thread before the semaphore signal, read after the wait.
    var result: Result<T, any Error>?
}
