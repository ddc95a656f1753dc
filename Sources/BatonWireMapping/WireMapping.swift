public import BatonCheckpointing
public import BatonCore
public import BatonDataPlane
public import BatonExecutionGraph
public import BatonJobGraph
public import BatonJobManager
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

    /// The attempt a command names; nil when it names no valid job, or a number beyond Int32
    /// (which no attempt has).
    public var key: TaskSpec.AttemptKey? {
        guard let job = JobID(rawValue: job), isInRange else { return nil }
        return TaskSpec.AttemptKey(job: job, jobVertex: Int(jobVertex), subtask: Int(subtask), attempt: Int(attempt))
    }

    /// The attempt this names. A number beyond Int32, which no attempt has, reads as Int32.max,
    /// which none has either: the receiver finds no such attempt. (`key`, `TaskReport(wire:)` and
    /// `TaskDeploymentDescriptor(wire:)` refuse such a message outright.)
    public var executionAttempt: ExecutionAttemptID {
        ExecutionAttemptID(
            vertex: ExecutionVertexID(jobVertex: Int(Int32(clamping: jobVertex)), subtask: Int(Int32(clamping: subtask))),
            attempt: Int32(clamping: attempt))
    }

    /// Whether the job vertex, subtask and attempt fit the Int32 of an ExecutionAttemptID.
    var isInRange: Bool { max(jobVertex, subtask, attempt) <= UInt32(Int32.max) }
}

/// A malformed deployment (names no job, unknown pattern, bad address).
public struct WireMappingError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension WireInputChannel {
    /// The channel as a deployment names it (its location only when known and well formed; a
    /// producer attempt beyond Int32, which no attempt has, reads as Int32.max).
    public var descriptor: InputChannelDescriptor {
        InputChannelDescriptor(
            producerSubtask: Int(producerSubtask), producerAttempt: Int32(clamping: producerAttempt),
            location: known ? ResourceID(rawValue: taskExecutor).map { .init(taskExecutor: $0, dataAddress: dataAddress) } : nil)
    }

    /// Where to connect for the channel, when known (`data_address` is `host:port`).
    public var location: InputChannelSpec.Location? { descriptor.location?.address }
}

extension TaskDeploymentDescriptor {
    /// The deployment a DeployTask message carries.
    public init(wire deploy: WireDeployTask) throws {
        guard let job = JobID(rawValue: deploy.attempt.job), let vertexID = JobVertexID(rawValue: deploy.vertexID) else {
            throw WireMappingError(message: "a deployment names an invalid job or vertex")
        }
        let largest = UInt32(Int32.max)
        guard deploy.attempt.isInRange else {
            let attempt = deploy.attempt
            throw WireMappingError(
                message: "a deployment names attempt \(attempt.attempt) of subtask \(attempt.subtask) of job vertex \(attempt.jobVertex): "
                    + "none may be above \(largest)")
        }
        if let channel = deploy.inputs.lazy.flatMap(\.channels).first(where: { $0.producerAttempt > largest }) {
            throw WireMappingError(message: "a deployment names producer attempt \(channel.producerAttempt): none may be above \(largest)")
        }
        let outputs = try deploy.outputs.map { output -> OutputSpec in
            guard let pattern = DistributionPattern(rawValue: output.pattern) else {
                throw WireMappingError(message: "a deployment names an unknown pattern '\(output.pattern)'")
            }
            return OutputSpec(
                result: Int(output.result), blocking: output.blocking, pattern: pattern, key: output.key.isEmpty ? nil : output.key,
                consumerParallelism: Int(output.consumerParallelism), consumerMaxParallelism: Int(output.consumerMaxParallelism))
        }
        let inputs = deploy.inputs.map { gate in
            InputGate(
                result: Int(gate.result), blocking: gate.blocking, pointwise: gate.pointwise,
                channels: gate.channels.map(\.descriptor))
        }
        self.init(
            job: job, attempt: deploy.attempt.executionAttempt, allocation: AllocationID(rawValue: deploy.allocation), vertexID: vertexID,
            parallelism: Int(deploy.parallelism), maxParallelism: Int(deploy.maxParallelism),
            operators: deploy.operators.map { OperatorSpec($0.name, $0.parameters) }, inputs: inputs, outputs: outputs,
            restore: deploy.hasRestore ? (CheckpointID(rawValue: deploy.restore.checkpointID), deploy.restore.state.handle) : nil)
    }
}

