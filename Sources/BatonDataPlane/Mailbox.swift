import Synchronization

/// A bounded first-in-first-out queue between tasks: `put` waits while it is full, `take` waits
/// while it is empty. Finishing it (or failing it) ends `take` once what is queued is taken.
/// Both waits end when the waiting task is cancelled (`take` then throws `CancellationError`,
/// `put` returns false).
///
/// This is where backpressure lives: a producer that gets ahead of its consumer waits in `put`.
public final class Mailbox<Element: Sendable>: Sendable {
    public let capacity: Int

    private struct State {
        var items: [Element] = []
        var head = 0
        var finished = false
        var failure: (any Error)?
        var takers: [UInt64: CheckedContinuation<Element?, any Error>] = [:]
        var takerOrder: [UInt64] = []
        var putters: [UInt64: CheckedContinuation<Bool, Never>] = [:]
        var putterOrder: [UInt64] = []
        var nextID: UInt64 = 0

        var count: Int { items.count - head }

        mutating func dequeue() -> Element? {
            guard head < items.count else { return nil }
            let element = items[head]
            head += 1
            if head > 64 && head * 2 > items.count {
                items.removeFirst(head)
                head = 0
            }
            return element
        }

        mutating func nextTaker() -> CheckedContinuation<Element?, any Error>? {
            while let id = takerOrder.first {
                takerOrder.removeFirst()
                if let taker = takers.removeValue(forKey: id) { return taker }
            }
            return nil
        }

        mutating func nextPutter() -> CheckedContinuation<Bool, Never>? {
            while let id = putterOrder.first {
                putterOrder.removeFirst()
                if let putter = putters.removeValue(forKey: id) { return putter }
            }
            return nil
        }
    }

    private let state = Mutex(State())

    private enum PutStep { case done(Bool), wait }
    private enum TakeStep { case element(Element), end, failed(any Error), cancelled, timedOut, wait }

    public init(capacity: Int) {
        precondition(capacity >= 1)
        self.capacity = capacity
    }

    public var count: Int { state.withLock { $0.count } }

    /// Adds `element`, waiting while the mailbox is full. Returns false when it is finished (or
    /// the waiting task was cancelled): the element was not added.
    @discardableResult
    public func put(_ element: Element) async -> Bool {
        while true {
            let step = state.withLock { state -> PutStep in
                if state.finished { return .done(false) }
                if let taker = state.nextTaker() {
                    taker.resume(returning: element)
                    return .done(true)
                }
                if state.count < capacity {
                    state.items.append(element)
                    return .done(true)
                }
                return .wait
            }
            if case .done(let added) = step { return added }
            let id = state.withLock { state -> UInt64 in
                state.nextID += 1
                return state.nextID
            }
            let proceed = await withTaskCancellationHandler {
                await withCheckedContinuation { (waiter: CheckedContinuation<Bool, Never>) in
                    let resumeNow = state.withLock { state -> Bool in
                        if state.finished || state.count < capacity || Task.isCancelled { return true }
                        state.putters[id] = waiter
                        state.putterOrder.append(id)
                        return false
                    }
                    if resumeNow { waiter.resume(returning: true) }
                }
            } onCancel: {
                state.withLock { $0.putters.removeValue(forKey: id) }?.resume(returning: false)
            }
            if !proceed || Task.isCancelled { return false }
        }
    }

    /// The next element, waiting while empty; nil once finished and drained.
    public func take() async throws -> Element? {
        let step = state.withLock { state -> TakeStep in
            if let element = state.dequeue() {
                state.nextPutter()?.resume(returning: true)
                return .element(element)
            }
            if let failure = state.failure { return .failed(failure) }
            return state.finished ? .end : .wait
        }
        switch step {
        case .element(let element): return element
        case .end: return nil
        case .failed(let error): throw error
        case .cancelled: throw CancellationError()
        case .timedOut, .wait: break
        }
        return try await wait(as: newTakerID())
    }

    private func newTakerID() -> UInt64 {
        state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
    }

