/// The fuzz targets: each feeds bytes that reach a Baton process from outside (a peer's frames,
/// a config or job spec file, a savepoint file, what the HA store hands back) to the decoders the
/// process really uses, in the order it uses them.
///
/// The libFuzzer binary (`tools/baton-fuzz`, run by `tools/fuzz TARGET --seconds N`) and the
/// tests (`Tests/BatonFuzzTests`, which replay the committed corpus in `Fuzz/corpus/<target>/`)
/// both call `feed(_:)`: one entry per target, no second copy of any decoder.
///
/// Guarantees of `feed(_:)`: it returns when the decoders accept the input and throws the error
/// they raise when they reject it (an error that names what is wrong: the file, key, field or
/// byte offset). It never writes a file; the `config` and `jobspec` targets may read the files
/// an input names (a secret file), as the real parsers do. What it does not guarantee: that an
/// accepted input is one a correct peer would send (the decoders check form, not intent).
public enum FuzzTarget: String, CaseIterable, Sendable, CustomStringConvertible {
    /// A byte stream as an RPC connection receives it: the frame decoder splits it into frames
    /// (4-byte big-endian length, then the bytes), each frame decodes into an Envelope of this
    /// protocol version. A stream that ends inside a frame is rejected.
    case frame
    /// One Envelope (no length prefix), then every mapping a receiver applies to its body:
    /// deployments, attempts, task reports, checkpoint messages, a submitted job graph (JSON),
    /// a leader's status (JSON) and a data-plane record batch.
    case wire
    /// The text of an ha-config (`HAConfiguration.parse(text:file:)`).
    case config
    /// The text of a job spec (`JobSpec.parse(text:file:)`).
    case jobspec
    /// Checkpoint metadata: a savepoint's `_metadata` file (when the bytes start with its magic)
    /// or the value the store keeps for a retained checkpoint.
    case checkpointMetadata = "checkpoint-metadata"
    /// A store image (`StoreImage`): entries of the HA store, written with the store's own
    /// writer into an in-memory backend and read back by every reader a new leader, status and
    /// the audit use (leadership, terms, jobs and their change records and snapshots, checkpoint
    /// metadata, counters and history, the reconciliation journal, the job history).
    case storeValues = "store-values"

    public var description: String { rawValue }

    /// Feeds `bytes` to the target's decoders: returns when they accept them, throws their error
    /// when they do not.
    public func feed(_ bytes: [UInt8]) throws {
        switch self {
        case .frame: _ = try FrameTarget.envelopes(in: bytes)
        case .wire: try WireTarget.receive(bytes)
        case .config: _ = try ConfigTarget.configuration(bytes)
        case .jobspec: _ = try ConfigTarget.jobGraph(bytes)
        case .checkpointMetadata: try CheckpointMetadataTarget.read(bytes)
        case .storeValues: try StoreValuesTarget.read(bytes)
        }
    }
}
