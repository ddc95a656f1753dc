import Synchronization

/// An unbounded queue posted to from anywhere and taken by one task all that arrived at once:
/// the leader loop takes a burst of task reports together (and commits them in one
/// transaction); a connection's outbox sends a run of messages in one write.
public final class BatchQueue<Element: Sendable>: Sendable {
    private let state = Mutex<(items: [Element], finished: Bool)>(([], false))
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    // The loop's one iterator over the wake-ups (only `takeAll` touches it, from one task).
    private nonisolated(unsafe) var iterator: AsyncStream<Void>.AsyncIterator

    public init() {
        (wakeups, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        iterator = wakeups.makeAsyncIterator()
    }

    /// Queues `element`; false once the queue is finished (it is not queued).
    @discardableResult
    public func post(_ element: Element) -> Bool {
        let queued = state.withLock { state in
            guard !state.finished else { return false }
            state.items.append(element)
            return true
        }
        if queued { wake.yield() }
        return queued
    }

    /// No more inputs: `takeAll` hands out what is queued, then nil.
    public func finish() {
        state.withLock { $0.finished = true }
        wake.finish()
    }

    /// Everything queued since the last call, waiting until there is something; nil once the
    /// queue is finished and empty.
    public func takeAll() async -> [Element]? {
        while true {
            let (items, finished) = state.withLock { state in
                defer { state.items.removeAll() }
                return (state.items, state.finished)
            }
            if !items.isEmpty { return items }
            if finished { return nil }
            guard await iterator.next() != nil else {
                // Finished meanwhile: hand out what came before.
                let rest = state.withLock { state in
                    defer { state.items.removeAll() }
                    return state.items
                }
                return rest.isEmpty ? nil : rest
            }
        }
    }
}
