import BatonCore
import BatonElection
import BatonHAStore
import BatonProcessControl
import BatonTestKit
import Foundation
import Testing

/// Files that are not a usable store are refused with a clear error and left byte for byte unchanged.
@Suite("HA store refuses what it must not open")
struct HAStoreRefusalTests {
    /// Opens `path` read-write and read-only, expects `code` both times, and checks the file is unchanged.
    func expectRefused(_ fixture: StoreFixture, _ code: HAStoreError.Code, mentioning words: [String] = []) throws {
        let before = FileBytes.read(fixture.path)
        for access in [StoreAccess.readWrite, .readOnly] {
            let error = try #require(throws: HAStoreError.self) { try fixture.open(access) }
            #expect(error.code == code, "\(error)")
            #expect(error.path == fixture.path)
            #expect(error.description.contains(fixture.path))
            for word in words { #expect(error.message.contains(word), "\(error.message) should mention \(word)") }
        }
        #expect(FileBytes.read(fixture.path) == before, "a refused store file must be left unchanged")
    }

    /// A store with one job whose value holds a distinctive marker, closed.
    func storeWithMarker(_ backend: Backend) async throws -> (StoreFixture, [UInt8]) {
        let fixture = try StoreFixture(backend)
        let marker = Array("MARKER-0123456789-MARKER".utf8)
        let store = try fixture.open()
        let epoch = try await store.winVacant(candidate("m1"))
        try await store.write(fencedBy: epoch) { try $0.put(.jobs, StoreKey.text("job"), bytes: marker) }
        return (fixture, marker)
    }

    @Test("a text file, an empty file and a directory are not stores", arguments: Backend.files)
    func notAStore(_ backend: Backend) throws {
        let fixture = try StoreFixture(backend)
        defer { fixture.remove() }
        try FileBytes.write(Array("cluster: local\nthis is not a store\n".utf8), to: fixture.path)
        try expectRefused(fixture, .notAStore)
        try FileBytes.write([], to: fixture.path)
        try expectRefused(fixture, .notAStore, mentioning: ["empty"])
        try FileManager.default.removeItem(atPath: fixture.path)
        try FileManager.default.createDirectory(atPath: fixture.path, withIntermediateDirectories: false)
        let error = try #require(throws: HAStoreError.self) { try fixture.open() }
        #expect(error.code == .notAStore)
        #expect(error.message.contains("directory"))
    }

    @Test("a file of the other backend is refused", arguments: Backend.files)
    func otherBackend(_ backend: Backend) async throws {
        let other = backend == .sqlite ? Backend.lmdb : .sqlite
        let (source, _) = try await storeWithMarker(other)
        defer { source.remove() }
        let fixture = try StoreFixture(backend)
        defer { fixture.remove() }
        try FileBytes.write(FileBytes.read(source.path)!, to: fixture.path)
        try expectRefused(fixture, .notAStore)
    }

    @Test("a database of the backend that is not a Baton store is foreign")
    func foreignSQLite() throws {
        let fixture = try StoreFixture(.sqlite)
        defer { fixture.remove() }
        let made = try BatonProcess.run([fixture.path, "CREATE TABLE t(x); INSERT INTO t VALUES (1);"], executable: "/usr/bin/sqlite3")
        try #require(made.status == 0, "sqlite3 is needed for this test: \(made.output)")
        try expectRefused(fixture, .foreignFormat, mentioning: ["not a Baton HA store"])
    }

    @Test("a store written by a newer format version is refused", arguments: Backend.files)
    func newerVersion(_ backend: Backend) async throws {
        let fixture = try StoreFixture(backend)
        defer { fixture.remove() }
        do {
            let store = try fixture.open()
            try await store.unfencedWrite { try $0.put(.meta, StoreKey.text("version"), bytes: StoreKey.text("2")) }
        }
        if backend == .sqlite {
            // The SQLite header carries the version too (user_version, offset 60): make it newer as well.
            var bytes = try #require(FileBytes.read(fixture.path))
            bytes[63] = 2
            try FileBytes.write(bytes, to: fixture.path)
        }
        try expectRefused(fixture, .newerVersion, mentioning: ["version 2", "upgrade baton"])
    }

    @Test("a truncated store is refused", arguments: Backend.files)
    func truncated(_ backend: Backend) async throws {
        let (fixture, _) = try await storeWithMarker(backend)
        defer { fixture.remove() }
        let bytes = try #require(FileBytes.read(fixture.path))
        for length in [bytes.count - 4096, 4096 + 100, 60] {
            try FileBytes.write(Array(bytes.prefix(length)), to: fixture.path)
            let error = try #require(throws: HAStoreError.self) { try fixture.open(.readOnly) }
            #expect([.truncated, .corrupt].contains(error.code), "\(length) bytes: \(error)")
            #expect(FileBytes.read(fixture.path)?.count == length)
        }
    }

    @Test("a flipped byte in a stored value fails its checksum at open", arguments: Backend.files)
    func corruptValue(_ backend: Backend) async throws {
        let (fixture, marker) = try await storeWithMarker(backend)
        defer { fixture.remove() }
        var bytes = try #require(FileBytes.read(fixture.path))
        let offsets = Self.occurrences(of: marker, in: bytes)
        try #require(!offsets.isEmpty, "the marker must be in the file")
        for offset in offsets { bytes[offset + 8] ^= 0x01 }
        try FileBytes.write(bytes, to: fixture.path)
        try expectRefused(fixture, .corrupt, mentioning: ["checksum"])
    }

    @Test("a reader that skips the scan at open still refuses the damaged value when it reads it", arguments: Backend.files)
    func readerSkipsScanButVerifiesReads(_ backend: Backend) async throws {
        let (fixture, marker) = try await storeWithMarker(backend)
        defer { fixture.remove() }
        var bytes = try #require(FileBytes.read(fixture.path))
        for offset in Self.occurrences(of: marker, in: bytes) { bytes[offset + 8] ^= 0x01 }
        try FileBytes.write(bytes, to: fixture.path)
        let store = try fixture.open(.readOnly, options: StoreOptions(checkIntegrityOnOpen: false))
        #expect(try await store.leadership() != nil, "what is intact reads")
        let error = try #require(throws: HAStoreError.self) { try store.readBlocking { try $0.entries(.jobs).count } }
        #expect(error.code == .corrupt)
    }

    @Test("damaged SQLite pages fail the integrity check at open")
    func corruptSQLitePage() async throws {
        let (fixture, _) = try await storeWithMarker(.sqlite)
        defer { fixture.remove() }
        var bytes = try #require(FileBytes.read(fixture.path))
        // Page 2 is the root of the first table: garble its b-tree header.
        for index in 4096..<(4096 + 12) { bytes[index] = 0xFF }
        try FileBytes.write(bytes, to: fixture.path)
        try expectRefused(fixture, .corrupt)
    }

    @Test("a damaged LMDB meta page is refused")
    func corruptLMDBMeta() async throws {
        let (fixture, _) = try await storeWithMarker(.lmdb)
        defer { fixture.remove() }
        var bytes = try #require(FileBytes.read(fixture.path))
        bytes[16] ^= 0xFF  // the magic number of the first meta page
        try FileBytes.write(bytes, to: fixture.path)
        try expectRefused(fixture, .notAStore)
    }

    @Test("a full LMDB map is a clear error naming store.mapSize, and what was committed stays")
    func lmdbMapFull() async throws {
        let fixture = try StoreFixture(.lmdb)
        defer { fixture.remove() }
        let store = try fixture.open(options: StoreOptions(mapSizeBytes: 1 << 20))
        let epoch = try await store.winVacant(candidate("m1"))
        var written = 0
        var failure: HAStoreError?
        while failure == nil && written < 1000 {
            do {
                let key = StoreKey.uint64(UInt64(written))
                try await store.write(fencedBy: epoch) { writer in
                    try writer.put(.jobs, key, bytes: [UInt8](repeating: 7, count: 64 * 1024))
                }
                written += 1
            } catch let error as HAStoreError {
                failure = error
            }
        }
        let error = try #require(failure)
        #expect(error.code == .full)
        #expect(error.message.contains("store.mapSize"))
        #expect(try await store.read { try $0.entries(.jobs).count } == written)
        #expect(try await store.integrityProblems().isEmpty)
    }

    @Test("the same LMDB store cannot be opened twice in one process")
    func lmdbDoubleOpen() async throws {
        try await StoreFixture.with(.lmdb) { fixture, store in
            let error = try #require(throws: HAStoreError.self) { try fixture.open(.readOnly) }
            #expect(error.message.contains("already open in this process"))
            _ = store
        }
    }

    static func occurrences(of needle: [UInt8], in haystack: [UInt8]) -> [Int] {
        guard needle.count <= haystack.count else { return [] }
        return (0...(haystack.count - needle.count)).filter { start in
            haystack[start] == needle[0] && Array(haystack[start..<(start + needle.count)]) == needle
        }
    }
}
