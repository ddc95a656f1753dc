public import BatonJobGraph
public import BatonOperators

/// I4 after the fact: a finished job's committed sink output against the exact model of its
/// workload (`OutputModel`), from the job spec and the sources' recorded ranges. Used by
/// `baton chaos` at the end of every run and by `baton audit --sink DIR --job SPEC`.
public enum OutputAudit {
    public struct Result: Sendable, Hashable {
        public var checks: [OutputCheck]
        public var violations: [AuditReport.Violation]
        /// Committed lines over every exactly-once sink.
        public var recordsCommitted: Int { checks.reduce(0) { $0 + $1.records } }
    }

    /// Checks every exactly-once file sink of `graph`. `sourceRanges` is the job's ranges folder
    /// (`SourceRanges.directory`); `sinkPaths` replaces the sinks' paths (by the path the spec
    /// names) when the output was written elsewhere.
    ///
    /// - Throws: `OutputModelError` when the job cannot be modelled or its ranges not read.
    public static func check(graph: JobGraph, sourceRanges: String) throws -> Result {
        let ranges: [SourceRange]
        do { ranges = try SourceRanges.read(sourceRanges) } catch { throw OutputModelError("\(error)") }
        let model = try OutputModel(graph: graph, sourceEnds: try OutputModel.SourceEnds(ranges: ranges))
        var checks: [OutputCheck] = []
        var violations: [AuditReport.Violation] = []
        func flag(_ kind: String, _ message: String) { violations.append(.init(kind: kind, message: message)) }
        for sink in model.sinks where sink.exactlyOnce {
            let check = try OutputCheck.check(sink)
            checks.append(check)
            let examples = { (lines: [String]) in lines.isEmpty ? "" : " (e.g. \(lines.joined(separator: " ")))" }
            if check.records == 0, check.expectedRecords > 0 {
                flag("no-output", "sink \(sink.vertex) at \(sink.path) committed nothing (\(check.expectedRecords) line(s) expected)")
            }
            if check.missing > 0 {
                flag("missing-output", "sink \(sink.vertex): \(check.missing) expected line(s) are missing\(examples(check.missingExamples))")
            }
            if check.duplicates > 0 {
                flag("duplicate-output", "sink \(sink.vertex): \(check.duplicates) line(s) committed more than once\(examples(check.duplicateExamples))")
            }
            if check.unexpected > 0 {
                flag("unexpected-output", "sink \(sink.vertex): \(check.unexpected) committed line(s) the job never produces\(examples(check.unexpectedExamples))")
            }
        }
        if checks.isEmpty { throw OutputModelError("job '\(graph.id)' has no exactly-once file-sink to check") }
        return Result(checks: checks, violations: violations)
    }

    /// `graph` with every file sink writing to `<directory>/<vertex>` (`-<n>` for a second sink
    /// of the same vertex): a run's output inside the run's own folder.
    public static func redirectingSinks(_ graph: JobGraph, into directory: String) -> JobGraph {
        redirecting(graph) { vertex, count in "\(directory)/\(vertex)" + (count == 0 ? "" : "-\(count)") }
    }

    /// `graph` with its file sinks writing to `path` (for a job with one file sink).
    public static func redirectingSinks(_ graph: JobGraph, to path: String) -> JobGraph {
        redirecting(graph) { _, _ in path }
    }

    private static func redirecting(_ graph: JobGraph, _ path: (JobVertexID, Int) -> String) -> JobGraph {
        var graph = graph
        for index in graph.vertices.indices {
            var count = 0
            for operatorIndex in graph.vertices[index].operators.indices where graph.vertices[index].operators[operatorIndex].name == "file-sink" {
                graph.vertices[index].operators[operatorIndex].parameters["path"] = path(graph.vertices[index].id, count)
                count += 1
            }
        }
        return graph
    }
}

extension OutputModel.SourceEnds {
    /// Every sequence source of `graph` ending where it begins (no records): a model built from
    /// it checks only that the job can be modelled.
    public static func atStart(of graph: JobGraph) -> OutputModel.SourceEnds {
        var ends = OutputModel.SourceEnds()
        for vertex in graph.vertices {
            for subtask in 0..<vertex.parallelism { ends[vertex.id, subtask] = Int64(vertex.operators.first?.parameters["from"] ?? "0") ?? 0 }
        }
        return ends
    }
}
