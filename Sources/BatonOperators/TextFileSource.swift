public import BatonCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The lines of a text file, or of every file in a folder (in name order, hidden files left
/// out), read as a stream: memory stays at one read buffer however large the input.
///
/// Each file is cut into `parallelism` byte ranges, as Flink and Hadoop split files; subtask `i`
/// reads range `i` of every file. A line belongs to the range its first byte is in, so every
/// line is read by exactly one subtask whatever the cuts. Lines end at `\n`; a last line without
/// one is a line too.
///
/// State: how many lines this subtask has emitted; a restore reads past that many again.
public struct TextFileSource: SourceOperator {
    /// One byte range of one file.
    struct Split: Sendable, Equatable {
        var path: String
        var start: Int
        var end: Int
    }

    let splits: [Split]
    let bufferBytes: Int
    /// Lines emitted (the state).
    private(set) var position = 0
    private var reader: SplitReader?
    private var split = 0
    public var rate: Double? { nil }

    init(path: String, subtask: Int, parallelism: Int, bufferBytes: Int = 1 << 20) throws {
        self.bufferBytes = bufferBytes
        splits = try Self.files(at: path).map { file, size in
            Split(path: file, start: size * subtask / parallelism, end: size * (subtask + 1) / parallelism)
        }
    }

    /// The regular files `path` names (itself, or those in the folder) with their sizes.
    static func files(at path: String) throws -> [(String, Int)] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw OperatorError("operator 'text-file' cannot read '\(path)': no such file or folder")
        }
        let paths: [String]
        if isDirectory.boolValue {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else {
                throw OperatorError("operator 'text-file' cannot list the folder '\(path)'")
            }
            paths = names.filter { !$0.hasPrefix(".") }.sorted().map { "\(path)/\($0)" }.filter { file in
                var folder: ObjCBool = false
                return FileManager.default.fileExists(atPath: file, isDirectory: &folder) && !folder.boolValue
            }
        } else {
            paths = [path]
        }
        return try paths.map { file in
            guard access(file, R_OK) == 0, let attributes = try? FileManager.default.attributesOfItem(atPath: file),
                let size = (attributes[.size] as? NSNumber)?.intValue
            else { throw OperatorError("operator 'text-file' cannot read '\(file)'") }
            return (file, size)
        }
    }

    public mutating func snapshotState(checkpoint: CheckpointID) throws -> [UInt8] {
        var writer = BinaryWriter(capacity: 9)
        writer.write(position)
        return writer.bytes
    }

    public mutating func restoreState(_ state: [UInt8]?, checkpoint: CheckpointID?) throws {
        reader = nil
        split = 0
        position = 0
        guard let state else { return }
        let emitted: Int
        do {
            var reader = BinaryReader(state)
            emitted = max(0, try reader.readInt())
        } catch {
            throw stateError("text-file", error)
        }
        _ = try produce(limit: emitted) { _ in }
    }

    public mutating func produce(limit: Int, emit: (Record) throws -> Void) throws -> Bool {
        var emitted = 0
        while emitted < limit {
            if reader == nil {
                guard split < splits.count else { return false }
                reader = try SplitReader(splits[split], bufferBytes: bufferBytes)
            }
            if let line = try reader!.nextLine() {
                position += 1
                emitted += 1
                try emit(.line(line))
            } else {
                reader = nil
                split += 1
            }
        }
        return split < splits.count
    }
}

/// Reads the lines that start in one byte range of a file, a buffer at a time.
final class SplitReader: @unchecked Sendable {
    // @unchecked: used by the one task that runs the source.
    private let descriptor: Int32
    private let path: String
    private var buffer: [UInt8]
    /// The file offset of `buffer[0]`.
    private var bufferOffset: Int
    private var cursor = 0
    private var count = 0
    private var atEndOfFile = false
    private let end: Int

    init(_ split: TextFileSource.Split, bufferBytes: Int) throws {
        path = split.path
        descriptor = open(split.path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw OperatorError("operator 'text-file' cannot open '\(split.path)': errno \(errno)") }
        end = split.end
        buffer = [UInt8](repeating: 0, count: max(1, bufferBytes))
        // A range that starts inside a line leaves that line to the range before: start after
        // the first newline at or after `start - 1`.
        bufferOffset = max(0, split.start - 1)
        guard lseek(descriptor, off_t(bufferOffset), SEEK_SET) >= 0 else {
            close(descriptor)
            throw OperatorError("operator 'text-file' cannot seek in '\(split.path)': errno \(errno)")
        }
        if split.start > 0 {
            while true {
                if cursor == count {
                    guard try fill() else { break }
                }
                let byte = buffer[cursor]
                cursor += 1
                if byte == UInt8(ascii: "\n") { break }
            }
        }
    }

    deinit { close(descriptor) }

    /// The next line whose first byte is in the range, without its `\n`; nil past the range.
    func nextLine() throws -> String? {
        if cursor == count {
            guard try fill() else { return nil }
        }
        guard bufferOffset + cursor < end else { return nil }
        var lineStart = cursor
        var carried: [UInt8] = []
        while true {
            if let newline = buffer[cursor..<count].firstIndex(of: UInt8(ascii: "\n")) {
                cursor = newline + 1
                if carried.isEmpty { return String(decoding: buffer[lineStart..<newline], as: UTF8.self) }
                carried += buffer[lineStart..<newline]
                return String(decoding: carried, as: UTF8.self)
            }
            // The line runs past the buffer: keep what is here and read on.
            carried += buffer[lineStart..<count]
            cursor = count
            guard try fill() else { return String(decoding: carried, as: UTF8.self) }
            lineStart = cursor
        }
    }

    /// Reads the next buffer; false at the end of the file.
    private func fill() throws -> Bool {
        guard !atEndOfFile else { return false }
        bufferOffset += count
        let read = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
        guard read >= 0 else { throw OperatorError("operator 'text-file' cannot read '\(path)': errno \(errno)") }
        cursor = 0
        count = read
        if read == 0 { atEndOfFile = true }
        return read > 0
    }
}
