public import BatonCore
public import BatonJobGraph

/// What a task executor offers: its total resources, cut into `defaultSlots` equal default slots
/// for requests that do not specify a profile.
public struct TaskExecutorResources: Hashable, Sendable {
    public var id: ResourceID
    public var total: ResourceProfile
    public var defaultSlots: Int

    public init(id: ResourceID, total: ResourceProfile, defaultSlots: Int) {
        precondition(defaultSlots >= 1)
        self.id = id
        self.total = total
        self.defaultSlots = defaultSlots
    }

    /// A default slot: an equal share of the total.
    public var defaultSlotProfile: ResourceProfile { total.divided(by: Int64(defaultSlots)) }
}

/// A request for one slot of a job; `profile` nil asks for a default slot.
public struct SlotRequest: Hashable, Sendable {
    public var id: UInt64
    public var job: JobID
    public var profile: ResourceProfile?
    /// Who asks, for messages (`slot sharing group default, slot 3`).
    public var purpose: String

    public init(id: UInt64, job: JobID, profile: ResourceProfile?, purpose: String) {
        self.id = id
        self.job = job
        self.profile = profile
        self.purpose = purpose
    }
}

/// A slot given to a job: resources carved out of one task executor.
public struct SlotAllocation: Hashable, Sendable {
    public var id: AllocationID
    public var request: UInt64
    public var job: JobID
    public var taskExecutor: ResourceID
    public var profile: ResourceProfile

    public init(id: AllocationID, request: UInt64, job: JobID, taskExecutor: ResourceID, profile: ResourceProfile) {
        self.id = id
        self.request = request
        self.job = job
        self.taskExecutor = taskExecutor
        self.profile = profile
    }
}

/// Why a request waits: which resource is short on each task executor, and by how much.
public struct SlotShortage: Hashable, Sendable, CustomStringConvertible {
    public var request: SlotRequest
    /// Per task executor, the dimensions short: (dimension, needed, free).
    public var taskExecutors: [(id: ResourceID, short: [(ResourceProfile.Dimension, Int64, Int64)])]
    /// Whether no task executor could ever fit it, even idle.
    public var permanent: Bool

    public static func == (lhs: SlotShortage, rhs: SlotShortage) -> Bool { lhs.description == rhs.description }
    public func hash(into hasher: inout Hasher) { hasher.combine(description) }

    public var description: String {
        let wanted = request.profile.map { "\($0)" } ?? "a default slot"
        guard !taskExecutors.isEmpty else { return "no task executor is registered for \(request.purpose) (\(wanted))" }
        let details = taskExecutors.prefix(3).map { entry in
            let parts = entry.short.map { dimension, needed, free in
                "\(dimension) short by \(dimension.format(needed - free)) (needs \(dimension.format(needed)), \(dimension.format(free)) free)"
            }
            return "\(entry.id): " + parts.joined(separator: ", ")
        }
        let more = taskExecutors.count > 3 ? "; and \(taskExecutors.count - 3) more" : ""
        return "\(permanent ? "no task executor can ever offer" : "no task executor has free") \(wanted) for \(request.purpose): "
            + details.joined(separator: "; ") + more
    }
}

/// The ResourceManager's slot accounting: registered task executors and their free resources,
/// fine-grained matching of requests (a request fits where every dimension fits; an unspecified
/// one takes a default slot), pending requests served first come first served as resources free
/// up, and the allocations a lost task executor takes with it.
///
/// Matching picks the first task executor, in registration order, where the request fits.
/// Pure: no clocks, no I/O.
public struct ResourceManager: Sendable {
    public enum Action: Hashable, Sendable {
        case allocated(SlotAllocation)
        /// The request waits; the shortage says why.
        case pending(SlotShortage)
        /// An allocation is gone with its task executor.
        case lost(SlotAllocation)
    }

    private struct Executor: Sendable {
        var resources: TaskExecutorResources
        var free: ResourceProfile
    }

    private var executors: [Executor] = []
    private var allocations: [AllocationID: SlotAllocation] = [:]
    private var pendingRequests: [SlotRequest] = []
    private var nextAllocation: AllocationID = 1
    /// Per requested profile: where to start looking. Executors before it could not fit that
    /// profile when last tried, and free resources only shrink until something is released, so
    /// first-fit stays first-fit while a burst of equal requests costs O(1) each.
    private var scanStart: [ResourceProfile?: Int] = [:]

    public init() {}

    public var registeredTaskExecutors: [TaskExecutorResources] { executors.map(\.resources) }
    public var pending: [SlotRequest] { pendingRequests }
    public var activeAllocations: [SlotAllocation] { allocations.values.sorted { $0.id < $1.id } }

    public func freeResources(of taskExecutor: ResourceID) -> ResourceProfile? {
        executors.first { $0.resources.id == taskExecutor }?.free
    }

