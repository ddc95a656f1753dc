import BatonCore
import BatonJobGraph
import BatonResourceManager
import Testing

@Suite("resource manager")
struct ResourceManagerTests {
    static let mib: Int64 = 1 << 20

    func executor(_ id: ResourceID, cpu: Int64, heap: Int64, slots: Int, gpu: Int64 = 0) -> TaskExecutorResources {
        TaskExecutorResources(
            id: id, total: ResourceProfile(cpuMillis: cpu, taskHeapBytes: heap * Self.mib, extended: gpu > 0 ? ["gpu": gpu] : [:]),
            defaultSlots: slots)
    }

    func request(_ id: UInt64, _ profile: ResourceProfile?) -> SlotRequest {
        SlotRequest(id: id, job: "job", profile: profile, purpose: "test slot \(id)")
    }

    func allocated(_ actions: [ResourceManager.Action]) -> [SlotAllocation] {
        actions.compactMap { if case .allocated(let a) = $0 { a } else { nil } }
    }

    @Test("a request is placed where every dimension fits")
    func fineGrained() {
        var manager = ResourceManager()
        _ = manager.register(executor("cpu-only", cpu: 8000, heap: 8192, slots: 4))
        _ = manager.register(executor("with-gpu", cpu: 2000, heap: 2048, slots: 2, gpu: 1))
        let gpu = allocated(manager.request(request(1, ResourceProfile(cpuMillis: 1000, extended: ["gpu": 1]))))
        #expect(gpu.map(\.taskExecutor) == ["with-gpu"])
        let big = allocated(manager.request(request(2, ResourceProfile(cpuMillis: 6000, taskHeapBytes: 4096 * Self.mib))))
        #expect(big.map(\.taskExecutor) == ["cpu-only"])
        #expect(manager.freeResources(of: "cpu-only") == ResourceProfile(cpuMillis: 2000, taskHeapBytes: 4096 * Self.mib))
    }

    @Test("an unspecified request takes an equal share of a task executor: a default slot")
    func defaultSlots() {
        var manager = ResourceManager()
        _ = manager.register(executor("te1", cpu: 4000, heap: 4096, slots: 4))
        let slots = (1...4).flatMap { allocated(manager.request(request(UInt64($0), nil))) }
        #expect(slots.count == 4)
        #expect(slots.allSatisfy { $0.profile == ResourceProfile(cpuMillis: 1000, taskHeapBytes: 1024 * Self.mib) })
        let fifth = manager.request(request(5, nil))
        guard case .pending(let shortage) = fifth.first else { Issue.record("the fifth must wait"); return }
        #expect(!shortage.permanent)
        #expect(shortage.description.contains("no task executor has free a default slot"))
        // Releasing one serves the waiting request.
        let served = allocated(manager.release(slots[0].id))
        #expect(served.map(\.request) == [5])
    }

    @Test("a request that cannot be met says which resource is short and by how much")
    func shortage() {
        var manager = ResourceManager()
        _ = manager.register(executor("te1", cpu: 2000, heap: 1024, slots: 2))
        _ = manager.register(executor("te2", cpu: 4000, heap: 512, slots: 2))
        let actions = manager.request(request(1, ResourceProfile(cpuMillis: 3000, taskHeapBytes: 768 * Self.mib)))
        guard case .pending(let shortage) = actions.first else { Issue.record("expected pending"); return }
        #expect(shortage.permanent)
        let text = shortage.description
        #expect(text.contains("no task executor can ever offer"))
        #expect(text.contains("te1: cpu short by 1 core (needs 3 cores, 2 cores free)"), "\(text)")
        #expect(text.contains("te2: task heap short by 256MiB (needs 768MiB, 512MiB free)"), "\(text)")
        let none = ResourceManager().shortage(for: request(9, nil))
        #expect(none.description.contains("no task executor is registered"))
    }

    @Test("a lost task executor takes its allocations; a new one serves waiting requests")
    func lostExecutor() {
        var manager = ResourceManager()
        _ = manager.register(executor("te1", cpu: 2000, heap: 2048, slots: 2))
        let slots = allocated(manager.request(request(1, nil))) + allocated(manager.request(request(2, nil)))
        #expect(slots.count == 2)
        _ = manager.request(request(3, nil))
        let lost = manager.taskExecutorLost("te1")
        #expect(lost == slots.map { .lost($0) })
        #expect(manager.activeAllocations.isEmpty)
        let served = allocated(manager.register(executor("te2", cpu: 2000, heap: 2048, slots: 2)))
        #expect(served.map(\.request) == [3])
        manager.cancelRequests(of: "job")
        #expect(manager.pending.isEmpty)
    }

    @Test("matching stays first-fit: a slot freed on an earlier task executor is used first")
    func firstFitAfterRelease() {
        var manager = ResourceManager()
        for id in ["te1", "te2", "te3"] as [ResourceID] { _ = manager.register(executor(id, cpu: 2000, heap: 2048, slots: 2)) }
        let slots = (1...6).flatMap { allocated(manager.request(request(UInt64($0), nil))) }
        #expect(slots.map(\.taskExecutor) == ["te1", "te1", "te2", "te2", "te3", "te3"])
        _ = manager.release(slots[1].id)
        _ = manager.release(slots[4].id)
        let next = allocated(manager.request(request(7, nil)))
        #expect(next.map(\.taskExecutor) == ["te1"])
    }
}
