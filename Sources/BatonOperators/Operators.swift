public import BatonCore
public import BatonJobGraph
import Foundation

/// Where an operator runs: its subtask, and whether its input is bounded (every input result is
/// blocking, or it is a bounded source), in which case aggregations emit their final values at
/// the end of input instead of every update.
public struct OperatorContext: Sendable {
    public var jobVertex: JobVertexID
    public var subtask: Int
    public var parallelism: Int
    public var attempt: Int
    public var boundedInput: Bool

    public init(jobVertex: JobVertexID, subtask: Int, parallelism: Int, attempt: Int, boundedInput: Bool) {
        self.jobVertex = jobVertex
        self.subtask = subtask
        self.parallelism = parallelism
        self.attempt = attempt
        self.boundedInput = boundedInput
    }
}

/// A bad operator parameter, naming the operator and the parameter.
public struct OperatorError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// An operator's part in checkpoints: its state goes into every checkpoint and comes back on a
/// restore; a sink stages its output at a checkpoint and commits it once the checkpoint is complete.
public protocol CheckpointedOperator {
    /// The operator's state as of the barrier of checkpoint `checkpoint`.
    mutating func snapshotState(checkpoint: CheckpointID) throws -> [UInt8]
    /// The same for a savepoint written to `savepointDirectory` (nil for a checkpoint): what a
    /// savepoint's state names must stay there, whatever the running job does afterwards.
    mutating func snapshotState(checkpoint: CheckpointID, savepointDirectory: String?) throws -> [UInt8]
    /// Restores the state of checkpoint `checkpoint` before any record is processed; `state` nil
    /// means an attempt restarted with no completed checkpoint (start afresh, drop leftovers).
    mutating func restoreState(_ state: [UInt8]?, checkpoint: CheckpointID?) throws
    /// Checkpoint `id` is complete: make its output visible (idempotent).
    mutating func checkpointCompleted(_ id: CheckpointID) throws
}

extension CheckpointedOperator {
    public mutating func snapshotState(checkpoint: CheckpointID) throws -> [UInt8] { [] }
    public mutating func snapshotState(checkpoint: CheckpointID, savepointDirectory: String?) throws -> [UInt8] {
        try snapshotState(checkpoint: checkpoint)
    }
    public mutating func restoreState(_ state: [UInt8]?, checkpoint: CheckpointID?) throws {}
    public mutating func checkpointCompleted(_ id: CheckpointID) throws {}
}

/// A state that does not decode: the operator names what it could not read.
func stateError(_ operation: String, _ error: any Error) -> OperatorError {
    OperatorError("operator '\(operation)' cannot restore its state: \(error)")
}

/// The first operator of a source vertex's chain.
public protocol SourceOperator: Sendable, CheckpointedOperator {
    /// Emits up to `limit` records; returns false once the source is exhausted.
    mutating func produce(limit: Int, emit: (Record) throws -> Void) throws -> Bool
    /// Records per second this source is limited to (nil: as fast as it can).
    var rate: Double? { get }
}

/// Any other operator of a chain.
public protocol StreamOperator: Sendable, CheckpointedOperator {
    /// Records per second this operator lets through at most (nil: no limit); the task waits.
    var pacing: Double? { get }
    mutating func process(_ record: Record, emit: (Record) throws -> Void) throws
    /// Time passed (processing time): windows close here.
    mutating func advance(to now: WallTime, emit: (Record) throws -> Void) throws
    /// The input ended: emit what is left, close files.
    mutating func finish(emit: (Record) throws -> Void) throws
}

extension StreamOperator {
    public var pacing: Double? { nil }
    public mutating func advance(to now: WallTime, emit: (Record) throws -> Void) throws {}
    public mutating func finish(emit: (Record) throws -> Void) throws {}
}

