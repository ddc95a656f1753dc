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
            return try TextFileSource(path: spec.parameters["path"] ?? "", subtask: context.subtask, parallelism: context.parallelism)
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
        names = keys <= 1 << 16 ? (0..<keys).map { "k\($0)" } : []
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
            let key = next % keys
            try emit(.keyed(key: key >= 0 && key < Int64(names.count) ? names[Int(key)] : "k\(key)", value: next))
            next += step
        }
        return to.map { next < $0 } ?? true
    }

    /// The keys' names (`k0`, `k1`, ...), made once when there are not too many of them.
    private let names: [String]
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
        guard case .line(var text) = record else { return try emit(record) }
        let ascii = try text.withUTF8 { bytes in
            guard !bytes.contains(where: { $0 >= 0x80 }) else { return false }
            try Self.asciiWords(bytes, emit)
            return true
        }
        guard !ascii else { return }
        for word in text.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }) {
            try emit(.keyed(key: String(word), value: 1))
        }
    }

    /// The same split for an ASCII line, byte by byte: letters and digits make words, lower-cased.
    private static func asciiWords(_ bytes: UnsafeBufferPointer<UInt8>, _ emit: (Record) throws -> Void) throws {
        var index = 0
        while index < bytes.count {
            while index < bytes.count, !isWordByte(bytes[index]) { index += 1 }
            let start = index
            while index < bytes.count, isWordByte(bytes[index]) { index += 1 }
            guard index > start else { return }
            let word = String(unsafeUninitializedCapacity: index - start) { target in
                for offset in 0..<(index - start) {
                    let byte = bytes[start + offset]
                    target[offset] = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
                }
                return index - start
            }
            try emit(.keyed(key: word, value: 1))
        }
    }

    private static func isWordByte(_ byte: UInt8) -> Bool {
        let lower = byte | 0x20
        return (lower >= UInt8(ascii: "a") && lower <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }
}

/// Per-key sum of values or count of records: an update per record (streaming), or the final
/// values at the end of a bounded input (batch).
public struct AggregateOperator: StreamOperator {
    public enum Kind: String, Sendable { case sum, count }
    let kind: Kind
    let emitOnlyAtEnd: Bool
    public private(set) var totals = KeyedTotals()

    public mutating func process(_ record: Record, emit: (Record) throws -> Void) throws {
        let key = record.key
        let increment: Int64
        switch (kind, record) {
        case (.sum, .keyed(_, let value)): increment = value
        default: increment = 1
        }
        let total = totals.add(increment, to: key)
        if !emitOnlyAtEnd { try emit(.keyed(key: key, value: total)) }
    }

    public mutating func snapshotState(checkpoint: CheckpointID) throws -> [UInt8] { totals.encoded() }

    public mutating func restoreState(_ state: [UInt8]?, checkpoint: CheckpointID?) throws {
        guard let state else { return }
        do { totals = try KeyedTotals(decoding: state) } catch { throw stateError(kind.rawValue, error) }
    }

    public mutating func finish(emit: (Record) throws -> Void) throws {
        guard emitOnlyAtEnd else { return }
        for (key, total) in totals.sorted { try emit(.keyed(key: key, value: total)) }
    }
}

/// Processing-time tumbling windows: per key, the count or sum of each window, emitted when the
/// window closes (and what is open at the end of input).
public struct TumblingWindowOperator: StreamOperator {
    let size: Duration
    let kind: AggregateOperator.Kind
    var windowEnd: WallTime?
    var current = KeyedTotals()

    public mutating func process(_ record: Record, emit: (Record) throws -> Void) throws {
        let increment: Int64
        if kind == .sum, case .keyed(_, let value) = record { increment = value } else { increment = 1 }
        current.add(increment, to: record.key)
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
        writer.write(bytes: current.encoded())
        return writer.bytes
    }

    public mutating func restoreState(_ state: [UInt8]?, checkpoint: CheckpointID?) throws {
        guard let state else { return }
        do {
            var reader = BinaryReader(state)
            let end = try reader.readInt64()
            windowEnd = end < 0 ? nil : WallTime(millisecondsSince1970: end)
            current = try KeyedTotals(decoding: try reader.readBytes())
        } catch {
            throw stateError("tumbling-window", error)
        }
    }

    private mutating func flush(_ emit: (Record) throws -> Void) throws {
        for (key, total) in current.sorted { try emit(.keyed(key: key, value: total)) }
        current.removeAll()
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
    public init() {}
    public mutating func process(_ record: Record, emit: (Record) throws -> Void) throws {}
}