extension InputChannelDescriptor.Location {
    /// Where to connect: `data_address` is `host:port`; nil when it is not.
    public var address: InputChannelSpec.Location? {
        guard let colon = dataAddress.lastIndex(of: ":"), let port = Int(dataAddress[dataAddress.index(after: colon)...]) else { return nil }
        return InputChannelSpec.Location(taskExecutor: taskExecutor, host: String(dataAddress[..<colon]), port: port)
    }
}

extension TaskSpec {
    /// The task a deployment describes.
    public init(_ descriptor: TaskDeploymentDescriptor) {
        let attempt = TaskSpec.AttemptKey(
            job: descriptor.job, jobVertex: Int(descriptor.attempt.vertex.jobVertex), subtask: Int(descriptor.attempt.vertex.subtask),
            attempt: Int(descriptor.attempt.attempt))
        let inputs = descriptor.inputs.map { gate in
            TaskSpec.Input(
                result: gate.result, blocking: gate.blocking,
                channels: gate.channels.map { channel in
                    InputChannelSpec(
                        partition: PartitionID(
                            job: descriptor.job, result: gate.result, producerSubtask: channel.producerSubtask,
                            producerAttempt: Int(channel.producerAttempt)),
                        subpartition: gate.pointwise ? 0 : attempt.subtask, location: channel.location?.address)
                })
        }
        self.init(
            attempt: attempt, allocation: descriptor.allocation, vertexID: descriptor.vertexID, parallelism: descriptor.parallelism,
            maxParallelism: descriptor.maxParallelism, operators: descriptor.operators, inputs: inputs,
            outputs: descriptor.outputs,
            restore: descriptor.restore.map { TaskRestore(checkpoint: $0.checkpoint, state: $0.state) })
    }

    /// The channel to read once a producer this task did not know the location of is deployed
    /// (an UpdatePartitionInfo); nil when the location cannot be used.
    public func channelUpdate(result: Int, channel: InputChannelDescriptor) -> InputChannelSpec? {
        guard let location = channel.location?.address else { return nil }
        // The deployment named the subpartition this task reads from that producer.
        let known = inputs.first { $0.result == result }?.channels.first { $0.partition.producerSubtask == channel.producerSubtask }
        return InputChannelSpec(
            partition: PartitionID(
                job: attempt.job, result: result, producerSubtask: channel.producerSubtask, producerAttempt: Int(channel.producerAttempt)),
            subpartition: known?.subpartition ?? attempt.subtask, location: location)
    }

    /// The task a DeployTask message describes.
    public init(wire deploy: WireDeployTask) throws { self.init(try TaskDeploymentDescriptor(wire: deploy)) }
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
            id: CheckpointID(rawValue: trigger.checkpointID), timestamp: WallTime(millisecondsSince1970: Int64(clamping: trigger.timestampMillis)),
            directory: trigger.directory, isSavepoint: trigger.savepoint)
    }
}

extension WireInputChannel {
    public init(_ channel: InputChannelDescriptor) {
        self.init()
        producerSubtask = UInt32(channel.producerSubtask)
        producerAttempt = UInt32(channel.producerAttempt)
        if let location = channel.location {
            taskExecutor = location.taskExecutor.rawValue
            dataAddress = location.dataAddress
            known = true
        }
    }
}