/// Builds the operators a job spec names (the built-ins of the operator catalog).
public enum OperatorFactory {
    public static func source(_ spec: OperatorSpec, context: OperatorContext) throws -> any SourceOperator {
        switch spec.name {
        case "sequence":
            let from = try int64(spec, "from") ?? 0
            let to = try int64(spec, "to")
            let keys = try int64(spec, "keys") ?? 16
            guard keys >= 1 else { throw OperatorError("operator 'sequence' parameter 'keys' must be at least 1") }
            let rate = try double(spec, "rate")
            return SequenceSource(from: from, to: to, keys: keys, subtask: Int64(context.subtask), parallelism: Int64(context.parallelism), rate: rate)
        case "text-file":
            let path = spec.parameters["path"] ?? ""
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw OperatorError("operator 'text-file' cannot read '\(path)'")
            }
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let mine = lines.enumerated().filter { $0.offset % context.parallelism == context.subtask }.map(\.element)
            return TextFileSource(lines: mine.last == "" ? Array(mine.dropLast()) : mine)
        default:
            throw OperatorError("'\(spec.name)' is not a source operator")
        }
    }

    public static func transform(_ spec: OperatorSpec, context: OperatorContext) throws -> any StreamOperator {
        switch spec.name {
        case "map": return MapOperator(function: try MapOperator.Function(spec.parameters["function"] ?? ""))
        case "filter": return FilterOperator(predicate: try FilterOperator.Predicate(spec.parameters["predicate"] ?? ""))
        case "tokenize": return TokenizeOperator()
        case "sum": return AggregateOperator(kind: .sum, emitOnlyAtEnd: context.boundedInput)
        case "count": return AggregateOperator(kind: .count, emitOnlyAtEnd: context.boundedInput)
        case "tumbling-window":
            guard let size = spec.parameters["size"].flatMap(DurationText.parse), size > .zero else {
                throw OperatorError("operator 'tumbling-window' parameter 'size' must be a duration like 1s")
            }
            let aggregate = spec.parameters["aggregate"] ?? "count"
            guard let kind = AggregateOperator.Kind(rawValue: aggregate) else {
                throw OperatorError("operator 'tumbling-window' parameter 'aggregate' must be count or sum, not '\(aggregate)'")
            }
            return TumblingWindowOperator(size: size, kind: kind)
        case "file-sink":
            let exactlyOnce = spec.parameters["exactly-once"].map { $0 == "true" } ?? true
            return try FileSinkOperator(directory: spec.parameters["path"] ?? "", context: context, exactlyOnce: exactlyOnce)
        case "print": return PrintOperator(prefix: "\(context.jobVertex)[\(context.subtask)]")
        case "throttle":
            guard let rate = try double(spec, "rate") else { throw OperatorError("operator 'throttle' needs the parameter 'rate'") }
            return ThrottleOperator(pacing: rate)
        case "discard": return DiscardOperator()
        default:
            throw OperatorError("unknown operator '\(spec.name)'")
        }
    }

    private static func int64(_ spec: OperatorSpec, _ name: String) throws -> Int64? {
        guard let text = spec.parameters[name] else { return nil }
        guard let value = Int64(text) else { throw OperatorError("operator '\(spec.name)' parameter '\(name)': '\(text)' is not a whole number") }
        return value
    }

    private static func double(_ spec: OperatorSpec, _ name: String) throws -> Double? {
        guard let text = spec.parameters[name] else { return nil }
        guard let value = Double(text), value > 0 else { throw OperatorError("operator '\(spec.name)' parameter '\(name)': '\(text)' is not a positive number") }
        return value
    }
}

/// Numbers `from..<to` (or without end), this subtask's share (n ≡ subtask mod parallelism), as
/// records `(k<n mod keys>, n)`.
public struct SequenceSource: SourceOperator {
    public private(set) var next: Int64
    let to: Int64?
    let keys: Int64
    let step: Int64
    public let rate: Double?

    init(from: Int64, to: Int64?, keys: Int64, subtask: Int64, parallelism: Int64, rate: Double?) {
        let offset = ((subtask - from) % parallelism + parallelism) % parallelism
        next = from + offset
        self.to = to
        self.keys = keys
        self.step = parallelism
        self.rate = rate
    }

    public mutating func snapshotState(checkpoint: CheckpointID) throws -> [UInt8] {
        var writer = BinaryWriter(capacity: 9)
        writer.write(signed: next)
        return writer.bytes
    }

    public mutating func restoreState(_ state: [UInt8]?, checkpoint: CheckpointID?) throws {
        guard let state else { return }
        next = try Self.position(of: state)
    }

    /// The next number a sequence whose state is `state` emits.
    public static func position(of state: [UInt8]) throws -> Int64 {
        do {
            var reader = BinaryReader(state)
            let next = try reader.readInt64()
            guard reader.isAtEnd else { throw BinaryDecodingError(offset: reader.offset, problem: "trailing bytes") }
            return next
        } catch {
            throw stateError("sequence", error)
        }
    }

