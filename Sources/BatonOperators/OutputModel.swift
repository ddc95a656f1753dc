public import BatonJobGraph
import Foundation

/// The exact committed output of a job, predicted from its JobGraph and from where its sources
/// began and ended: the multiset of lines every file sink must hold once the job finished.
///
/// It models the built-in catalog's deterministic part: `sequence` sources; `map`, `filter`,
/// `throttle`; keyed `count` and `sum` (per key, after a hash edge, a forward edge or in a
/// source's chain); forward, hash and broadcast edges; `file-sink`, `discard`, `print`. A job it
/// cannot predict exactly is refused with the reason (`OutputModelError`): `text-file`,
/// `tokenize`, `tumbling-window` (processing time), a vertex with several inputs, an aggregation
/// after a rebalance edge, or a running `sum` whose key is fed by several producers (its
/// intermediate totals depend on arrival order).
///
/// Not modelled: which sink subtask holds a line (the multiset is per sink path).
public struct OutputModel: Sendable {
    public struct Sink: Sendable, Hashable {
        public var vertex: JobVertexID
        public var path: String
        public var exactlyOnce: Bool
        /// Each line the sink must hold, with how many times.
        public var expected: [String: Int]
    }

    public private(set) var sinks: [Sink] = []

    /// Where a source subtask ends: from its attempts' ranges (the highest attempt's end), or
    /// the source's `to` when no range was written.
    public struct SourceEnds: Sendable {
        var positions: [String: Int64] = [:]
        public init() {}
        public init(ranges: [SourceRange]) throws(OutputModelError) {
            for range in ranges.sorted(by: { $0.attempt < $1.attempt }) {
                do {
                    positions["\(range.vertex)#\(range.subtask)"] = try SequenceSource.position(of: range.end)
                } catch {
                    throw OutputModelError("the range of source \(range.vertex) subtask \(range.subtask) attempt \(range.attempt) is not a sequence position")
                }
            }
        }
        public subscript(vertex: JobVertexID, subtask: Int) -> Int64? {
            get { positions["\(vertex)#\(subtask)"] }
            set { positions["\(vertex)#\(subtask)"] = newValue }
        }
    }

    /// A lane is one subtask's input: sublists whose internal order is fixed (one producer's
    /// records in the order it sent them); `lanesKnown` is false after a rebalance edge.
    private typealias Lane = [[Record]]

    /// The most source records a model replays (each one is held in memory).
    public static let recordLimit: Int64 = 50_000_000

    public init(graph: JobGraph, sourceEnds: SourceEnds) throws(OutputModelError) {
        guard let order = graph.topologicalOrder else { throw OutputModelError("the job has a cycle") }
        var outputs: [JobVertexID: (lanes: [Lane], known: Bool)] = [:]
        /// Whether a vertex's lanes merge several producers' records (arrival order unknown),
        /// decided from the graph alone.
        var merged: [JobVertexID: Bool] = [:]
        var sinks: [String: Sink] = [:]
        var sinkOrder: [String] = []
        for id in order {
            let vertex = graph.vertex(id)!
            let inputs = graph.edges.filter { $0.target == id }
            var lanes: [Lane]
            var known = true
            var operators = vertex.operators[...]
            var emitOnlyAtEnd = false
            var mergedInput = false
            if inputs.isEmpty {
                guard let first = operators.popFirst(), first.name == "sequence" else {
                    throw OutputModelError("vertex '\(id)' starts with '\(vertex.operators[0].name)'; only sequence sources can be modelled")
                }
                lanes = try Self.sequence(first, vertex: vertex, ends: sourceEnds)
                emitOnlyAtEnd = first.parameters["to"] != nil
            } else {
                guard inputs.count == 1, let edge = inputs.first, let producer = outputs[edge.source], let source = graph.vertex(edge.source) else {
                    throw OutputModelError("vertex '\(id)' has \(inputs.count) inputs; only vertices with one input can be modelled")
                }
                (lanes, known) = Self.route(producer.lanes, known: producer.known, edge: edge, from: source, to: vertex)
                emitOnlyAtEnd = edge.resultType == .blocking
                mergedInput = edge.pattern == .forward ? merged[source.id] ?? false : source.parallelism > 1 || (merged[source.id] ?? false)
            }
            for spec in operators {
                switch spec.name {
                case "map":
                    let function = try Self.function(spec)
                    lanes = lanes.map { $0.map { $0.compactMap { function($0) } } }
                case "filter":
                    let predicate = try Self.function(spec)
                    lanes = lanes.map { $0.map { $0.compactMap { predicate($0) } } }
                case "throttle":
                    break
                case "count", "sum":
                    guard known else {
                        throw OutputModelError("vertex '\(id)': '\(spec.name)' after a rebalance edge depends on which subtask got which record")
                    }
                    if spec.name == "sum", !emitOnlyAtEnd, mergedInput {
                        throw OutputModelError(
                            "vertex '\(id)': a running sum over records merged from several producers depends on their arrival order")
                    }
                    mergedInput = false  // one ordered stream of updates per key from here
                    lanes = try lanes.map { lane throws(OutputModelError) in
                        try Self.aggregate(lane, sum: spec.name == "sum", emitOnlyAtEnd: emitOnlyAtEnd, vertex: id)
                    }
                case "file-sink":
                    let path = spec.parameters["path"] ?? ""
                    if sinks[path] == nil {
                        sinkOrder.append(path)
                        sinks[path] = Sink(vertex: id, path: path, exactlyOnce: spec.parameters["exactly-once"] != "false", expected: [:])
                    }
                    for record in lanes.joined().joined() { sinks[path]!.expected[record.description, default: 0] += 1 }
                    lanes = lanes.map { _ in [] }
                case "discard", "print":
                    lanes = lanes.map { _ in [] }
                default:
                    throw OutputModelError("vertex '\(id)': operator '\(spec.name)' cannot be modelled exactly")
                }
            }
            outputs[id] = (lanes, known)
            merged[id] = mergedInput
        }
        self.sinks = sinkOrder.map { sinks[$0]! }
    }

