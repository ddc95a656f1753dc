@testable import BatonOperators
import BatonCore
import BatonProcessControl
import Foundation
import Testing

@Suite("text-file source, keyed totals and tokenizer")
struct StreamingOperatorTests {
    /// Every line every subtask reads, per subtask, until the source is exhausted.
    private func readAll(_ path: String, parallelism: Int, bufferBytes: Int) throws -> [[String]] {
        try (0..<parallelism).map { subtask in
            var source = try TextFileSource(path: path, subtask: subtask, parallelism: parallelism, bufferBytes: bufferBytes)
            var lines: [String] = []
            while try source.produce(limit: 7, emit: { record in
                guard case .line(let text) = record else { return }
                lines.append(text)
            }) {}
            return lines
        }
    }

    @Test("every line of a folder of files is read by exactly one subtask, in order, whatever the parallelism and buffer")
    func everyLineOnce() throws {
        let folder = try TemporaryDirectory("baton-text-source")
        defer { folder.remove() }
        var random = SeededRandom(seed: 7)
        var byFile: [String: [String]] = [:]
        for file in ["b.txt", "a.txt", "c.txt"] {
            var lines: [String] = []
            for index in 0..<(40 + Int(random.next() % 40)) {
                let length = Int(random.next() % 60)
                lines.append(file + "-\(index)-" + String(repeating: "x", count: length))
            }
            if file == "a.txt" { lines.insert("", at: 3) }
            // c.txt ends without a newline: its last line counts too.
            let text = lines.joined(separator: "\n") + (file == "c.txt" ? "" : "\n")
            try text.write(toFile: folder.file(file), atomically: false, encoding: .utf8)
            byFile[file] = lines
        }
        // One subtask reads the files in name order, each file's lines in order.
        let expected = ["a.txt", "b.txt", "c.txt"].flatMap { byFile[$0]! }
        try "hidden\n".write(toFile: folder.file(".hidden"), atomically: false, encoding: .utf8)
        for parallelism in 1...5 {
            for bufferBytes in [1, 5, 64, 1 << 20] {
                let shares = try readAll(folder.path, parallelism: parallelism, bufferBytes: bufferBytes)
                #expect(shares.flatMap { $0 }.sorted() == expected.sorted(), "parallelism \(parallelism), buffer \(bufferBytes)")
                if parallelism == 1 { #expect(shares[0] == expected) }
            }
        }
    }

    @Test("a restored text-file source goes on after the lines it had emitted")
    func restoreGoesOn() throws {
        let folder = try TemporaryDirectory("baton-text-source")
        defer { folder.remove() }
        let lines = (0..<100).map { "line \($0)" }
        try (lines.joined(separator: "\n") + "\n").write(toFile: folder.file("in.txt"), atomically: false, encoding: .utf8)
        var source = try TextFileSource(path: folder.file("in.txt"), subtask: 0, parallelism: 1, bufferBytes: 16)
        _ = try source.produce(limit: 37) { _ in }
        let state = try source.snapshotState(checkpoint: 1)
        var restored = try TextFileSource(path: folder.file("in.txt"), subtask: 0, parallelism: 1, bufferBytes: 16)
        try restored.restoreState(state, checkpoint: 1)
        var rest: [String] = []
        while try restored.produce(limit: 10, emit: { if case .line(let text) = $0 { rest.append(text) } }) {}
        #expect(rest == Array(lines[37...]))
    }

    @Test("a text-file source that names no file says which path")
    func missingPathNamed() {
        #expect(throws: OperatorError.self) { try TextFileSource(path: "/nonexistent/baton/words.txt", subtask: 0, parallelism: 1) }
        do {
            _ = try TextFileSource(path: "/nonexistent/baton/words.txt", subtask: 0, parallelism: 1)
        } catch {
            #expect("\(error)".contains("/nonexistent/baton/words.txt"))
        }
    }

    @Test("keyed totals add, grow, and survive their bytes; a state naming a key twice is refused")
    func keyedTotals() throws {
        var totals = KeyedTotals()
        var reference: [String: Int64] = [:]
        for index in 0..<50_000 {
            let key = "k\(index % 3_001)"
            let total = totals.add(Int64(index), to: key)
            reference[key, default: 0] += Int64(index)
            #expect(total == reference[key])
        }
        #expect(totals.count == reference.count)
        #expect(totals.sorted.map(\.key) == reference.keys.sorted())
        #expect(totals.sorted.allSatisfy { reference[$0.key] == $0.total })
        let decoded = try KeyedTotals(decoding: totals.encoded())
        #expect(decoded == totals)
        var writer = BinaryWriter()
        writer.write(UInt64(2))
        for _ in 0..<2 {
            writer.write("same")
            writer.write(signed: 1)
        }
        #expect(throws: BinaryDecodingError.self) { try KeyedTotals(decoding: writer.bytes) }
    }

    @Test("the tokenizer's ASCII path splits and lower-cases as the Unicode path does")
    func tokenizerPathsAgree() throws {
        let ascii = "The quick, BROWN fox--jumped over 42 lazy dogs!\tAgain\r\nx1y2 _under_score"
        var fast = TokenizeOperator()
        var words: [String] = []
        try fast.process(.line(ascii)) { if case .keyed(let word, 1) = $0 { words.append(word) } }
        let unicode = ascii.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
        #expect(words == unicode)
        var accented: [String] = []
        try fast.process(.line("Ça va, Élise? 3½")) { if case .keyed(let word, 1) = $0 { accented.append(word) } }
        #expect(accented == ["ça", "va", "élise", "3½"])
    }
}