    public mutating func produce(limit: Int, emit: (Record) throws -> Void) throws -> Bool {
        for _ in 0..<limit {
            if let to, next >= to { return false }
            try emit(.keyed(key: "k\(next % keys)", value: next))
            next += step
        }
        return to.map { next < $0 } ?? true
    }
}

public struct TextFileSource: SourceOperator {
    let lines: [String]
    var position = 0
    public var rate: Double? { nil }

    public mutating func snapshotState(checkpoint: CheckpointID) throws -> [UInt8] {
        var writer = BinaryWriter(capacity: 9)
        writer.write(position)
        return writer.bytes
    }

    public mutating func restoreState(_ state: [UInt8]?, checkpoint: CheckpointID?) throws {
        guard let state else { return }
        do {
            var reader = BinaryReader(state)
            position = min(lines.count, max(0, try reader.readInt()))
        } catch {
            throw stateError("text-file", error)
        }
    }

    public mutating func produce(limit: Int, emit: (Record) throws -> Void) throws -> Bool {
        let end = min(lines.count, position + limit)
        while position < end {
            try emit(.line(lines[position]))
            position += 1
        }
        return position < lines.count
    }
}

public struct MapOperator: StreamOperator {
    public enum Function: String, Sendable {
        case identity, uppercase, lowercase, double, increment
        init(_ text: String) throws {
            guard let function = Function(rawValue: text) else {
                throw OperatorError("operator 'map' parameter 'function': '\(text)' is not one of identity, uppercase, lowercase, double, increment")
            }
            self = function
        }
    }
    let function: Function

    public mutating func process(_ record: Record, emit: (Record) throws -> Void) throws {
        switch (function, record) {
        case (.identity, _): try emit(record)
        case (.uppercase, .line(let text)): try emit(.line(text.uppercased()))
        case (.uppercase, .keyed(let key, let value)): try emit(.keyed(key: key.uppercased(), value: value))
        case (.lowercase, .line(let text)): try emit(.line(text.lowercased()))
        case (.lowercase, .keyed(let key, let value)): try emit(.keyed(key: key.lowercased(), value: value))
        case (.double, .keyed(let key, let value)): try emit(.keyed(key: key, value: value &* 2))
        case (.increment, .keyed(let key, let value)): try emit(.keyed(key: key, value: value &+ 1))
        case (.double, .line), (.increment, .line): try emit(record)
        }
    }
}

public struct FilterOperator: StreamOperator {
    public enum Predicate: String, Sendable {
        case valueEven = "value-even", valueOdd = "value-odd", nonEmpty = "non-empty"
        init(_ text: String) throws {
            guard let predicate = Predicate(rawValue: text) else {
                throw OperatorError("operator 'filter' parameter 'predicate': '\(text)' is not one of value-even, value-odd, non-empty")
            }
            self = predicate
        }
    }
    let predicate: Predicate

    public mutating func process(_ record: Record, emit: (Record) throws -> Void) throws {
        let keep: Bool
        switch (predicate, record) {
        case (.valueEven, .keyed(_, let value)): keep = value % 2 == 0
        case (.valueOdd, .keyed(_, let value)): keep = value % 2 != 0
        case (.nonEmpty, .line(let text)): keep = !text.isEmpty
        case (.nonEmpty, .keyed(let key, _)): keep = !key.isEmpty
        case (.valueEven, .line), (.valueOdd, .line): keep = false
        }
        if keep { try emit(record) }
    }
}

/// Splits lines into lower-case words: one `(word, 1)` per word.
public struct TokenizeOperator: StreamOperator {
    public mutating func process(_ record: Record, emit: (Record) throws -> Void) throws {
        guard case .line(let text) = record else { return try emit(record) }
        for word in text.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }) {
            try emit(.keyed(key: String(word), value: 1))
        }
    }
}

/// Per-key sum of values or count of records: an update per record (streaming), or the final
/// values at the end of a bounded input (batch).
public struct AggregateOperator: StreamOperator {
    public enum Kind: String, Sendable { case sum, count }
    let kind: Kind
    let emitOnlyAtEnd: Bool
    public private(set) var totals: [String: Int64] = [:]

    public mutating func process(_ record: Record, emit: (Record) throws -> Void) throws {
        let key = record.key
        let increment: Int64
        switch (kind, record) {
        case (.sum, .keyed(_, let value)): increment = value
        default: increment = 1
        }
        let total = (totals[key] ?? 0) &+ increment
        totals[key] = total
        if !emitOnlyAtEnd { try emit(.keyed(key: key, value: total)) }
    }

