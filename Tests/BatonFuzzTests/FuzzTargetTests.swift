import BatonCheckpointing
import BatonConfig
import BatonCore
@testable import BatonFuzzTargets
import BatonHAStore
import BatonJobManager
import BatonRPC
import BatonWire
import BatonWireMapping
import Foundation
import NIOCore
import SwiftProtobuf
import Testing

/// Each target accepts a known-good input and rejects known-bad ones with an error that names
/// what is wrong, so that a fuzzing run's "no crash, every rejection clear" means something.
@Suite("fuzz targets")
struct FuzzTargetTests {
    func rejection(_ target: FuzzTarget, _ bytes: [UInt8]) -> String? {
        guard case .rejected(let message) = target.outcome(of: bytes) else { return nil }
        return message
    }

    func frame(_ envelope: WireEnvelope) throws -> [UInt8] { Array(try RPCFraming.frame(envelope).readableBytesView) }

    static let heartbeat = WireEnvelope.with { $0.heartbeat = .with { $0.sentAtMillis = 1 } }
    static let deploy = WireEnvelope(.deploy(FuzzSeeds.sampleDescriptor(subtask: 1)), epoch: Epoch(4))

    @Test("every target has a name tools/fuzz can pass", arguments: FuzzTarget.allCases)
    func targetNamesRoundTrip(_ target: FuzzTarget) {
        #expect(FuzzTarget(rawValue: target.rawValue) == target)
    }

    // MARK: frame

    @Test("a stream of whole frames is read frame by frame into envelopes")
    func frameStreamAccepted() throws {
        let envelopes = try FrameTarget.envelopes(in: try frame(Self.heartbeat) + frame(Self.deploy))
        #expect(envelopes.map(\.body) == [Self.heartbeat.body, Self.deploy.body])
        #expect(FuzzTarget.frame.outcome(of: try frame(Self.deploy)) == .accepted)
    }

    @Test("the seeds frame an envelope byte for byte as a connection does")
    func seedFramesAreConnectionFrames() throws {
        #expect(try FuzzSeeds.frameBytes(Self.heartbeat) == frame(Self.heartbeat))
        #expect(try FuzzSeeds.frameBytes(Self.deploy).count == frame(Self.deploy).count)
    }

    @Test("a stream that ends inside a frame is rejected, saying how many bytes are left over")
    func truncatedFrameRejected() throws {
        let bytes = try frame(Self.heartbeat) + frame(Self.deploy).dropLast()
        let message = try #require(rejection(.frame, bytes))
        #expect(message.contains("the stream ends inside a frame"))
        #expect(message.contains("1 whole frames"))
    }

    @Test("a frame of another protocol version is refused, naming both versions")
    func otherProtocolVersionRejected() throws {
        var envelope = Self.heartbeat
        envelope.protocolVersion = RPCConfiguration.protocolVersion + 1
        let body: [UInt8] = try envelope.serializedBytes()
        let bytes = FuzzSeeds.lengthPrefixed(body)
        let message = try #require(rejection(.frame, bytes))
        #expect(message.contains("protocol version \(RPCConfiguration.protocolVersion + 1), this side \(RPCConfiguration.protocolVersion)"))
    }

    @Test("a frame longer than the limit is refused from its length alone")
    func oversizedFrameRejected() throws {
        let message = try #require(rejection(.frame, [0x7F, 0xFF, 0xFF, 0xFF]))
        #expect(message.contains("larger than the limit of \(FrameTarget.maxFrameBytes)"))
    }

    // MARK: wire

    @Test("a deployment maps into the task it describes")
    func deploymentAccepted() throws {
        #expect(FuzzTarget.wire.outcome(of: Array(try frame(Self.deploy).dropFirst(4))) == .accepted)
    }

    @Test("a deployment naming an unknown distribution pattern is rejected, naming the pattern")
    func unknownPatternRejected() throws {
        var envelope = Self.deploy
        envelope.deployTask.outputs = [.with { $0.pattern = "scatter" }]
        let message = try #require(rejection(.wire, Array(try frame(envelope).dropFirst(4))))
        #expect(message.contains("unknown pattern 'scatter'"))
    }

    @Test("a submitted job graph that is not JSON is rejected with the decoder's error")
    func submittedGarbageRejected() throws {
        let envelope = WireEnvelope.with { $0.submitJob = .with { $0.jobGraphJson = Data("{\"vertices\": [".utf8) } }
        let message = try #require(rejection(.wire, Array(try frame(envelope).dropFirst(4))))
        #expect(message.contains("JSON"))
    }

    // MARK: config and job specs

    static let config = """
        cluster: local
        store: { backend: sqlite, path: data/ha.sqlite }
        election: { lease: 2s, renew: 500ms }
        rpc: { secret: fuzzing-secret-0123456789 }
        masters:
          - { id: m1, rpc: "127.0.0.1:6123", rest: "127.0.0.1:8081" }
        taskexecutors:
          - { id: te1, slots: 4, data: "127.0.0.1:6200" }

        """

    @Test("a valid config is accepted")
    func configAccepted() {
        #expect(FuzzTarget.config.outcome(of: Array(Self.config.utf8)) == .accepted)
    }

