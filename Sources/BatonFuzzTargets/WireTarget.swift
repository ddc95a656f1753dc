import BatonCore
import BatonDataPlane
import BatonExecutionGraph
import BatonJobGraph
import BatonJobManager
import BatonResourceManager
import BatonRPC
import BatonTaskRuntime
import BatonWire
import BatonWireMapping
import Foundation
import NIOCore

/// The `wire` target: one Envelope as a connection decodes it from a frame, then what its
/// receiver (a task executor, the master, a data plane, a client) turns the body into, with the
/// same conversions (`Sources/BatonWireMapping`, the JSON of a submitted job and of a leader's
/// status, the channel events of a record batch).
///
/// Where the receiver drops a body it cannot use (a task report naming no job), the target
/// rejects it with a `FuzzTargetError` saying why; bodies a receiver uses as they are (a
/// heartbeat, a refusal's text) are accepted as decoded.
enum WireTarget {
    static func receive(_ bytes: [UInt8]) throws {
        let envelope = try RPCFraming.envelope(in: ByteBuffer(bytes: bytes), from: "the peer", at: "the input")
        try map(envelope.body)
    }

    static func map(_ body: WireEnvelope.OneOf_Body?) throws {
        switch body {
        case .deployTask(let deploy):
            _ = try TaskSpec(wire: deploy)
        case .cancelTask(let cancel):
            _ = try attemptKey(cancel.attempt)
        case .updatePartitionInfo(let update):
            _ = try attemptKey(update.consumer)
            let channel = update.channel.descriptor
            _ = channel.location?.address
            _ = deployedTask.channelUpdate(result: Int(update.result), channel: channel)
        case .releasePartitions(let release):
            _ = try job(release.job)
        case .triggerCheckpoint(let trigger):
            _ = try attemptKey(trigger.attempt)
            _ = CheckpointTrigger(wire: trigger)
        case .endSourceInput(let end):
            _ = try attemptKey(end.attempt)
        case .notifyCheckpointComplete(let notice):
            _ = try job(notice.job)
        case .taskStateChanged(let changed):
            _ = try report(changed.report)
        case .acknowledgeCheckpoint(let acknowledgement):
            _ = try job(acknowledgement.attempt.job)
            _ = acknowledgement.attempt.executionAttempt
            _ = acknowledgement.state.handle
        case .declineCheckpoint(let decline):
            _ = try job(decline.attempt.job)
            _ = decline.attempt.executionAttempt
        case .registerTaskExecutor(let registration):
            guard let id = ResourceID(rawValue: registration.id) else {
                throw FuzzTargetError("a registration names an invalid task executor id '\(registration.id)'")
            }
            let resources = TaskExecutorResources(id: id, total: registration.total.profile, defaultSlots: max(1, Int(registration.defaultSlots)))
            _ = resources.defaultSlotProfile
            // The master keeps the reports it can read and drops the others.
            _ = registration.tasks.compactMap(TaskReport.init(wire:))
        case .submitJob(let submit):
            let graph = try JSONDecoder().decode(JobGraph.self, from: submit.jobGraphJson)
            try graph.validate(taskExecutors: [SampleJob.taskExecutorResources])
        case .statusReply(let reply):
            _ = try JSONDecoder().decode(LeaderStatusReport.self, from: reply.statusJson)
        case .partitionRequest(let request):
            let job = try job(request.producer.job)
            _ = PartitionID(
                job: job, result: Int(request.result), producerSubtask: Int(request.producer.subtask), producerAttempt: Int(request.producer.attempt))
        case .recordBatch(let batch):
            _ = try ChannelEventCodec.decode(Array(batch.records))
        case .hello, .challenge, .proof, .welcome, .refused, .heartbeat, .notLeader, .failure, .ack, .registered, .jobAccepted,
            .statusRequest, .cancelJob, .awaitJob, .jobOutcome, .partitionNotFound, .credit, .endOfPartition, .triggerSavepoint,
            .savepointCompleted, .stopJob, nil:
            // Used as decoded (ids and texts are checked where they are looked up).
            break
        }
    }

    /// The task an UpdatePartitionInfo is applied to: subtask 0 of the sample job's consumer.
    static let deployedTask: TaskSpec = {
        do {
            return try TaskSpec(wire: FuzzSeeds.sampleDeployment(subtask: 0))
        } catch {
            preconditionFailure("the sample deployment does not map: \(error)")
        }
    }()

    private static func job(_ text: String) throws -> JobID {
        guard let job = JobID(rawValue: text) else { throw FuzzTargetError("a message names an invalid job id '\(text)'") }
        return job
    }

    private static func attemptKey(_ attempt: WireAttempt) throws -> TaskSpec.AttemptKey {
        guard let key = attempt.key else {
            throw FuzzTargetError(
                "a message names no valid attempt: job '\(attempt.job)', job vertex \(attempt.jobVertex), subtask \(attempt.subtask), attempt \(attempt.attempt)")
        }
        return key
    }

    private static func report(_ report: WireTaskReport) throws -> TaskReport {
        guard let decoded = TaskReport(wire: report) else {
            let attempt = report.attempt
            throw FuzzTargetError(
                "a task report names no valid attempt: job '\(attempt.job)', job vertex \(attempt.jobVertex), subtask \(attempt.subtask), attempt \(attempt.attempt)")
        }
        return decoded
    }
}
