import BatonConfig
import BatonJobGraph
import Foundation
import Testing

/// Where jobs may read and write: every path resolves, after symlinks and `..`, inside a root.
@Suite struct JobPathRootsTests {
    /// A fresh folder with `root/`, `root/data.txt`, a sibling `rootX/`, `outside/secret.txt`, and
    /// symlinks in `root`: `escape` -> `outside`, `inner` -> `root/sub`.
    func withTree(_ body: (String) throws -> Void) throws {
        let base = JobPathRoots.resolve(NSTemporaryDirectory() + "baton-roots-\(UInt32.random(in: 0...UInt32.max))")
        let manager = FileManager.default
        for folder in ["root/sub", "rootX", "outside"] { try manager.createDirectory(atPath: "\(base)/\(folder)", withIntermediateDirectories: true) }
        try "x".write(toFile: "\(base)/root/data.txt", atomically: true, encoding: .utf8)
        try "secret".write(toFile: "\(base)/outside/secret.txt", atomically: true, encoding: .utf8)
        try manager.createSymbolicLink(atPath: "\(base)/root/escape", withDestinationPath: "\(base)/outside")
        try manager.createSymbolicLink(atPath: "\(base)/root/inner", withDestinationPath: "\(base)/root/sub")
        defer { try? manager.removeItem(atPath: base) }
        try body(base)
    }

    @Test("paths inside a root pass, also ones not made yet and symlinks that stay inside")
    func insidePasses() throws {
        try withTree { base in
            let roots = JobPathRoots(["\(base)/root"])
            for path in ["\(base)/root", "\(base)/root/data.txt", "\(base)/root/out/part-0", "\(base)/root/sub/../data.txt", "\(base)/root/inner/x"] {
                #expect(roots.contains(path), "\(path)")
            }
        }
    }

    @Test("a symlink out, `..` out, a sibling that shares the root's prefix, and a relative path are refused, naming the path and the roots")
    func outsideRefused() throws {
        try withTree { base in
            let roots = JobPathRoots(["\(base)/root"])
            for path in ["\(base)/root/escape/secret.txt", "\(base)/root/../outside/secret.txt", "\(base)/rootX/file", "/etc/passwd", "\(base)/root/inner/../../outside"] {
                #expect(!roots.contains(path), "\(path)")
                let refusal = #expect(throws: JobPathRoots.Refusal.self) { try roots.check(path, named: "the test path") }
                #expect(refusal?.message.contains(path) == true && refusal?.message.contains("\(base)/root") == true, "\(String(describing: refusal))")
            }
            #expect(throws: JobPathRoots.Refusal.self) { try roots.check("data.txt", named: "a relative path") }
            // A root given through a symlink is the folder it names.
            #expect(JobPathRoots(["\(base)/root/escape"]).contains("\(base)/outside/secret.txt"))
        }
    }

    @Test("a job graph's path parameters are checked; by default the config's folder and the spec's folder are the roots")
    func graphAndDefaults() throws {
        try withTree { base in
            let spec = """
                name: reader
                vertices:
                  - id: src
                    parallelism: 1
                    operators: [ { text-file: { path: PATH } } ]
                  - id: sink
                    parallelism: 1
                    operators: [ { file-sink: { path: out, exactly-once: false } } ]
                edges: [ { from: src, to: sink, pattern: forward } ]
                """
            let inside = try JobSpec.parse(text: spec.replacingOccurrences(of: "PATH", with: "data.txt"), file: "\(base)/root/job.yaml")
            let outside = try JobSpec.parse(text: spec.replacingOccurrences(of: "PATH", with: "escape/secret.txt"), file: "\(base)/root/job.yaml")
            let configuration = try HAConfiguration.parse(
                text: """
                    rpc: { secret: a-secret-of-some-length }
                    store: { backend: sqlite, path: data/ha.sqlite }
                    masters:
                      - { id: m1, rpc: "127.0.0.1:6123", rest: "127.0.0.1:8081" }
                    """, file: "\(base)/rootX/ha.yaml")
            try configuration.jobPathRoots(specDirectory: "\(base)/root").check(inside)
            let refusal = #expect(throws: JobPathRoots.Refusal.self) { try configuration.jobPathRoots(specDirectory: "\(base)/root").check(outside) }
            #expect(refusal?.message.contains("vertex 'src' text-file path") == true, "\(String(describing: refusal))")
            // Without the spec's folder (a spec posted over REST) only the config's folder.
            #expect(throws: JobPathRoots.Refusal.self) { try configuration.jobPathRoots(specDirectory: nil).check(inside) }
            // jobs.allowedPaths replaces the default.
            var narrowed = configuration
            narrowed.jobAllowedPaths = ["\(base)/outside/none"]
            #expect(throws: JobPathRoots.Refusal.self) { try narrowed.jobPathRoots(specDirectory: "\(base)/root").check(inside) }
        }
    }
}