    /// Waits, as taker `id`, for the next element (nil once finished and drained); past
    /// `deadline` it throws `TimedOut` instead of starting to wait.
    private func wait(as id: UInt64, deadline: ContinuousClock.Instant? = nil) async throws -> Element? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Element?, any Error>) in
                let now = state.withLock { state -> TakeStep in
                    if let element = state.dequeue() {
                        state.nextPutter()?.resume(returning: true)
                        return .element(element)
                    }
                    if let failure = state.failure { return .failed(failure) }
                    if state.finished { return .end }
                    if Task.isCancelled { return .cancelled }
                    if let deadline, ContinuousClock.now >= deadline { return .timedOut }
                    state.takers[id] = waiter
                    state.takerOrder.append(id)
                    return .wait
                }
                switch now {
                case .element(let element): waiter.resume(returning: element)
                case .end: waiter.resume(returning: nil)
                case .failed(let error): waiter.resume(throwing: error)
                case .cancelled: waiter.resume(throwing: CancellationError())
                case .timedOut: waiter.resume(throwing: TimedOut())
                case .wait: break
                }
            }
        } onCancel: {
            state.withLock { $0.takers.removeValue(forKey: id) }?.resume(throwing: CancellationError())
        }
    }

    /// What a wait with a deadline found.
    public enum Timed: Sendable {
        case element(Element)
        /// Finished and drained.
        case end
        case timedOut
    }

    private struct TimedOut: Error {}

    /// The next element, waiting at most until `deadline` (a throttled source waits for its next
    /// batch's time this way, acting on control messages at once).
    public func take(until deadline: ContinuousClock.Instant) async throws -> Timed {
        if let element = poll() { return .element(element) }
        guard deadline > .now else { return .timedOut }
        let id = newTakerID()
        // A taker not yet waiting when this fires sees the deadline passed and does not wait.
        let timer = Task { [self] in
            guard (try? await Task.sleep(until: deadline, clock: .continuous)) != nil else { return }
            state.withLock { $0.takers.removeValue(forKey: id) }?.resume(throwing: TimedOut())
        }
        defer { timer.cancel() }
        do {
            return try await wait(as: id, deadline: deadline).map { .element($0) } ?? .end
        } catch is TimedOut {
            return .timedOut
        }
    }

    /// The next element if one is queued now.
    public func poll() -> Element? {
        state.withLock { state in
            let element = state.dequeue()
            if element != nil { state.nextPutter()?.resume(returning: true) }
            return element
        }
    }

    /// Adds `element` at the back even past the capacity, never waiting (a control message that
    /// must not block its sender). Returns false when the mailbox is finished.
    @discardableResult
    public func force(_ element: Element) -> Bool {
        state.withLock { state in
            if state.finished { return false }
            if let taker = state.nextTaker() {
                taker.resume(returning: element)
            } else {
                state.items.append(element)
            }
            return true
        }
    }

    /// Puts `element` back at the front (it could not be delivered), even past the capacity.
    public func putBack(_ element: Element) {
        state.withLock { state in
            if let taker = state.nextTaker() {
                taker.resume(returning: element)
            } else if state.head > 0 {
                state.head -= 1
                state.items[state.head] = element
            } else {
                state.items.insert(element, at: 0)
            }
        }
    }

    /// No more elements will be put.
    public func finish() { close(failure: nil) }

    /// Ends the mailbox with an error: takers get it after what is queued.
    public func fail(_ error: any Error) { close(failure: error) }

    private func close(failure: (any Error)?) {
        let (takers, putters) = state.withLock { state -> ([CheckedContinuation<Element?, any Error>], [CheckedContinuation<Bool, Never>]) in
            if let failure, state.failure == nil { state.failure = failure }
            state.finished = true
            defer {
                state.takers.removeAll()
                state.takerOrder.removeAll()
                state.putters.removeAll()
                state.putterOrder.removeAll()
            }
            return (Array(state.takers.values), Array(state.putters.values))
        }
        for taker in takers {
            if let failure { taker.resume(throwing: failure) } else { taker.resume(returning: nil) }
        }
        for putter in putters { putter.resume(returning: false) }
    }
}
