import BatonCheckpointing
import BatonCore
import BatonExecutionGraph
@testable import BatonFuzzTargets
import BatonJobManager
import BatonWire
import BatonWireMapping
import Testing

/// Crashes fuzzing found, each with the input that found it (`Fuzz/corpus/<target>/regression-*`)
/// and a direct test of the decoder it was in.
@Suite("fuzzing regressions")
struct RegressionTests {
    @Test("a stored job record whose graph names an unknown vertex fails that job instead of crashing the takeover")
    func jobGraphEdgeToUnknownVertex() throws {
        let bytes = try Corpus.file(.storeValues, "regression-job-graph-edge-to-unknown-vertex.bin")
        guard case .rejected(let message) = FuzzTarget.storeValues.outcome(of: bytes) else {
            Issue.record("the image was not rejected")
            return
        }
        #expect(message.contains("its job graph is not valid"))
    }

    @Test("a snapshot whose task executor count runs past its bytes is refused, not allocated")
    func snapshotNameCountPastTheEnd() throws {
        let bytes = try Corpus.file(.storeValues, "regression-snapshot-name-count-past-the-end.bin")
        guard case .rejected(let message) = FuzzTarget.storeValues.outcome(of: bytes) else {
            Issue.record("the image was not rejected")
            return
        }
        #expect(message.contains("task executors, more than its"))

        var snapshot = BinaryWriter()
        snapshot.write(UInt8(2))
        snapshot.write(UInt64(ExecutionGraph(jobGraph: SampleJob.graph).vertexCount))
        snapshot.write(UInt64(1) << 40)
        #expect(throws: ExecutionGraphError.self) { try ExecutionGraphCodec.restore(SampleJob.graph, snapshot: snapshot.bytes) }
    }

    @Test("a task report naming a job vertex beyond Int32 is dropped, not a crash of the master")
    func taskReportVertexBeyondInt32() throws {
        let bytes = try Corpus.file(.wire, "regression-task-report-vertex-beyond-int32.bin")
        guard case .rejected(let message) = FuzzTarget.wire.outcome(of: bytes) else {
            Issue.record("the report was not rejected")
            return
        }
        #expect(message.contains("names no valid attempt"))
        var report = WireTaskReport()
        report.attempt = WireAttempt.with {
            $0.job = "word-count"
            $0.jobVertex = UInt32.max
        }
        #expect(TaskReport(wire: report) == nil)
    }

    @Test("a deployment naming an attempt or a producer attempt beyond Int32 is refused, naming the number")
    func deploymentAttemptBeyondInt32() {
        var deploy = FuzzSeeds.sampleDeployment(subtask: 0)
        deploy.attempt.attempt = UInt32.max
        #expect(throws: WireMappingError.self) { try TaskDeploymentDescriptor(wire: deploy) }
        do {
            _ = try TaskDeploymentDescriptor(wire: deploy)
        } catch {
            #expect("\(error)".contains("4294967295"))
        }
        var channel = FuzzSeeds.sampleDeployment(subtask: 0)
        channel.inputs[0].channels[0].producerAttempt = UInt32(Int32.max) + 1
        #expect(throws: WireMappingError.self) { try TaskDeploymentDescriptor(wire: channel) }
    }

    @Test("a command or an acknowledgement naming numbers beyond Int32 names no attempt a task has")
    func attemptNumbersBeyondInt32NameNoAttempt() {
        let wire = WireAttempt.with {
            $0.job = "word-count"
            $0.jobVertex = UInt32.max
            $0.subtask = UInt32(Int32.max) + 1
            $0.attempt = UInt32.max
        }
        #expect(wire.key == nil)
        let attempt = wire.executionAttempt
        #expect(attempt.vertex == ExecutionVertexID(jobVertex: Int(Int32.max), subtask: Int(Int32.max)))
        #expect(attempt.attempt == Int32.max)
        #expect(WireInputChannel.with { $0.producerAttempt = UInt32.max }.descriptor.producerAttempt == Int32.max)
    }

    @Test("a checkpoint whose task states add up past 2^64 bytes reports the largest size, not a crash")
    func stateSizesAddPastUInt64() throws {
        let bytes = try Corpus.file(.checkpointMetadata, "regression-state-sizes-add-past-uint64.bin")
        #expect(FuzzTarget.checkpointMetadata.outcome(of: bytes) == .accepted)
        var checkpoint = FuzzSeeds.sampleCheckpoint
        for key in checkpoint.states.keys { checkpoint.states[key]!.size = UInt64.max / 2 }
        #expect(checkpoint.size == UInt64.max)
    }

    @Test("a change record that restarts a subtask past the largest attempt is refused, not a crash of the takeover")
    func resetPastTheLargestAttempt() throws {
        let bytes = try Corpus.file(.storeValues, "regression-reset-past-the-largest-attempt.bin")
        guard case .rejected(let message) = FuzzTarget.storeValues.outcome(of: bytes) else {
            Issue.record("the image was not rejected")
            return
        }
        #expect(message.contains("does not follow the current attempt"))

        var snapshot = BinaryWriter()
        snapshot.write(UInt8(2))
        snapshot.write(UInt64(ExecutionGraph(jobGraph: SampleJob.graph).vertexCount))
        snapshot.write(UInt64(0))
        for _ in 0..<ExecutionGraph(jobGraph: SampleJob.graph).vertexCount {
            snapshot.write(UInt64(Int32.max))
            snapshot.write(ExecutionState.failed.rawValue)
            snapshot.write(UInt8(0))
            snapshot.write(UInt64(0))
        }
        var graph = try ExecutionGraphCodec.restore(SampleJob.graph, snapshot: snapshot.bytes)
        let vertex = ExecutionVertexID(jobVertex: 1, subtask: 0)
        #expect(throws: ExecutionGraphError.self) { try graph.apply(.reset(vertex, .max)) }
        #expect(throws: ExecutionGraphError.self) { try graph.resetForNewAttempt(vertex) }
    }
}
