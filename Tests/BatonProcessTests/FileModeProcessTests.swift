import BatonConfig
import BatonProcessControl
import BatonStatus
import BatonTestKit
import BatonWire
import Foundation
import Testing

extension ProcessTests {
    /// The files a running group makes are its owner's alone, or what `files.mode` says.
    @Suite("file modes with real processes")
    struct FileModeProcessTests {
        let failover = FailoverProcessTests()

        /// Every file and folder the group's processes made under `directory` (not the test's own
        /// config, spec and logs), with its permission bits.
        func madeByTheGroup(_ directory: String) -> [(path: String, folder: Bool, mode: Int)] {
            var found: [(String, Bool, Int)] = []
            let enumerator = FileManager.default.enumerator(atPath: directory)
            while let relative = enumerator?.nextObject() as? String {
                // The test's own files, spill folders (0700 whatever the mode: one process's
                // scratch), and the REST token (a secret: 0600 whatever the mode).
                guard !relative.hasSuffix(".log"), !relative.hasSuffix(".yaml"), !relative.hasPrefix("data/spill"), relative != "rest.token" else { continue }
                let path = directory + "/" + relative
                guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                    let mode = attributes[.posixPermissions] as? Int
                else { continue }
                found.append((relative, attributes[.type] as? FileAttributeType == .typeDirectory, mode))
            }
            return found
        }

        @Test("store, member locks, checkpoints and sink output: 0600 files in 0700 folders by default, 0640 in 0750 with files.mode 0640", arguments: [nil, "0640"])
        func privateFiles(_ mode: String?) async throws {
            let group = try GroupHarness(backend: "sqlite", masters: 1, taskExecutors: 1, slots: 4, filesMode: mode)
            defer { group.stop() }
            try group.startGroup()
            let output = group.directory.file("out")
            try await failover.submitKeyedCount(group, records: 40_000, output: output, taskExecutors: 1)
            _ = try #require(
                await group.waitLive(timeout: .seconds(60)) { ($0.jobs.first?.lastCheckpoint.id ?? 0) >= 2 }, "\(group.logs)")
            let (file, folder) = mode == nil ? (0o600, 0o700) : (0o640, 0o750)
            let made = madeByTheGroup(group.directory.path)
            for kind in ["data/ha.sqlite", "data/ha.sqlite.members/m1.lock", "data/checkpoints/counts/chk-", "out/part-"] {
                #expect(made.contains { $0.path.hasPrefix(kind) }, "nothing made at \(kind): \(made.map(\.path))")
            }
            for entry in made {
                #expect(entry.mode == (entry.folder ? folder : file), "\(entry.path): \(String(entry.mode, radix: 8))")
            }
        }
    }
}