    /// Adds (or re-adds) a task executor; pending requests that now fit are allocated, the others
    /// are pending again with what is short now.
    public mutating func register(_ resources: TaskExecutorResources) -> [Action] {
        scanStart.removeAll()
        let used = allocations.values.filter { $0.taskExecutor == resources.id }.reduce(ResourceProfile.zero) { $0 + $1.profile }
        if let index = executors.firstIndex(where: { $0.resources.id == resources.id }) {
            executors[index] = Executor(resources: resources, free: resources.total - used)
        } else {
            executors.append(Executor(resources: resources, free: resources.total - used))
        }
        // What is short changed for the requests it cannot serve: say so again.
        let served = servePending()
        return served + pendingRequests.map { .pending(shortage(for: $0)) }
    }

    /// Adds (or re-adds) a task executor that a previous leader placed tasks on, counting the
    /// slots they hold (`adopting`; a zero profile means a default slot) as taken before any
    /// pending request is served, so that nothing new lands on a busy slot. New allocation ids
    /// stay above the adopted ones.
    public mutating func register(_ resources: TaskExecutorResources, adopting: [SlotAllocation]) -> [Action] {
        for allocation in adopting where allocation.taskExecutor == resources.id {
            var adopted = allocation
            if adopted.profile == .zero { adopted.profile = resources.defaultSlotProfile }
            allocations[adopted.id] = adopted
            nextAllocation = max(nextAllocation, adopted.id.next)
        }
        return register(resources)
    }

    /// Keeps new allocation ids above `id` (ids a previous leader handed out).
    public mutating func reserveAllocationIDs(through id: AllocationID) {
        nextAllocation = max(nextAllocation, id.next)
    }

    /// Asks for a slot: allocated now, or pending with the reason.
    public mutating func request(_ request: SlotRequest) -> [Action] {
        if let allocation = allocate(request) { return [.allocated(allocation)] }
        pendingRequests.append(request)
        return [.pending(shortage(for: request))]
    }

    /// Withdraws a pending request of `job`.
    public mutating func cancelRequest(_ id: UInt64, of job: JobID) {
        pendingRequests.removeAll { $0.id == id && $0.job == job }
    }

    /// Withdraws every pending request of `job`.
    public mutating func cancelRequests(of job: JobID) {
        pendingRequests.removeAll { $0.job == job }
    }

    /// Returns an allocation's resources; pending requests that now fit are allocated.
    public mutating func release(_ allocation: AllocationID) -> [Action] {
        guard let released = allocations.removeValue(forKey: allocation) else { return [] }
        scanStart.removeAll()
        if let index = executors.firstIndex(where: { $0.resources.id == released.taskExecutor }) {
            executors[index].free = executors[index].free + released.profile
        }
        return servePending()
    }

    /// Removes a task executor: its allocations are lost.
    public mutating func taskExecutorLost(_ id: ResourceID) -> [Action] {
        scanStart.removeAll()
        executors.removeAll { $0.resources.id == id }
        let lost = allocations.values.filter { $0.taskExecutor == id }.sorted { $0.id < $1.id }
        for allocation in lost { allocations[allocation.id] = nil }
        return lost.map { .lost($0) }
    }

    private mutating func allocate(_ request: SlotRequest) -> SlotAllocation? {
        let start = scanStart[request.profile] ?? 0
        for index in start..<executors.count {
            let profile = request.profile ?? executors[index].resources.defaultSlotProfile
            guard profile.fits(in: executors[index].free) else { continue }
            scanStart[request.profile] = index
            executors[index].free = executors[index].free - profile
            let allocation = SlotAllocation(
                id: nextAllocation, request: request.id, job: request.job, taskExecutor: executors[index].resources.id,
                profile: profile)
            nextAllocation = nextAllocation.next
            allocations[allocation.id] = allocation
            return allocation
        }
        scanStart[request.profile] = executors.count
        return nil
    }

    private mutating func servePending() -> [Action] {
        var actions: [Action] = []
        var waiting: [SlotRequest] = []
        for request in pendingRequests {
            if let allocation = allocate(request) { actions.append(.allocated(allocation)) } else { waiting.append(request) }
        }
        pendingRequests = waiting
        return actions
    }

    /// Why `request` does not fit anywhere now.
    public func shortage(for request: SlotRequest) -> SlotShortage {
        let permanent = !executors.contains { (request.profile ?? $0.resources.defaultSlotProfile).fits(in: $0.resources.total) }
        let entries = executors.map { executor in
            let profile = request.profile ?? executor.resources.defaultSlotProfile
            let available = permanent ? executor.resources.total : executor.free
            return (id: executor.resources.id, short: profile.shortfall(in: available).map { ($0.dimension, $0.needed, $0.available) })
        }.filter { !$0.short.isEmpty }
        return SlotShortage(request: request, taskExecutors: entries, permanent: permanent)
    }
}