    public mutating func snapshotState(checkpoint: CheckpointID) throws -> [UInt8] { KeyedTotals.encode(totals) }

    public mutating func restoreState(_ state: [UInt8]?, checkpoint: CheckpointID?) throws {
        guard let state else { return }
        do { totals = try KeyedTotals.decode(state) } catch { throw stateError(kind.rawValue, error) }
    }

    public mutating func finish(emit: (Record) throws -> Void) throws {
        guard emitOnlyAtEnd else { return }
        for key in totals.keys.sorted() { try emit(.keyed(key: key, value: totals[key]!)) }
    }
}

/// Processing-time tumbling windows: per key, the count or sum of each window, emitted when the
/// window closes (and what is open at the end of input).
public struct TumblingWindowOperator: StreamOperator {
    let size: Duration
    let kind: AggregateOperator.Kind
    var windowEnd: WallTime?
    var current: [String: Int64] = [:]

    public mutating func process(_ record: Record, emit: (Record) throws -> Void) throws {
        let increment: Int64
        if kind == .sum, case .keyed(_, let value) = record { increment = value } else { increment = 1 }
        current[record.key, default: 0] &+= increment
    }

    public mutating func advance(to now: WallTime, emit: (Record) throws -> Void) throws {
        let sizeMillis = max(1, size.nanosecondsClamped / 1_000_000)
        guard let end = windowEnd else {
            windowEnd = WallTime(millisecondsSince1970: (now.millisecondsSince1970 / sizeMillis + 1) * sizeMillis)
            return
        }
        guard now >= end else { return }
        try flush(emit)
        windowEnd = WallTime(millisecondsSince1970: (now.millisecondsSince1970 / sizeMillis + 1) * sizeMillis)
    }

    public mutating func finish(emit: (Record) throws -> Void) throws { try flush(emit) }

    public mutating func snapshotState(checkpoint: CheckpointID) throws -> [UInt8] {
        var writer = BinaryWriter(capacity: 16)
        writer.write(signed: windowEnd?.millisecondsSince1970 ?? -1)
        writer.write(bytes: KeyedTotals.encode(current))
        return writer.bytes
    }

    public mutating func restoreState(_ state: [UInt8]?, checkpoint: CheckpointID?) throws {
        guard let state else { return }
        do {
            var reader = BinaryReader(state)
            let end = try reader.readInt64()
            windowEnd = end < 0 ? nil : WallTime(millisecondsSince1970: end)
            current = try KeyedTotals.decode(try reader.readBytes())
        } catch {
            throw stateError("tumbling-window", error)
        }
    }

    private mutating func flush(_ emit: (Record) throws -> Void) throws {
        for key in current.keys.sorted() { try emit(.keyed(key: key, value: current[key]!)) }
        current.removeAll(keepingCapacity: true)
    }
}

public struct PrintOperator: StreamOperator {
    let prefix: String
    public mutating func process(_ record: Record, emit: (Record) throws -> Void) throws {
        FileHandle.standardOutput.write(Data("\(prefix) \(record)\n".utf8))
    }
}

/// Passes records through at most `pacing` per second (the task waits): a rate limit, and a way
/// to make a slow stage.
public struct ThrottleOperator: StreamOperator {
    public let pacing: Double?
    public mutating func process(_ record: Record, emit: (Record) throws -> Void) throws { try emit(record) }
}

public struct DiscardOperator: StreamOperator {
    public mutating func process(_ record: Record, emit: (Record) throws -> Void) throws {}
}

/// Keyed state as bytes: per key its total.
enum KeyedTotals {
    static func encode(_ totals: [String: Int64]) -> [UInt8] {
        var writer = BinaryWriter(capacity: totals.count * 16 + 8)
        writer.write(UInt64(totals.count))
        for (key, value) in totals {
            writer.write(key)
            writer.write(signed: value)
        }
        return writer.bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> [String: Int64] {
        var reader = BinaryReader(bytes)
        let count = try reader.readUInt64()
        guard count <= UInt64(bytes.count) else { throw BinaryDecodingError(offset: 0, problem: "state claims \(count) keys") }
        var totals: [String: Int64] = [:]
        totals.reserveCapacity(Int(count))
        for _ in 0..<count { totals[try reader.readString()] = try reader.readInt64() }
        guard reader.isAtEnd else { throw BinaryDecodingError(offset: reader.offset, problem: "trailing bytes after the keyed state") }
        return totals
    }
}
