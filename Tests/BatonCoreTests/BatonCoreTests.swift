import BatonCore
import Testing

@Suite("core vocabulary")
struct BatonCoreTests {
    @Test("durations parse as people write them and print back the same way")
    func durations() {
        #expect(DurationText.parse("2s") == .seconds(2))
        #expect(DurationText.parse("500ms") == .milliseconds(500))
        #expect(DurationText.parse("1.5s") == .milliseconds(1500))
        #expect(DurationText.parse("1m") == .seconds(60))
        #expect(DurationText.parse("250us") == .microseconds(250))
        #expect(DurationText.parse("2") == nil)
        #expect(DurationText.parse("s") == nil)
        #expect(DurationText.parse("-1s") == nil)
        #expect(DurationText.parse("2 weeks") == nil)
        #expect(DurationText.format(.seconds(2)) == "2s")
        #expect(DurationText.format(.milliseconds(500)) == "500ms")
        #expect(DurationText.format(.milliseconds(1500)) == "1.5s")
    }

    @Test("sizes parse in binary and decimal units")
    func sizes() {
        #expect(ByteSizeText.parse("1GiB") == 1 << 30)
        #expect(ByteSizeText.parse("512MiB") == 512 << 20)
        #expect(ByteSizeText.parse("4096") == 4096)
        #expect(ByteSizeText.parse("1.5GiB") == nil)
        #expect(ByteSizeText.format(1 << 30) == "1GiB")
    }

    @Test("CRC-32C matches the standard check value and composes")
    func crc() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        let whole = CRC32C.checksum(Array("hello world".utf8))
        #expect(CRC32C.update(CRC32C.checksum(Array("hello ".utf8)), Array("world".utf8)) == whole)
    }

    @Test("wall time prints as ISO 8601 in UTC")
    func wallTime() {
        #expect(WallTime(millisecondsSince1970: 0).iso8601 == "1970-01-01T00:00:00.000Z")
        #expect(WallTime(millisecondsSince1970: 1_795_622_731_042).iso8601 == "2026-11-25T16:05:31.042Z")
    }

    @Test("identifiers accept file-safe names only")
    func identifiers() {
        #expect(Identifier(rawValue: "m1") != nil)
        #expect(Identifier(rawValue: "te-1.a_b") != nil)
        #expect(Identifier(rawValue: "") == nil)
        #expect(Identifier(rawValue: "a/b") == nil)
        #expect(Identifier(rawValue: "..") == nil)
        #expect(Identifier(rawValue: String(repeating: "x", count: 65)) == nil)
    }

    @Test("a seed reproduces the same random sequence")
    func seededRandom() {
        var a = SeededRandom(seed: 42)
        var b = SeededRandom(seed: 42)
        var c = SeededRandom(seed: 43)
        let first = (0..<8).map { _ in a.next() }
        #expect(first == (0..<8).map { _ in b.next() })
        #expect(first != (0..<8).map { _ in c.next() })
    }

    @Test("monotonic instants add durations and measure differences")
    func instants() {
        let start = MonotonicInstant(nanoseconds: 1_000)
        #expect((start + .microseconds(1)).since(start) == .microseconds(1))
        #expect(start.since(start + .seconds(1)) == .seconds(-1))
        #expect((start + .seconds(-1)) == .zero)
    }
}