    /// Each subtask's records, from its first position (`from` shifted to its share) to its end.
    private static func sequence(_ spec: OperatorSpec, vertex: JobVertex, ends: SourceEnds) throws(OutputModelError) -> [Lane] {
        func number(_ name: String) throws(OutputModelError) -> Int64? {
            guard let text = spec.parameters[name] else { return nil }
            guard let value = Int64(text) else { throw OutputModelError("vertex '\(vertex.id)': sequence \(name) '\(text)' is not a number") }
            return value
        }
        let from = try number("from") ?? 0
        let keys = try number("keys") ?? 16
        let to = try number("to")
        guard keys >= 1 else { throw OutputModelError("vertex '\(vertex.id)': sequence keys must be at least 1") }
        let parallelism = Int64(vertex.parallelism)
        var total: Int64 = 0
        return try (0..<vertex.parallelism).map { subtask throws(OutputModelError) in
            guard let end = ends[vertex.id, subtask] ?? to else {
                throw OutputModelError(
                    "source '\(vertex.id)' subtask \(subtask) has no end position (no range was recorded, and the sequence has no 'to')")
            }
            let offset = ((Int64(subtask) - from) % parallelism + parallelism) % parallelism
            total += max(0, (end - from - offset + parallelism - 1) / parallelism)
            guard total <= Self.recordLimit else {
                throw OutputModelError("source '\(vertex.id)' emitted more than \(Self.recordLimit) records: too many to model record by record")
            }
            var records: [Record] = []
            var next = from + offset
            while next < end {
                records.append(.keyed(key: "k\(next % keys)", value: next))
                next += parallelism
            }
            return [records]
        }
    }

    /// The lanes of `consumer` from the lanes of its one producer.
    private static func route(_ lanes: [Lane], known: Bool, edge: JobEdge, from producer: JobVertex, to consumer: JobVertex) -> ([Lane], Bool) {
        switch edge.pattern {
        case .forward:
            return (lanes, known)
        case .broadcast:
            let all = Array(lanes.joined())
            return (Array(repeating: all, count: consumer.parallelism), known)
        case .rebalance:
            var result = Array(repeating: Lane(), count: consumer.parallelism)
            result[0] = Array(lanes.joined())
            return (result, false)
        case .hash:
            var result = Array(repeating: Lane(), count: consumer.parallelism)
            for sublist in lanes.joined() {
                var parts = Array(repeating: [Record](), count: consumer.parallelism)
                for record in sublist {
                    parts[KeyGroups.subtask(for: record.key, maxParallelism: consumer.maxParallelism, parallelism: consumer.parallelism)].append(record)
                }
                for (index, part) in parts.enumerated() where !part.isEmpty { result[index].append(part) }
            }
            return (result, true)
        }
    }