extension WireDeployTask {
    public init(_ descriptor: TaskDeploymentDescriptor) {
        self.init()
        attempt = WireAttempt(job: descriptor.job, descriptor.attempt)
        allocation = descriptor.allocation.rawValue
        vertexID = descriptor.vertexID.rawValue
        parallelism = UInt32(descriptor.parallelism)
        maxParallelism = UInt32(descriptor.maxParallelism)
        operators = descriptor.operators.map { operation in .with { $0.name = operation.name; $0.parameters = operation.parameters } }
        inputs = descriptor.inputs.map { gate in
            .with {
                $0.result = UInt32(gate.result)
                $0.blocking = gate.blocking
                $0.pointwise = gate.pointwise
                $0.channels = gate.channels.map(WireInputChannel.init)
            }
        }
        outputs = descriptor.outputs.map { output in
            .with {
                $0.result = UInt32(output.result)
                $0.blocking = output.blocking
                $0.pattern = output.pattern.rawValue
                $0.key = output.key ?? ""
                $0.consumerParallelism = UInt32(output.consumerParallelism)
                $0.consumerMaxParallelism = UInt32(output.consumerMaxParallelism)
            }
        }
        if let restore = descriptor.restore {
            self.restore = .with {
                $0.checkpointID = restore.checkpoint.rawValue
                $0.state = WireStateHandle(restore.state)
            }
        }
    }
}

extension WireEnvelope {
    /// A leader's command to a task executor, stamped with the leader's epoch.
    public init(_ command: JobManager.Command, epoch: Epoch) {
        self.init()
        self.epoch = epoch.rawValue
        switch command {
        case .deploy(let descriptor):
            deployTask = WireDeployTask(descriptor)
        case .cancel(let job, let attempt):
            cancelTask = .with { $0.attempt = WireAttempt(job: job, attempt) }
        case .updatePartition(let job, let consumer, let result, let channel):
            updatePartitionInfo = .with {
                $0.consumer = WireAttempt(job: job, consumer)
                $0.result = UInt32(result)
                $0.channel = WireInputChannel(channel)
            }
        case .releasePartitions(let job, let only):
            releasePartitions = .with {
                $0.job = job.rawValue
                if let only {
                    $0.oneProducer = true
                    $0.results = only.results.map { UInt32($0) }
                    $0.producerSubtask = UInt32(only.producer.vertex.subtask)
                    $0.producerAttempt = UInt32(only.producer.attempt)
                }
            }
        case .triggerCheckpoint(let job, let source, let id, let timestamp, let directory, let isSavepoint):
            triggerCheckpoint = .with {
                $0.attempt = WireAttempt(job: job, source)
                $0.checkpointID = id.rawValue
                $0.timestampMillis = UInt64(max(0, timestamp.millisecondsSince1970))
                $0.directory = directory
                $0.savepoint = isSavepoint
            }
        case .notifyCheckpointComplete(let job, let checkpoint):
            notifyCheckpointComplete = .with {
                $0.job = job.rawValue
                $0.checkpointID = checkpoint.rawValue
            }
        case .endInput(let job, let attempt):
            endSourceInput = .with { $0.attempt = WireAttempt(job: job, attempt) }
        }
    }
}

extension WireTaskReport {
    public init(_ report: TaskReport) {
        self.init()
        attempt = WireAttempt(job: report.attempt.job, report.attempt.attempt)
        state = report.state.wire
        failure = report.failure ?? ""
        allocation = report.allocation.rawValue
    }
}

extension TaskReport {
    /// A report from the wire; nil when it names no valid job, or a number beyond Int32.
    public init?(wire report: WireTaskReport) {
        guard let job = JobID(rawValue: report.attempt.job), report.attempt.isInRange else { return nil }
        self.init(
            attempt: TaskAttempt(job: job, attempt: report.attempt.executionAttempt), state: ExecutionState(wire: report.state),
            failure: report.failure.isEmpty ? nil : report.failure, allocation: AllocationID(rawValue: report.allocation))
    }
}
