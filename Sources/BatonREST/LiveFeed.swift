import Foundation

/// The server-sent events of `GET /v1/events`: one snapshot of the cluster (as JSON) whenever it
/// changes. One poller per master, running only while someone listens, so any number of
/// dashboards cost the leader one status request per period.
actor LiveFeed {
    let period: Duration
    private let snapshot: @Sendable () async -> String
    private var subscribers: [UInt64: AsyncStream<String>.Continuation] = [:]
    private var nextSubscriber: UInt64 = 0
    private var latest: String?
    private var poller: Task<Void, Never>?

    init(period: Duration = .milliseconds(500), snapshot: @escaping @Sendable () async -> String) {
        self.period = period
        self.snapshot = snapshot
    }

    /// Every snapshot from now on, the latest one first.
    func subscribe() -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(4))
        let id = nextSubscriber
        nextSubscriber += 1
        subscribers[id] = continuation
        continuation.onTermination = { _ in Task { await self.unsubscribe(id) } }
        if let latest { continuation.yield(latest) }
        if poller == nil { poller = Task { await self.poll() } }
        return stream
    }

    private func unsubscribe(_ id: UInt64) {
        subscribers[id] = nil
        if subscribers.isEmpty {
            poller?.cancel()
            poller = nil
            latest = nil
        }
    }

    private func poll() async {
        while !Task.isCancelled {
            let next = await snapshot()
            if next != latest {
                latest = next
                for continuation in subscribers.values { continuation.yield(next) }
            }
            try? await Task.sleep(for: period)
        }
    }
}
