import BatonCheckpointing
import BatonCore
import BatonDataPlane
import BatonExecutionGraph
import BatonJobGraph
import BatonJobManager
import BatonOperators
import BatonRPC
import BatonWire
import BatonWireMapping
import Foundation
import SwiftProtobuf

/// The seeds of the `frame` and `wire` targets: envelopes as their senders make them.
extension FuzzSeeds {
    /// Envelopes as senders make them (the leader's commands through the wire mapping).
    static func envelopes() throws -> [(name: String, envelope: WireEnvelope)] {
        let epoch = Epoch(3)
        let sum0 = attempt(1, 0, 1)
        var list: [(String, WireEnvelope)] = [
            ("deploy-task", WireEnvelope(.deploy(sampleDescriptor(subtask: 0)), epoch: epoch)),
            ("cancel-task", WireEnvelope(.cancel(job, sum0), epoch: epoch)),
            ("update-partition-info", WireEnvelope(.updatePartition(job, consumer: sum0, result: 0, channel: .init(producerSubtask: 1, producerAttempt: 1, location: producerLocation)), epoch: epoch)),
            ("release-partitions", WireEnvelope(.releasePartitions(job, only: nil), epoch: epoch)),
            ("release-one-producer", WireEnvelope(.releasePartitions(job, only: .init(producer: attempt(0, 1), results: [0])), epoch: epoch)),
            ("trigger-checkpoint", WireEnvelope(.triggerCheckpoint(job, source: attempt(0, 0), id: CheckpointID(rawValue: 3), timestamp: start, directory: "/var/baton/checkpoints/word-count/chk-3", isSavepoint: false), epoch: epoch)),
            ("notify-checkpoint-complete", WireEnvelope(.notifyCheckpointComplete(job, checkpoint: CheckpointID(rawValue: 3)), epoch: epoch)),
            ("end-source-input", WireEnvelope(.endInput(job, attempt(0, 1)), epoch: epoch)),
        ]
        let report = TaskReport(attempt: TaskAttempt(job: job, attempt: sum0), state: .running, allocation: 7)
        list.append(("task-state-changed", .with {
            $0.epoch = epoch.rawValue
            $0.taskStateChanged = .with { $0.report = WireTaskReport(report) }
        }))
        // The largest attempt number there is, on the wire as five bytes: one byte off is past it.
        var largest = sampleDescriptor(subtask: 0)
        largest.attempt.attempt = .max
        largest.inputs[0].channels[0].producerAttempt = .max
        list.append(("deploy-task-largest-attempt", WireEnvelope(.deploy(largest), epoch: epoch)))
        let lastReport = TaskReport(attempt: TaskAttempt(job: job, attempt: attempt(1, 0, .max)), state: .failed, failure: "out of attempts", allocation: 7)
        list.append(("task-state-changed-largest-attempt", .with {
            $0.epoch = epoch.rawValue
            $0.taskStateChanged = .with { $0.report = WireTaskReport(lastReport) }
        }))
        list.append(("acknowledge-checkpoint", .with {
            $0.epoch = epoch.rawValue
            $0.acknowledgeCheckpoint = .with {
                $0.attempt = WireAttempt(job: job, sum0)
                $0.checkpointID = 3
                $0.state = WireStateHandle(StateHandle(path: "/var/baton/checkpoints/word-count/chk-3/1-0", size: 2048, checksum: 77))
            }
        }))
        list.append(("decline-checkpoint", .with {
            $0.epoch = epoch.rawValue
            $0.declineCheckpoint = .with {
                $0.attempt = WireAttempt(job: job, sum0)
                $0.checkpointID = 3
                $0.reason = "the task is not running"
            }
        }))
        list.append(("register-task-executor", .with {
            $0.registerTaskExecutor = .with {
                $0.id = "te1"
                $0.dataAddress = "127.0.0.1:6200"
                $0.total = WireResourceProfile(SampleJob.taskExecutorResources)
                $0.defaultSlots = 4
                $0.incarnation = 0x5EED
                $0.tasks = [WireTaskReport(report)]
            }
        }))
        let graph = try sortedJSON(SampleJob.graph)
        list.append(("submit-job", .with { $0.submitJob = .with { $0.jobGraphJson = graph } }))
        let status = LeaderStatusReport(
            taskExecutors: [.init(id: "te1", slots: 4, freeSlots: 2, registeredEpoch: 3, dataAddress: "127.0.0.1:6200")], jobs: [])
        let statusJSON = try sortedJSON(status)
        list.append(("status-reply", .with { $0.statusReply = .with { $0.statusJson = statusJSON } }))
        list.append(("partition-request", .with {
            $0.partitionRequest = .with {
                $0.producer = WireAttempt(job: job, attempt(0, 0, 1))
                $0.result = 0
                $0.subpartition = 1
                $0.initialCredit = 8
                $0.channel = 1
            }
        }))
        let records = ChannelEventCodec.encode(.records([.line("to be or not to be"), .keyed(key: "be", value: 2)]))
        list.append(("record-batch", .with { $0.recordBatch = .with { $0.channel = 1; $0.records = Data(records); $0.count = 2 } }))
        // As the data plane sends a batch (no count): the frame its fast path reads.
        list.append(("record-batch-data-plane", .with { $0.recordBatch = .with { $0.channel = 1; $0.records = Data(records) } }))
        let barrier = ChannelEventCodec.encode(
            .barrier(CheckpointTrigger(id: CheckpointID(rawValue: 3), timestamp: start, directory: "/var/baton/checkpoints/word-count/chk-3", isSavepoint: false)))
        list.append(("record-batch-barrier", .with { $0.recordBatch = .with { $0.channel = 1; $0.records = Data(barrier); $0.count = 0 } }))
        list.append(("hello", .with {
            $0.hello = .with {
                $0.protocolVersion = RPCConfiguration.protocolVersion
                $0.peerID = "te1"
                $0.role = .taskExecutor
                $0.clientNonce = Data((0..<16).map { UInt8($0 * 7) })
            }
        }))
        list.append(("heartbeat", .with { $0.heartbeat = .with { $0.sentAtMillis = UInt64(start.millisecondsSince1970) } }))
        return list
    }

