public import BatonConfig
import BatonClient
import BatonCore
import BatonJobGraph
import BatonProcessControl
import BatonStatus
import BatonWire
import Foundation
import Logging

/// Deployment at scale on a real group: the config's masters and election settings with two task
/// executors of enough slots (processes of their own, a fresh store, free ports). A job of N
/// subtasks is submitted to the leader (ten vertices of N/10 subtasks sharing slots: endless slow
/// sources, eight maps and discarding sinks, joined forward), and the figure is the time from the submission to every
/// subtask RUNNING in the leader's view (polled every 200 ms), which covers building the
/// ExecutionGraph, scheduling, slot matching, the deployments' store writes and sending, and the
/// task executors starting the tasks and reporting (the job checkpoints hourly: none during the run).
public struct DeployBenchmark: Sendable {
    public struct Run: Codable, Sendable, Hashable {
        public var subtasks: Int
        public var taskExecutors: Int
        public var slotsPerTaskExecutor: Int
        /// Submission to every subtask RUNNING.
        public var millis: Double
    }

    public var configuration: HAConfiguration
    public var executable: String
    public var progress: @Sendable (String) -> Void

    public init(configuration: HAConfiguration, executable: String, progress: @escaping @Sendable (String) -> Void) {
        self.configuration = configuration
        self.executable = executable
        self.progress = progress
    }

    static let job: JobID = "deploy-bench"
    static let taskExecutors = 2
    static let vertices = 10

    public func run(subtasks: Int) async throws -> Run {
        guard subtasks >= Self.vertices * 2, subtasks % (Self.vertices * 2) == 0 else {
            throw BenchmarkFailure(message: "--subtasks must be a multiple of \(Self.vertices * 2)")
        }
        let workspace = try TemporaryDirectory("baton-bench-deploy")
        defer { workspace.remove() }
        // Ten vertices of N/10 subtasks share N/10 slots, half on each task executor.
        let slots = subtasks / Self.vertices / Self.taskExecutors
        let configPath = workspace.file("bench.yaml")
        let bench = try HAConfiguration.writeIsolated(
            configuration.isolatedCopy(
                directory: workspace.path, storePath: workspace.file("ha.sqlite"), taskExecutors: Self.taskExecutors, slotsPerTaskExecutor: slots,
                restartDelay: .milliseconds(100)),
            to: configPath)
        let group = try ChildProcess(
            executable: executable, arguments: ["group", "--config", configPath, "--log-level", "warning"], logPath: workspace.file("group.log"))
        defer { group.stop(timeout: .seconds(20)) }
        var logger = Logger(label: "baton.bench.deploy")
        logger.logLevel = .warning
        let client = LeaderClient(configuration: bench, logger: logger, patience: .seconds(30))
        guard
            await poll(bench, timeout: .seconds(60), {
                $0.taskExecutors.count == Self.taskExecutors && $0.taskExecutors.allSatisfy { $0.freeSlots == slots }
            }) != nil
        else { throw BenchmarkFailure(message: "the group's task executors did not register within 60 s; see \(workspace.file("group.log"))") }
        var submit = WireEnvelope()
        submit.submitJob = .with { $0.jobGraphJson = (try? JSONEncoder().encode(try? graph(subtasks: subtasks))) ?? Data() }
        let submitted = ContinuousClock.now
        let accepted = try await client.request(submit)
        guard case .jobAccepted = accepted.body else { throw BenchmarkFailure(message: "the job was refused: \(accepted.failure.message)") }
        var lastShown = ContinuousClock.now
        guard
            await poll(bench, timeout: .seconds(120), { status in
                guard let job = status.jobs.first(where: { $0.id == Self.job.rawValue }) else { return false }
                let states = job.vertices.flatMap(\.subtasks).map(\.state)
                if ContinuousClock.now - lastShown >= .milliseconds(500) {
                    lastShown = .now
                    let counts = Dictionary(states.map { ($0, 1) }, uniquingKeysWith: +).sorted { $0.key < $1.key }
                    progress(
                        String(format: "%.1f s: ", (ContinuousClock.now - submitted).milliseconds / 1000)
                            + counts.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
                }
                return states.count == subtasks && states.allSatisfy { $0 == "RUNNING" }
            }) != nil
        else { throw BenchmarkFailure(message: "the job's \(subtasks) subtasks were not all RUNNING within 120 s; see \(workspace.file("group.log"))") }
        let millis = (ContinuousClock.now - submitted).milliseconds
        progress(String(format: "%d subtasks: submitted to all RUNNING in %.0f ms", subtasks, millis))
        return Run(subtasks: subtasks, taskExecutors: Self.taskExecutors, slotsPerTaskExecutor: slots, millis: millis)
    }

    /// The job: N/10 sources emitting one record a second, through eight maps, into discarding
    /// sinks, every vertex forward to the next.
    func graph(subtasks: Int) throws -> JobGraph {
        var builder = JobGraphBuilder(
            id: Self.job, configuration: JobConfiguration(scheduling: .eager, failover: .region, restart: .none, checkpointInterval: .seconds(3600)))
        let parallelism = subtasks / Self.vertices
        let maxParallelism = max(128, parallelism)
        var previous = builder.addVertex(
            "source", operators: [OperatorSpec("sequence", ["from": "0", "keys": "16", "rate": "1"])], parallelism: parallelism,
            maxParallelism: maxParallelism)
        for index in 1..<Self.vertices {
            let last = index == Self.vertices - 1
            let vertex = builder.addVertex(
                JobVertexID(rawValue: last ? "sink" : "map\(index)")!, operators: [last ? .discard() : .map("identity")], parallelism: parallelism, maxParallelism: maxParallelism)
            builder.connect(previous, to: vertex, .forward)
            previous = vertex
        }
        return try builder.build()
    }

    /// The leader's status, asked every 200 ms until `condition` holds (nil after `timeout`).
    private func poll(
        _ configuration: HAConfiguration, timeout: Duration, _ condition: (LeaderStatusReport) -> Bool
    ) async -> LeaderStatusReport? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let report = await GroupStatus.liveStatus(configuration), condition(report) { return report }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return nil
    }
}
