public import BatonCore
public import BatonJobGraph
import BatonFiles
import Foundation

/// Where each source attempt started and where it stopped: the source's state (its position)
/// after its restore, and again when it ended, with how it ended. One small synced,
/// checksummed file per attempt, `<vertex>-<subtask>-<attempt>.range`, in
/// `<checkpoints.dir>/<job>/sources/`, written when the attempt stops (end of input, exhausted,
/// cancelled or failed). An attempt whose process was killed (kill -9) writes none.
///
/// They are the ground truth of what the sources emitted, against which the checkers judge a
/// sink's committed output (I4: the sources' final positions after a stop with drain) and the
/// failover benchmark counts records emitted twice (overlapping ranges of successive attempts).
public struct SourceRange: Sendable, Hashable {
    public enum Ending: UInt8, Sendable, Hashable {
        /// Its input was ended (stop with drain).
        case inputEnded = 0
        /// A bounded source produced everything.
        case exhausted = 1
        /// Cancelled or failed.
        case stopped = 2
    }

    public var vertex: JobVertexID
    public var subtask: Int
    public var attempt: Int
    /// The source operator's state after its restore (its first position), and when it stopped.
    public var start: [UInt8]
    public var end: [UInt8]
    public var ending: Ending

    public init(vertex: JobVertexID, subtask: Int, attempt: Int, start: [UInt8], end: [UInt8], ending: Ending) {
        self.vertex = vertex
        self.subtask = subtask
        self.attempt = attempt
        self.start = start
        self.end = end
        self.ending = ending
    }
}

/// A range file that cannot be read back: names the file and what is wrong.
public struct SourceRangeError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum SourceRanges {
    static let magic: [UInt8] = Array("BATONSR1".utf8)

    /// The folder of a job's source ranges.
    public static func directory(checkpoints: String, job: String) -> String { "\(checkpoints)/\(job)/sources" }

    /// Writes `range` durably (a temporary file renamed into place).
    public static func write(_ range: SourceRange, to directory: String) throws {
        var writer = BinaryWriter(capacity: 64 + range.start.count + range.end.count)
        for byte in magic { writer.write(byte) }
        writer.write(range.vertex.rawValue)
        writer.write(UInt64(range.subtask))
        writer.write(UInt64(range.attempt))
        writer.write(range.ending.rawValue)
        writer.write(bytes: range.start)
        writer.write(bytes: range.end)
        writer.write(UInt64(CRC32C.checksum(writer.bytes)))
        let path = "\(directory)/\(range.vertex)-\(range.subtask)-\(range.attempt).range"
        try DurableFiles.write(writer.bytes, to: path + ".tmp")
        try DurableFiles.rename(path + ".tmp", to: path)
    }

    /// Every range in `directory` (none when it does not exist), by vertex, subtask and attempt.
    public static func read(_ directory: String) throws -> [SourceRange] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return try names.filter { $0.hasSuffix(".range") }.sorted().map { try decode(try DurableFiles.read("\(directory)/\($0)"), path: "\(directory)/\($0)") }
            .sorted { ($0.vertex.rawValue, $0.subtask, $0.attempt) < ($1.vertex.rawValue, $1.subtask, $1.attempt) }
    }

    static func decode(_ bytes: [UInt8], path: String) throws -> SourceRange {
        guard bytes.count > magic.count + 8, Array(bytes.prefix(magic.count)) == magic else {
            throw SourceRangeError("\(path) is not a Baton source range file")
        }
        do {
            var reader = BinaryReader(bytes)
            for _ in magic { _ = try reader.readByte() }
            guard let vertex = JobVertexID(rawValue: try reader.readString()) else { throw SourceRangeError("\(path) names an invalid vertex") }
            let subtask = try reader.readUInt64()
            let attempt = try reader.readUInt64()
            guard subtask <= UInt64(Int32.max), attempt <= UInt64(Int32.max) else { throw SourceRangeError("\(path) holds a number out of range") }
            guard let ending = SourceRange.Ending(rawValue: try reader.readByte()) else { throw SourceRangeError("\(path) holds an unknown ending") }
            let start = try reader.readBytes()
            let end = try reader.readBytes()
            let covered = reader.offset
            let checksum = UInt32(truncatingIfNeeded: try reader.readUInt64())
            guard reader.isAtEnd, CRC32C.checksum(Array(bytes[0..<covered])) == checksum else {
                throw SourceRangeError("\(path) does not match its checksum: the file is damaged")
            }
            return SourceRange(vertex: vertex, subtask: Int(subtask), attempt: Int(attempt), start: start, end: end, ending: ending)
        } catch let error as SourceRangeError {
            throw error
        } catch {
            throw SourceRangeError("\(path) cannot be read: \(error)")
        }
    }
}

extension SourceRanges {
    /// Records the `sequence` sources of `graph` emitted more than once across attempts: per
    /// source subtask, what its attempts' ranges cover in all, less what their union covers (a
    /// restarted attempt that restores an earlier position emits that stretch again).
    public static func reemittedRecords(_ ranges: [SourceRange], graph: JobGraph) throws -> Int {
        var intervals: [String: [(start: Int64, end: Int64, step: Int64)]] = [:]
        for range in ranges {
            guard let vertex = graph.vertex(range.vertex), vertex.operators.first?.name == "sequence" else { continue }
            let step = Int64(vertex.parallelism)
            let (start, end) = (try SequenceSource.position(of: range.start), try SequenceSource.position(of: range.end))
            intervals["\(range.vertex)#\(range.subtask)", default: []].append((start, max(start, end), step))
        }
        var twice: Int64 = 0
        for list in intervals.values {
            let sorted = list.sorted { $0.start < $1.start }
            var covered: Int64 = 0
            var reach = Int64.min
            for interval in sorted {
                twice += (interval.end - interval.start) / interval.step
                let from = max(interval.start, reach)
                if interval.end > from { covered += (interval.end - from) / interval.step }
                reach = max(reach, interval.end)
            }
            twice -= covered
        }
        return Int(twice)
    }
}
