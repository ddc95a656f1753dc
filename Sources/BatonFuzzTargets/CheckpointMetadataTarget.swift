import BatonCheckpointing

/// The `checkpoint-metadata` target: a savepoint's `_metadata` file, signed, when the bytes start
/// with its magic (what `baton submit --from-savepoint` reads), otherwise the store's value of a
/// retained checkpoint (what a new leader reads); then what a job started from it checks (every
/// vertex it holds state for against the job's graph) and what status shows (its size).
enum CheckpointMetadataTarget {
    /// The cluster key (`rpc.secret`) savepoint files are signed with here: the secret the config
    /// seeds give inline. A file signed otherwise is refused at its signature, before its body is
    /// read; the body is the store value's format, which inputs without the magic fuzz directly.
    static let clusterKey = Array("baton-fuzz-cluster-secret".utf8)

    static func read(_ bytes: [UInt8]) throws {
        let checkpoint: CompletedCheckpoint
        if bytes.starts(with: CompletedCheckpointCodec.fileMagic) {
            checkpoint = try CompletedCheckpointCodec.decodeFile(bytes, key: clusterKey)
        } else {
            checkpoint = try CompletedCheckpointCodec.decode(bytes)
        }
        _ = checkpoint.mismatches(with: SampleJob.graph)
        for vertex in checkpoint.vertices { _ = checkpoint.state(of: vertex.id, subtask: 0) }
        _ = checkpoint.size
    }
}
