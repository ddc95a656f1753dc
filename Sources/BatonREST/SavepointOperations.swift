/// Savepoints triggered over REST, by trigger id: Flink's asynchronous operations
/// (`POST /jobs/{jid}/savepoints` answers a `request-id` at once; `GET
/// /jobs/{jid}/savepoints/{triggerid}` tells how it went). Held by the master that accepted the
/// request, like Flink's dispatcher cache: the latest `capacity` are kept.
actor SavepointOperations {
    enum Outcome: Sendable, Hashable {
        case inProgress
        case completed(location: String)
        case failed(String)
    }

    struct Operation: Sendable {
        var job: String
        var outcome: Outcome
    }

    let capacity: Int
    private var operations: [String: Operation] = [:]
    private var order: [String] = []

    init(capacity: Int = 100) { self.capacity = capacity }

    /// A new operation for `job`, in progress, with its trigger id.
    func start(job: String, id: String) {
        operations[id] = Operation(job: job, outcome: .inProgress)
        order.append(id)
        while order.count > capacity { operations[order.removeFirst()] = nil }
    }

    func finish(_ id: String, _ outcome: Outcome) {
        operations[id]?.outcome = outcome
    }

    /// The operation `id` of `job`, if this master holds it.
    func operation(_ id: String, job: String) -> Outcome? {
        guard let operation = operations[id], operation.job == job else { return nil }
        return operation.outcome
    }
}
