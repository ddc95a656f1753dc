public import BatonCheckpointing
public import BatonCore
public import BatonDataPlane
public import BatonExecutionGraph
public import BatonJobGraph
public import BatonTaskRuntime
public import BatonWire
import Foundation

/// Conversions between the wire messages and the domain types, in one place for both ends.
extension WireResourceProfile {
    public init(_ profile: ResourceProfile) {
        self.init()
        cpuMillis = profile.cpuMillis
        taskHeapBytes = profile.taskHeapBytes
        managedMemoryBytes = profile.managedMemoryBytes
        networkMemoryBytes = profile.networkMemoryBytes
        extended = profile.extended
    }

    public var profile: ResourceProfile {
        ResourceProfile(
            cpuMillis: cpuMillis, taskHeapBytes: taskHeapBytes, managedMemoryBytes: managedMemoryBytes, networkMemoryBytes: networkMemoryBytes,
            extended: extended)
    }
}

extension ExecutionState {
    public init(wire: WireTaskState) {
        switch wire {
        case .created: self = .created
        case .scheduled: self = .scheduled
        case .deploying: self = .deploying
        case .initializing: self = .initializing
        case .running: self = .running
        case .finished: self = .finished
        case .canceling: self = .canceling
        case .canceled: self = .canceled
        case .failed, .UNRECOGNIZED: self = .failed
        }
    }

    public var wire: WireTaskState {
        switch self {
        case .created: .created
        case .scheduled: .scheduled
        case .deploying: .deploying
        case .initializing: .initializing
        case .running: .running
        case .finished: .finished
        case .canceling: .canceling
        case .canceled: .canceled
        case .failed: .failed
        }
    }
}

extension TaskEvent {
    /// The state the event moves the task to; nil for checkpoint events.
    public var state: ExecutionState? {
        switch self {
        case .initializing: .initializing
        case .running: .running
        case .finished: .finished
        case .canceled: .canceled
        case .failed: .failed
        case .checkpointAcknowledged, .checkpointDeclined: nil
        }
    }

    public var failure: String? {
        if case .failed(let message) = self { return message }
        return nil
    }
}

extension WireAttempt {
    public init(_ key: TaskSpec.AttemptKey) {
        self.init()
        job = key.job.rawValue
        jobVertex = UInt32(key.jobVertex)
        subtask = UInt32(key.subtask)
        attempt = UInt32(key.attempt)
    }

    public init(job: JobID, _ attempt: ExecutionAttemptID) {
        self.init()
        self.job = job.rawValue
        jobVertex = UInt32(attempt.vertex.jobVertex)
        subtask = UInt32(attempt.vertex.subtask)
        self.attempt = UInt32(attempt.attempt)
    }

    public var key: TaskSpec.AttemptKey? {
        guard let job = Identifier(rawValue: job) else { return nil }
        return TaskSpec.AttemptKey(job: job, jobVertex: Int(jobVertex), subtask: Int(subtask), attempt: Int(attempt))
    }

    public var executionAttempt: ExecutionAttemptID {
        ExecutionAttemptID(vertex: ExecutionVertexID(jobVertex: Int(jobVertex), subtask: Int(subtask)), attempt: Int32(attempt))
    }
}

/// A malformed deployment (names no job, unknown pattern, bad address).
public struct WireMappingError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension WireInputChannel {
    /// The channel's location, when known (`data_address` is `host:port`).
    public var location: InputChannelSpec.Location? {
        guard known, let executor = Identifier(rawValue: taskExecutor), let colon = dataAddress.lastIndex(of: ":"),
            let port = Int(dataAddress[dataAddress.index(after: colon)...])
        else { return nil }
        return InputChannelSpec.Location(taskExecutor: executor, host: String(dataAddress[..<colon]), port: port)
    }
}

extension TaskSpec {
    /// The task a DeployTask describes.
    public init(wire deploy: WireDeployTask) throws {
        guard let attempt = deploy.attempt.key, let vertexID = Identifier(rawValue: deploy.vertexID) else {
            throw WireMappingError(message: "a deployment names an invalid job or vertex")
        }
        let inputs = deploy.inputs.map { gate in
            TaskSpec.Input(
                result: Int(gate.result), blocking: gate.blocking,
                channels: gate.channels.map { channel in
                    InputChannelSpec(
                        partition: PartitionID(
                            job: attempt.job, result: Int(gate.result), producerSubtask: Int(channel.producerSubtask),
                            producerAttempt: Int(channel.producerAttempt)),
                        subpartition: gate.pointwise ? 0 : attempt.subtask, location: channel.location)
                })
        }
        let outputs = try deploy.outputs.map { output -> OutputSpec in
            guard let pattern = DistributionPattern(rawValue: output.pattern) else {
                throw WireMappingError(message: "a deployment names an unknown pattern '\(output.pattern)'")
            }
            return OutputSpec(
                result: Int(output.result), blocking: output.blocking, pattern: pattern, key: output.key.isEmpty ? nil : output.key,
                consumerParallelism: Int(output.consumerParallelism), consumerMaxParallelism: Int(output.consumerMaxParallelism))
        }
        self.init(
            attempt: attempt, allocation: deploy.allocation, vertexID: vertexID, parallelism: Int(deploy.parallelism),
            maxParallelism: Int(deploy.maxParallelism), operators: deploy.operators.map { OperatorSpec($0.name, $0.parameters) },
            inputs: inputs, outputs: outputs,
            restore: deploy.hasRestore ? TaskRestore(checkpoint: deploy.restore.checkpointID, state: deploy.restore.state.handle) : nil)
    }
}

extension WireStateHandle {
    public init(_ handle: StateHandle) {
        self.init()
        path = handle.path
        size = handle.size
        checksum = handle.checksum
    }

    public var handle: StateHandle { StateHandle(path: path, size: size, checksum: checksum) }
}

extension CheckpointTrigger {
    public init(wire trigger: WireTriggerCheckpoint) {
        self.init(
            id: trigger.checkpointID, timestamp: WallTime(millisecondsSince1970: Int64(clamping: trigger.timestampMillis)),
            directory: trigger.directory, isSavepoint: trigger.savepoint)
    }
}
