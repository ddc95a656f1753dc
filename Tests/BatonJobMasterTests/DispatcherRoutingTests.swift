import BatonCore
import BatonExecutionGraph
import BatonJobGraph
import BatonJobMaster
import BatonResourceManager
import Testing

@Suite("dispatcher routing")
struct DispatcherRoutingTests {
    /// A dispatcher running one streaming job of `subtasks` sources, every slot allocated, every
    /// task deployed; and the deployments.
    static func deployed(subtasks: Int) throws -> (Dispatcher, [JobMaster.Deployment]) {
        var builder = JobGraphBuilder(id: "wide")
        builder.addVertex("source", operators: [.sequence(), .discard()], parallelism: subtasks, maxParallelism: max(128, subtasks))
        let graph = try builder.build()
        let now = MonotonicInstant(nanoseconds: 0)
        var dispatcher = Dispatcher(mode: .session)
        var pending = try dispatcher.submit(graph, now: now)
        var deployments: [JobMaster.Deployment] = []
        var allocation: AllocationID = 0
        while let action = pending.popLast() {
            guard case .job(let job, let jobAction) = action else { continue }
            switch jobAction {
            case .requestSlot(let request):
                allocation = allocation.next
                let slot = SlotAllocation(id: allocation, request: request.id, job: job, taskExecutor: "te1", profile: .zero)
                pending += dispatcher.route(job) { $0.slotAllocated(slot, now: now) }
            case .deploy(let deployment):
                deployments.append(deployment)
            default:
                break
            }
        }
        return (dispatcher, deployments)
    }

    /// The median time of routing one task report (DEPLOYING to INITIALIZING) to the job.
    static func medianReportNanoseconds(subtasks: Int, reports: Int) throws -> Int64 {
        var (dispatcher, deployments) = try deployed(subtasks: subtasks)
        #expect(deployments.count == subtasks)
        let clock = ContinuousClock()
        var samples: [Int64] = []
        for deployment in deployments.prefix(reports) {
            let started = clock.now
            let actions = dispatcher.route("wide") { $0.taskStateChanged(deployment.attempt, to: .initializing, now: MonotonicInstant(nanoseconds: 1)) }
            samples.append((clock.now - started).nanosecondsClamped)
            #expect(!actions.isEmpty, "the report was taken")
        }
        #expect(dispatcher.job("wide")?.graph.stateCounts[.initializing] == reports)
        return samples.sorted()[samples.count / 2]
    }

    @Test("a task report costs the same for a job of 100 and of 10,000 subtasks: the JobMaster is changed in place, never copied")
    func reportCostIndependentOfJobSize() throws {
        let small = try Self.medianReportNanoseconds(subtasks: 100, reports: 100)
        let large = try Self.medianReportNanoseconds(subtasks: 10_000, reports: 100)
        // A copy of the job's execution table per report would make the large job's reports
        // about 100 times dearer; in place they cost the same, give or take the machine's noise.
        #expect(large < small * 10 + 20_000, "median per report: \(small) ns at 100 subtasks, \(large) ns at 10,000")
    }
}