    /// `envelope` as a connection frames it (`RPCFraming.frame`: its length, then its bytes with
    /// this build's protocol version), with map entries in a fixed order so that the seeds come
    /// out the same each time.
    static func frameBytes(_ envelope: WireEnvelope, protocolVersion: UInt32 = RPCConfiguration.protocolVersion) throws -> [UInt8] {
        var envelope = envelope
        envelope.protocolVersion = protocolVersion
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        return lengthPrefixed(try envelope.serializedBytes(options: options))
    }

    static func frameSeeds() throws -> [FuzzSeed] {
        let all = try envelopes()
        var seeds = try all.map { FuzzSeed("valid-\($0.name).bin", try frameBytes($0.envelope)) }
        // A stream of several frames, as a leader's outbox writes them in one go.
        seeds.append(FuzzSeed("valid-stream-of-commands.bin", try all.prefix(8).flatMap { try frameBytes($0.envelope) }))
        seeds.append(FuzzSeed("valid-empty-stream.bin", []))
        let deploy = try frameBytes(all[0].envelope)
        seeds.append(FuzzSeed("invalid-truncated-frame.bin", Array(deploy.dropLast(5))))
        seeds.append(FuzzSeed("invalid-truncated-length.bin", [0, 0]))
        seeds.append(FuzzSeed("invalid-frame-too-large.bin", [0x00, 0x10, 0x00, 0x01] + Array(deploy.dropFirst(4))))
        seeds.append(FuzzSeed("invalid-protocol-version.bin", try frameBytes(all[0].envelope, protocolVersion: RPCConfiguration.protocolVersion + 1)))
        seeds.append(FuzzSeed("invalid-not-an-envelope.bin", lengthPrefixed([0xFF, 0xFF, 0xFF, 0xFF])))
        return seeds
    }

    static func wireSeeds() throws -> [FuzzSeed] {
        let all = try envelopes()
        var seeds = try all.map { FuzzSeed("valid-\($0.name).bin", Array(try frameBytes($0.envelope).dropFirst(4))) }
        func invalid(_ name: String, _ change: (inout WireEnvelope) -> Void) throws {
            var envelope = all.first { $0.name == "deploy-task" }!.envelope
            change(&envelope)
            seeds.append(FuzzSeed("invalid-\(name).bin", Array(try frameBytes(envelope).dropFirst(4))))
        }
        try invalid("deploy-unknown-pattern") {
            $0.deployTask.outputs = [.with { $0.result = 1; $0.pattern = "scatter"; $0.consumerParallelism = 2; $0.consumerMaxParallelism = 128 }]
        }
        try invalid("deploy-invalid-job-id") { $0.deployTask.attempt.job = "no such job!" }
        try invalid("task-report-invalid-job-id") { $0.taskStateChanged = .with { $0.report.attempt.job = "" } }
        try invalid("submit-job-not-json") { $0.submitJob = .with { $0.jobGraphJson = Data("{\"id\": ".utf8) } }
        var cyclic = SampleJob.graph
        cyclic.edges.append(JobEdge(source: "sum", target: "tokenize", pattern: .rebalance, resultType: .pipelined))
        let cyclicJSON = try sortedJSON(cyclic)
        try invalid("submit-job-with-cycle") { $0.submitJob = .with { $0.jobGraphJson = cyclicJSON } }
        try invalid("record-batch-unknown-event") { $0.recordBatch = .with { $0.channel = 1; $0.records = Data([9, 0, 0]) } }
        let otherVersion = try frameBytes(all[0].envelope, protocolVersion: RPCConfiguration.protocolVersion + 1)
        seeds.append(FuzzSeed("invalid-protocol-version.bin", Array(otherVersion.dropFirst(4))))
        return seeds
    }

    static func sortedJSON(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return try encoder.encode(value)
    }

    static func lengthPrefixed(_ bytes: [UInt8]) -> [UInt8] {
        let count = UInt32(bytes.count)
        return [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: count >> $0) } + bytes
    }
}
