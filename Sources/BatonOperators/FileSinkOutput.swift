import Foundation

/// What a file sink committed, read back: `key,count` lines of a keyed count, whose counts go
/// 1, 2, 3, ... per key. Used to check exactly-once output (chaos) and to count records a
/// restart processed twice (an at-least-once sink repeats their lines).
public enum FileSinkOutput {
    /// How many committed lines, how many repeat an earlier one, how many counts are missing.
    public static func check(_ directory: String) throws -> (records: Int, duplicates: Int, gaps: Int) {
        var steps: [Substring: [Int64]] = [:]
        var records = 0
        for file in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where file.hasPrefix("part-") {
            let text = try String(contentsOfFile: "\(directory)/\(file)", encoding: .utf8)
            for line in text.split(separator: "\n") {
                guard let comma = line.lastIndex(of: ","), let value = Int64(line[line.index(after: comma)...]) else { continue }
                steps[line[..<comma], default: []].append(value)
                records += 1
            }
        }
        var duplicates = 0
        var gaps = 0
        for values in steps.values {
            let distinct = Set(values)
            duplicates += values.count - distinct.count
            let highest = max(0, Int(distinct.max() ?? 0))
            gaps += highest == 0 ? 0 : (1...highest).filter { !distinct.contains(Int64($0)) }.count
        }
        return (records, duplicates, gaps)
    }
}
