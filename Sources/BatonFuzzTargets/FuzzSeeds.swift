import BatonCheckpointing
import BatonCore
import BatonExecutionGraph
import BatonJobGraph
import BatonJobManager
import BatonWire
import BatonWireMapping

/// One input of a committed corpus, with its file name: `valid-...` when its target must accept
/// it, `invalid-...` when its target must reject it (with an error naming what is wrong).
public struct FuzzSeed: Hashable, Sendable {
    public var name: String
    public var bytes: [UInt8]

    public init(_ name: String, _ bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }
}

/// The seeds of each target's corpus, made with the real encoders (a connection's frames, the
/// wire mapping, the checkpoint codec, the store's writer driven by the election and the job
/// manager's store writes) and the repository's own configs and job specs. `baton-fuzz
/// --write-seeds` writes them to `Fuzz/corpus/<target>/`; the tests check that the valid ones
/// are accepted and the invalid ones rejected.
public enum FuzzSeeds {
    /// The seeds of `target`; `repository` is the root of the Baton checkout (configs and job
    /// specs are read from it).
    public static func seeds(for target: FuzzTarget, repository: String) async throws -> [FuzzSeed] {
        switch target {
        case .frame: try frameSeeds()
        case .wire: try wireSeeds()
        case .config: try configSeeds(repository)
        case .jobspec: try jobSpecSeeds(repository)
        case .checkpointMetadata: checkpointSeeds()
        case .storeValues: try await storeSeeds()
        }
    }

    // MARK: the sample job's values

    static let job = SampleJob.graph.id
    static let start = WallTime(millisecondsSince1970: 1_767_225_600_000)

    static func attempt(_ jobVertex: Int, _ subtask: Int, _ attempt: Int32 = 0) -> ExecutionAttemptID {
        ExecutionAttemptID(vertex: ExecutionVertexID(jobVertex: jobVertex, subtask: subtask), attempt: attempt)
    }

    static let producerLocation = InputChannelDescriptor.Location(taskExecutor: "te1", dataAddress: "127.0.0.1:6200")

    /// The deployment of a subtask of the sample job's `sum` vertex, restarted once, which reads
    /// the blocking result of `tokenize` (subtask 0 deployed, also restarted once; subtask 1 not
    /// yet). Attempt numbers above 0 put the fields on the wire (proto3 leaves zeros out).
    static func sampleDescriptor(subtask: Int) -> TaskDeploymentDescriptor {
        let vertex = SampleJob.graph.vertex("sum")!
        return TaskDeploymentDescriptor(
            job: job, attempt: attempt(1, subtask, 1), allocation: 7, vertexID: vertex.id, parallelism: vertex.parallelism,
            maxParallelism: vertex.maxParallelism, operators: vertex.operators,
            inputs: [
                .init(
                    result: 0, blocking: true, pointwise: false,
                    channels: [
                        InputChannelDescriptor(producerSubtask: 0, producerAttempt: 1, location: producerLocation),
                        InputChannelDescriptor(producerSubtask: 1, producerAttempt: 0, location: nil),
                    ])
            ],
            outputs: [], restore: (CheckpointID(rawValue: 2), StateHandle(path: "/var/baton/checkpoints/word-count/chk-2/sum-0", size: 4096, checksum: 0x1234_5678)))
    }

    static func sampleDeployment(subtask: Int) -> WireDeployTask { WireDeployTask(sampleDescriptor(subtask: subtask)) }

    static let sampleCheckpoint = CompletedCheckpoint(
        job: job, id: CheckpointID(rawValue: 2), isSavepoint: false, triggeredAt: start, completedAt: WallTime(millisecondsSince1970: start.millisecondsSince1970 + 120),
        duration: .milliseconds(120), directory: "/var/baton/checkpoints/word-count/chk-2",
        vertices: [.init(index: 0, id: "tokenize", parallelism: 2), .init(index: 1, id: "sum", parallelism: 2)],
        states: Dictionary(uniqueKeysWithValues: (0..<2).flatMap { vertex in
            (0..<2).map { subtask in
                (ExecutionVertexID(jobVertex: vertex, subtask: subtask),
                 StateHandle(path: "/var/baton/checkpoints/word-count/chk-2/\(vertex)-\(subtask)", size: UInt64(512 * (vertex + 1)), checksum: UInt32(0xA000 + subtask)))
            }
        }))
}
