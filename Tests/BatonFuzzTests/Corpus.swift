import BatonFuzzTargets
import Foundation

/// The repository's committed fuzz corpus (`Fuzz/corpus/<target>/`), found from this file.
enum Corpus {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func folder(_ target: FuzzTarget) -> URL {
        repository.appendingPathComponent("Fuzz/corpus/\(target.rawValue)")
    }

    /// Every file of a target's corpus, by name.
    static func files(_ target: FuzzTarget) throws -> [(name: String, bytes: [UInt8])] {
        let folder = folder(target)
        return try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted().map { name in
            (name, Array(try Data(contentsOf: folder.appendingPathComponent(name))))
        }
    }

    static func file(_ target: FuzzTarget, _ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: folder(target).appendingPathComponent(name)))
    }

    /// What a corpus file's name promises: `valid-` accepted, `invalid-` rejected; any other
    /// file (a regression, an input a fuzzing run added) only a clear outcome.
    enum Promise { case accepted, rejected, either }

    static func promise(_ name: String) -> Promise {
        if name.hasPrefix("valid-") { return .accepted }
        if name.hasPrefix("invalid-") { return .rejected }
        return .either
    }
}
