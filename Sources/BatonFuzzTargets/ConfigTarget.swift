import BatonConfig
import BatonJobGraph

/// The `config` and `jobspec` targets: the text of an ha-config or a job spec, parsed and
/// validated as `baton` does when it loads one. The bytes are read as UTF-8 (a byte that is not
/// becomes U+FFFD, so every input reaches the parser); the file lies in a folder that does not
/// exist, so the relative paths an input names resolve to nothing.
enum ConfigTarget {
    static let configFile = "/baton-fuzz/ha-config/ha.yaml"
    static let jobSpecFile = "/baton-fuzz/jobs/fuzzed-job.yaml"

    static func configuration(_ bytes: [UInt8]) throws -> HAConfiguration {
        try HAConfiguration.parse(text: String(decoding: bytes, as: UTF8.self), file: configFile)
    }

    static func jobGraph(_ bytes: [UInt8]) throws -> JobGraph {
        try JobSpec.parse(text: String(decoding: bytes, as: UTF8.self), file: jobSpecFile)
    }
}