    /// A keyed count or sum over one subtask's input: per key an update per record, or the total
    /// once at the end of a bounded input.
    private static func aggregate(_ lane: Lane, sum: Bool, emitOnlyAtEnd: Bool, vertex: JobVertexID) throws(OutputModelError) -> Lane {
        var perKey: [String: [[Record]]] = [:]
        var keyOrder: [String] = []
        for sublist in lane {
            var mine: [String: [Record]] = [:]
            for record in sublist {
                if perKey[record.key] == nil, mine[record.key] == nil { keyOrder.append(record.key) }
                mine[record.key, default: []].append(record)
            }
            for (key, records) in mine { perKey[key, default: []].append(records) }
        }
        return try keyOrder.map { key throws(OutputModelError) in
            let feeds = perKey[key]!
            // The graph-level rule refuses merged running sums before any record; this is its
            // check on the data, so a gap in that rule can never turn into a false violation.
            if sum, !emitOnlyAtEnd, feeds.count > 1 {
                throw OutputModelError("vertex '\(vertex)': the running sum of key '\(key)' is fed by several producers; its totals depend on arrival order")
            }
            var total: Int64 = 0
            var emitted: [Record] = []
            for record in feeds.joined() {
                if sum, case .keyed(_, let value) = record { total &+= value } else { total &+= 1 }
                if !emitOnlyAtEnd { emitted.append(.keyed(key: key, value: total)) }
            }
            return emitOnlyAtEnd ? [.keyed(key: key, value: total)] : emitted
        }
    }

    /// A map or filter as a function (nil: the record is dropped).
    private static func function(_ spec: OperatorSpec) throws(OutputModelError) -> @Sendable (Record) -> Record? {
        do {
            if spec.name == "map" {
                let operation = MapOperator(function: try MapOperator.Function(spec.parameters["function"] ?? ""))
                let map = operation
                return { record in
                    var operation = map
                    var out: Record?
                    try? operation.process(record) { out = $0 }
                    return out
                }
            }
            let filter = FilterOperator(predicate: try FilterOperator.Predicate(spec.parameters["predicate"] ?? ""))
            return { record in
                var operation = filter
                var out: Record?
                try? operation.process(record) { out = $0 }
                return out
            }
        } catch {
            throw OutputModelError("\(error)")
        }
    }
}

/// A job the model cannot predict, or a range it cannot read: says why.
public struct OutputModelError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A sink's committed output against the model: lines missing, repeated, or never expected.
public struct OutputCheck: Sendable, Hashable, Codable {
    public var path: String
    public var expectedRecords: Int
    /// Committed lines (files `part-*`).
    public var records: Int
    /// Expected lines not committed (counted with their multiplicity).
    public var missing: Int
    /// Expected lines committed more often than expected (each extra copy).
    public var duplicates: Int
    /// Committed lines the model never produces.
    public var unexpected: Int
    /// A few examples of each.
    public var missingExamples: [String]
    public var duplicateExamples: [String]
    public var unexpectedExamples: [String]

    /// Reads the committed files of `sink.path` and compares them with `sink.expected`.
    public static func check(_ sink: OutputModel.Sink) throws -> OutputCheck {
        let committed = try CommittedOutput.lines(sink.path)
        var check = OutputCheck(
            path: sink.path, expectedRecords: sink.expected.values.reduce(0, +), records: committed.values.reduce(0, +), missing: 0,
            duplicates: 0, unexpected: 0, missingExamples: [], duplicateExamples: [], unexpectedExamples: [])
        for (line, expected) in sink.expected.sorted(by: { $0.key < $1.key }) {
            let actual = committed[line] ?? 0
            if actual < expected {
                check.missing += expected - actual
                if check.missingExamples.count < 5 { check.missingExamples.append(line) }
            } else if actual > expected {
                check.duplicates += actual - expected
                if check.duplicateExamples.count < 5 { check.duplicateExamples.append(line) }
            }
        }
        for (line, count) in committed.sorted(by: { $0.key < $1.key }) where sink.expected[line] == nil {
            check.unexpected += count
            if check.unexpectedExamples.count < 5 { check.unexpectedExamples.append(line) }
        }
        return check
    }
}

/// What a file sink committed: every line of its `part-*` files, with how many times.
public enum CommittedOutput {
    public static func lines(_ directory: String) throws -> [String: Int] {
        var lines: [String: Int] = [:]
        for file in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where file.hasPrefix("part-") {
            let text = try String(contentsOfFile: "\(directory)/\(file)", encoding: .utf8)
            for line in text.split(separator: "\n") { lines[String(line), default: 0] += 1 }
        }
        return lines
    }
}
