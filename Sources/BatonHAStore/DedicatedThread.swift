import Foundation

/// One operating-system thread that runs submitted work items in order.
///
/// The HA store runs every backend call on its own dedicated thread: a SQLite connection is then
/// used by one thread only, LMDB's write lock is always taken and released by the same thread (it
/// belongs to the thread that took it), and blocking fsyncs never occupy Swift's cooperative pool.
public final class DedicatedThread: @unchecked Sendable {
    // @unchecked: `queue` and `running` are guarded by `condition`.
    private let condition = NSCondition()
    private var queue: [@Sendable () -> Void] = []
    private var running = true
    private var threadIdentity: ObjectIdentifier?

    public init(name: String) {
        let thread = Thread { [self] in self.loop() }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    private func loop() {
        condition.lock()
        threadIdentity = ObjectIdentifier(Thread.current)
        condition.unlock()
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
    public var isCurrent: Bool {
        condition.lock()
        defer { condition.unlock() }
        return threadIdentity == ObjectIdentifier(Thread.current)
    }

    private func submit(_ work: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard running else { return false }
        queue.append(work)
        condition.signal()
        return true
    }

    /// Runs `body` on the thread and returns its result to the awaiting task.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = submit { continuation.resume(with: Result { try body() }) }
            if !accepted { continuation.resume(throwing: CancellationError()) }
        }
    }

    /// Runs `body` on the thread, blocking the caller until it is done. Never call it from the thread.
    public func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        precondition(!isCurrent, "runBlocking called from its own thread")
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
}

private final class ResultBox<T>: @unchecked Sendable {
    // @unchecked: written by the dedicated thread before the semaphore signal, read after the wait.
    var result: Result<T, any Error>?
}
