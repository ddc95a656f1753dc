/// A bounded first-in-first-out queue between tasks: `put` waits while it is full, `take` waits
/// while it is empty. Finishing it (or failing it) ends `take` once what is queued is taken.
///
/// This is where backpressure lives: a producer that gets ahead of its consumer waits in `put`.
public actor Mailbox<Element: Sendable> {
    public let capacity: Int
    private var items: [Element] = []
    private var head = 0
    private var finished = false
    private var failure: (any Error)?
    private var takers: [CheckedContinuation<Element?, any Error>] = []
    private var putters: [CheckedContinuation<Void, Never>] = []

    public init(capacity: Int) {
        precondition(capacity >= 1)
        self.capacity = capacity
    }

    public var count: Int { items.count - head }

    /// Adds `element`, waiting while the mailbox is full. Returns false when it is finished.
    @discardableResult
    public func put(_ element: Element) async -> Bool {
        while count >= capacity && !finished {
            await withCheckedContinuation { putters.append($0) }
        }
        guard !finished else { return false }
        if !takers.isEmpty {
            takers.removeFirst().resume(returning: element)
        } else {
            items.append(element)
        }
        return true
    }

    /// The next element, waiting while empty; nil once finished and drained.
    public func take() async throws -> Element? {
        if let element = takeNow() { return element }
        if let failure { throw failure }
        if finished { return nil }
        return try await withCheckedThrowingContinuation { takers.append($0) }
    }

    /// The next element if one is queued now.
    public func poll() -> Element? { takeNow() }

    private func takeNow() -> Element? {
        guard head < items.count else { return nil }
        let element = items[head]
        head += 1
        if head > 64 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        if !putters.isEmpty { putters.removeFirst().resume() }
        return element
    }

    /// No more elements will be put.
    public func finish() {
        finished = true
        for taker in takers { taker.resume(returning: nil) }
        takers.removeAll()
        for putter in putters { putter.resume() }
        putters.removeAll()
    }

    /// Ends the mailbox with an error: takers get it after what is queued.
    public func fail(_ error: any Error) {
        if failure == nil { failure = error }
        finished = true
        for taker in takers { taker.resume(throwing: error) }
        takers.removeAll()
        for putter in putters { putter.resume() }
        putters.removeAll()
    }
}