    @Test("a config with an unknown key is rejected, naming the file, the key path and the key")
    func configUnknownKeyRejected() throws {
        let text = Self.config.replacingOccurrences(of: "renew: 500ms", with: "renewal: 500ms")
        let message = try #require(rejection(.config, Array(text.utf8)))
        #expect(message.hasPrefix("\(ConfigTarget.configFile):3: election.renewal: unknown key 'renewal'"))
    }

    @Test("a valid job spec is accepted")
    func jobSpecAccepted() {
        #expect(FuzzTarget.jobspec.outcome(of: Array(SampleJob.specText.utf8)) == .accepted)
    }

    @Test("a job spec naming an unknown operator is rejected, naming the file and the operator")
    func jobSpecUnknownOperatorRejected() throws {
        let text = SampleJob.specText.replacingOccurrences(of: "- tokenize\n", with: "- detokenize\n")
        let message = try #require(rejection(.jobspec, Array(text.utf8)))
        #expect(message.hasPrefix(ConfigTarget.jobSpecFile))
        #expect(message.contains("unknown operator 'detokenize'"))
    }

    // MARK: checkpoint metadata

    @Test("a savepoint file and a stored checkpoint value are accepted")
    func checkpointMetadataAccepted() {
        #expect(FuzzTarget.checkpointMetadata.outcome(of: CompletedCheckpointCodec.encodeFile(FuzzSeeds.sampleCheckpoint, key: CheckpointMetadataTarget.clusterKey)) == .accepted)
        #expect(FuzzTarget.checkpointMetadata.outcome(of: CompletedCheckpointCodec.encode(FuzzSeeds.sampleCheckpoint)) == .accepted)
    }

    @Test("a savepoint file with a flipped bit is rejected at its signature")
    func damagedSavepointRejected() throws {
        var bytes = CompletedCheckpointCodec.encodeFile(FuzzSeeds.sampleCheckpoint, key: CheckpointMetadataTarget.clusterKey)
        bytes[bytes.count / 2] ^= 0x01
        let message = try #require(rejection(.checkpointMetadata, bytes))
        #expect(message.contains("the signature does not match"))
    }

    @Test("stored checkpoint metadata of an unknown format is rejected, naming the format")
    func unknownCheckpointFormatRejected() throws {
        var bytes = CompletedCheckpointCodec.encode(FuzzSeeds.sampleCheckpoint)
        bytes[0] = 9
        let message = try #require(rejection(.checkpointMetadata, bytes))
        #expect(message.contains("format 9"))
    }

    // MARK: store values

    @Test("an empty store and an elected one are accepted")
    func storeImagesAccepted() async throws {
        #expect(FuzzTarget.storeValues.outcome(of: []) == .accepted)
        let store = try FuzzSeeds.freshStore()
        try await FuzzSeeds.elect(store)
        #expect(FuzzTarget.storeValues.outcome(of: try await FuzzSeeds.image(of: store).encoded()) == .accepted)
    }

    @Test("a job record that is not JSON is rejected, naming the namespace and the key")
    func undecodableJobRecordRejected() throws {
        let image = StoreImage(entries: [.init(.jobs, key: Array("word-count".utf8), value: Array("{".utf8))])
        let message = try #require(rejection(.storeValues, image.encoded()))
        #expect(message.contains("value of jobs/word-count is not a valid JobRecord"))
    }

    @Test("a leadership record that is not JSON is rejected, naming the record")
    func undecodableLeadershipRejected() throws {
        let image = StoreImage(entries: [.init(.leadership, key: HAStore.leadershipKeyBytes, value: Array("[]".utf8))])
        let message = try #require(rejection(.storeValues, image.encoded()))
        #expect(message.contains("leadership/current is not a valid LeadershipRecord"))
    }

    @Test("a store image cut inside an entry is rejected, naming the byte")
    func truncatedImageRejected() throws {
        let image = StoreImage(entries: [.init(.terms, key: StoreKey.uint64(1), value: Array("{}".utf8))])
        let message = try #require(rejection(.storeValues, Array(image.encoded().dropLast())))
        #expect(message.contains("runs past the end"))
    }

    // MARK: the checker

    @Test("an error that is not one the target documents is judged not clear")
    func foreignErrorIsUnclear() {
        let elsewhere = ConfigError(.badValue, file: "/elsewhere/ha.yaml", keyPath: "rpc", "a problem")
        guard case .unclear = FuzzTarget.config.judge(elsewhere) else {
            Issue.record("a config error naming another file passed as clear")
            return
        }
        guard case .unclear = FuzzTarget.frame.judge(CancellationError()) else {
            Issue.record("a cancellation passed as a clear frame error")
            return
        }
        #expect(FuzzTarget.config.judge(ConfigError(.badValue, file: ConfigTarget.configFile, keyPath: "rpc", "a problem")) == .rejected(message: "\(ConfigTarget.configFile): rpc: a problem"))
    }

    @Test("an error with an empty message is judged not clear")
    func emptyMessageIsUnclear() {
        guard case .unclear = FuzzTarget.storeValues.judge(FuzzTargetError("")) else {
            Issue.record("an empty message passed as clear")
            return
        }
    }
}
