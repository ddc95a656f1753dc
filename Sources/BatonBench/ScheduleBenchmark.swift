import BatonCore
import BatonExecutionGraph
public import BatonJobGraph
import BatonJobMaster
import BatonResourceManager
import BatonScheduling
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `baton bench schedule`: for a job of N subtasks (10 vertices of N/10 subtasks in one slot
/// sharing group, so 10 subtasks per shared slot, joined alternately by forward and hash edges),
/// the time to build the ExecutionGraph, compute its pipelined regions, schedule it (slot
/// requests), match the slots on task executors of 64 default slots, and produce every
/// deployment; and the peak memory of the process that did it.
public struct ScheduleBenchmark: Sendable {
    public struct Run: Codable, Sendable, Hashable {
        public var subtasks: Int
        /// Everything below, end to end.
        public var millis: Double
        public var peakMemoryBytes: Int64
        public var buildMillis: Double
        public var regionsMillis: Double
        public var scheduleMillis: Double
        public var matchMillis: Double
        public var deployMillis: Double
        public var regions: Int
        public var slots: Int
        public var deployments: Int
        /// Resident memory before the run (the process itself).
        public var baselineMemoryBytes: Int64
    }

    public static let vertices = 10

    /// The job of `subtasks` subtasks (a multiple of 10).
    public static func job(subtasks: Int) -> JobGraph {
        let parallelism = max(1, subtasks / vertices)
        var builder = JobGraphBuilder(id: JobID(rawValue: "bench-\(subtasks)")!, configuration: JobConfiguration(scheduling: .eager, failover: .region))
        for index in 0..<vertices {
            builder.addVertex(
                JobVertexID(rawValue: "v\(index)")!, operators: [index == 0 ? .sequence() : .count()], parallelism: parallelism,
                maxParallelism: JobVertex.maxParallelismLimit)
        }
        for index in 1..<vertices {
            let pattern: DistributionPattern = index % 2 == 1 ? .forward : .hash
            builder.connect(
                JobVertexID(rawValue: "v\(index - 1)")!, to: JobVertexID(rawValue: "v\(index)")!, pattern,
                key: pattern == .hash ? "key" : nil)
        }
        return try! builder.build()
    }

    /// Runs one size in this process.
    public static func run(subtasks: Int) -> Run {
        let baseline = residentBytes()
        let clock = ContinuousClock()
        func time<T>(_ body: () -> T) -> (T, Double) {
            let start = clock.now
            let result = body()
            return (result, (clock.now - start).milliseconds)
        }
        let job = job(subtasks: subtasks)
        let (graph, build) = time { ExecutionGraph(jobGraph: job) }
        let (regions, regionsTime) = time { PipelinedRegions(graph) }
        let (started, schedule) = time { () -> (JobMaster, [JobMaster.Action]) in
            var master = JobMaster(jobGraph: job, failover: RegionFailoverStrategy(regions: regions))
            let actions = master.start(now: .zero)
            return (master, actions)
        }
        var master = started.0
        let requests = started.1.compactMap { action -> SlotRequest? in if case .requestSlot(let request) = action { request } else { nil } }
        let (allocations, match) = time { () -> [SlotAllocation] in
            var manager = ResourceManager()
            let executors = (requests.count + 63) / 64
            for index in 0..<executors {
                _ = manager.register(
                    TaskExecutorResources(
                        id: ResourceID(rawValue: "te\(index)")!, total: ResourceProfile(cpuMillis: 64_000, taskHeapBytes: 64 << 30),
                        defaultSlots: 64))
            }
            return requests.flatMap { request in
                manager.request(request).compactMap { if case .allocated(let allocation) = $0 { allocation } else { nil } }
            }
        }
        let (deployments, deploy) = time { () -> Int in
            var count = 0
            for allocation in allocations {
                for action in master.slotAllocated(allocation, now: .zero) { if case .deploy = action { count += 1 } }
            }
            return count
        }
        _ = graph.vertexCount
        return Run(
            subtasks: graph.vertexCount, millis: build + regionsTime + schedule + match + deploy, peakMemoryBytes: peakResidentBytes(),
            buildMillis: build, regionsMillis: regionsTime, scheduleMillis: schedule, matchMillis: match, deployMillis: deploy,
            regions: regions.count, slots: requests.count, deployments: deployments, baselineMemoryBytes: baseline)
    }

    /// The peak resident set of this process (ru_maxrss).
    static func peakResidentBytes() -> Int64 {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int64(usage.ru_maxrss) * 1024
    }

    /// The resident set now (/proc/self/statm).
    static func residentBytes() -> Int64 {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int64(fields[1]) else { return 0 }
        return pages * Int64(sysconf(Int32(_SC_PAGESIZE)))
    }
}
