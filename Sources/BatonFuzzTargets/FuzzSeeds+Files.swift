import BatonCheckpointing
import BatonCore
import Foundation

/// The seeds of the `config`, `jobspec` and `checkpoint-metadata` targets: the repository's
/// configs and job specs, and checkpoint metadata from its codec.
extension FuzzSeeds {
    static func read(_ repository: String, _ path: String) throws -> String {
        try String(contentsOfFile: "\(repository)/\(path)", encoding: .utf8)
    }

    static func configSeeds(_ repository: String) throws -> [FuzzSeed] {
        var seeds: [FuzzSeed] = []
        // The shipped configs name secret files next to them, which do not exist where the target
        // reads from: as shipped they are refused; with the cluster secret inline and no REST
        // token file (REST without a token), accepted.
        for name in ["local", "local-lmdb"] {
            let text = try read(repository, "ha-config/\(name).yaml")
            seeds.append(FuzzSeed("invalid-\(name)-secret-file-missing.yaml", Array(text.utf8)))
            let secret = String(decoding: CheckpointMetadataTarget.clusterKey, as: UTF8.self)
            let inline = text.replacingOccurrences(of: "secretFile: data/cluster.secret", with: "secret: \(secret)")
                .split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("rest: { tokenFile:") }.joined(separator: "\n")
            precondition(inline.contains("secret: \(secret)"), "ha-config/\(name).yaml no longer names data/cluster.secret")
            seeds.append(FuzzSeed("valid-\(name).yaml", Array(inline.utf8)))
        }
        let valid = String(decoding: seeds.first { $0.name == "valid-local.yaml" }!.bytes, as: UTF8.self)
        func invalid(_ name: String, _ text: String) { seeds.append(FuzzSeed("invalid-\(name).yaml", Array(text.utf8))) }
        invalid("unknown-key", valid.replacingOccurrences(of: "election: { lease: 2s,", with: "election: { leases: 2s,"))
        invalid("bad-duration", valid.replacingOccurrences(of: "lease: 2s", with: "lease: 2 fortnights"))
        invalid("syntax", valid.replacingOccurrences(of: "store: { backend: sqlite,", with: "store: { backend: [sqlite,"))
        invalid("duplicate-master", valid.replacingOccurrences(of: "id: m2,", with: "id: m1,"))
        invalid("empty", "")
        return seeds
    }

    static func jobSpecSeeds(_ repository: String) throws -> [FuzzSeed] {
        var seeds: [FuzzSeed] = []
        for name in ["batch-word-count", "streaming-keyed-count", "chaos-keyed-count", "slot-sharing-resources"] {
            seeds.append(FuzzSeed("valid-\(name).yaml", Array(try read(repository, "examples/jobs/\(name).yaml").utf8)))
        }
        let valid = SampleJob.specText
        func invalid(_ name: String, _ text: String) { seeds.append(FuzzSeed("invalid-\(name).yaml", Array(text.utf8))) }
        invalid("unknown-key", valid.replacingOccurrences(of: "parallelism: 2\n    operators:\n      - sum", with: "parallelism: 2\n    paralelism: 3\n    operators:\n      - sum"))
        invalid("edge-into-a-source", valid + "  - { from: sum, to: tokenize, pattern: rebalance }\n")
        invalid("unknown-operator", valid.replacingOccurrences(of: "- tokenize\n", with: "- detokenize\n"))
        invalid("hash-edge-without-key", valid.replacingOccurrences(of: "pattern: hash, key: word,", with: "pattern: hash,"))
        invalid("zero-parallelism", valid.replacingOccurrences(of: "id: sum\n    parallelism: 2", with: "id: sum\n    parallelism: 0"))
        invalid("not-a-mapping", "- just\n- a list\n")
        return seeds
    }

    // MARK: checkpoint metadata

    static func checkpointSeeds() -> [FuzzSeed] {
        let value = CompletedCheckpointCodec.encode(sampleCheckpoint)
        var savepoint = sampleCheckpoint
        savepoint.isSavepoint = true
        savepoint.directory = "/var/baton/savepoints/savepoint-word-count-3"
        let file = CompletedCheckpointCodec.encodeFile(savepoint, key: CheckpointMetadataTarget.clusterKey)
        var damaged = file
        damaged[CompletedCheckpointCodec.fileMagic.count + 4] ^= 0x20
        let otherCluster = CompletedCheckpointCodec.encodeFile(savepoint, key: Array("another-cluster-secret".utf8))
        var otherFormat = value
        otherFormat[0] = 2
        // Numbers at their largest, on the wire at their longest: a byte off is past them.
        var largest = sampleCheckpoint
        largest.id = CheckpointID(rawValue: .max)
        largest.vertices = largest.vertices.map { .init(index: $0.index, id: $0.id, parallelism: Int(Int32.max)) }
        for key in largest.states.keys { largest.states[key]!.size = UInt64.max / UInt64(largest.states.count) }
        return [
            FuzzSeed("valid-store-value-largest-numbers.bin", CompletedCheckpointCodec.encode(largest)),
            FuzzSeed("valid-store-value.bin", value),
            FuzzSeed("valid-savepoint-metadata.bin", file),
            FuzzSeed("invalid-damaged-savepoint.bin", damaged),
            FuzzSeed("invalid-savepoint-of-another-cluster.bin", otherCluster),
            FuzzSeed("invalid-truncated-savepoint.bin", Array(file.dropLast(3))),
            FuzzSeed("invalid-truncated-store-value.bin", Array(value.dropLast(3))),
            FuzzSeed("invalid-trailing-bytes.bin", value + [0]),
            FuzzSeed("invalid-format.bin", otherFormat),
        ]
    }
}
