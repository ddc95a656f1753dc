public import BatonCore
public import BatonJobGraph
import Foundation

/// Job specs: a JobGraph and its configuration in YAML (`examples/jobs/*.yaml`).
///
/// ```yaml
/// id: streaming-keyed-count          # optional: the file name without .yaml
/// name: Streaming keyed count        # optional: the id
/// scheduling: eager                  # eager | lazy-from-sources
/// failover: region                   # region | restart-all | restart-individual
/// restart: { strategy: fixed-delay, attempts: 3, delay: 1s }
/// checkpoints: { interval: 500ms }
/// vertices:
///   - id: source
///     parallelism: 2
///     maxParallelism: 128           # optional
///     slotSharingGroup: default     # optional
///     resources: { cpu: 0.5, taskHeap: 256MiB, managed: 0, network: 32MiB, extended: { gpu: 1 } }
///     operators:
///       - sequence: { keys: 16 }
///       - map: { function: identity }
/// edges:
///   - { from: source, to: count, pattern: hash, key: key, result: pipelined }
/// ```
///
/// Paths in operator parameters resolve against the spec's folder. Errors name the file, the path
/// in the document and the problem.
public enum JobSpec {
    /// The folder of the spec file at `path` (absolute): where its relative paths resolve, and
    /// a folder its job may use unless `jobs.allowedPaths` says otherwise (`SubmitJob.spec_directory`).
    public static func folder(ofFile path: String) -> String {
        (HAConfiguration.absolutePath(path, relativeTo: FileManager.default.currentDirectoryPath) as NSString).deletingLastPathComponent
    }

    public static func load(path: String, catalog: OperatorCatalog = .builtIn) throws -> JobGraph {
        let file = HAConfiguration.absolutePath(path, relativeTo: FileManager.default.currentDirectoryPath)
        return try parse(try YAMLValue.load(path: file), file: file, catalog: catalog)
    }

    public static func parse(text: String, file: String, catalog: OperatorCatalog = .builtIn) throws -> JobGraph {
        try parse(try YAMLValue.parse(text, file: file), file: file, catalog: catalog)
    }

    /// A spec that comes from no file (a REST request): errors name `origin`, relative paths
    /// resolve against `directory`, and `defaultID` is the job's id when the spec has no `id`.
    public static func parse(
        text: String, origin: String, directory: String, defaultID: JobID, catalog: OperatorCatalog = .builtIn
    ) throws -> JobGraph {
        try parse(try YAMLValue.parse(text, file: origin), directory: directory, defaultID: .success(defaultID), catalog: catalog)
    }

    static func parse(_ root: YAMLValue, file: String, catalog: OperatorCatalog) throws -> JobGraph {
        let name = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        let derived = JobID(rawValue: name).map(Result.success)
            ?? .failure(root.error("the file name '\(name)' is not a valid job id: give one with the key 'id'"))
        return try parse(root, directory: (file as NSString).deletingLastPathComponent, defaultID: derived, catalog: catalog)
    }

    static func parse(_ root: YAMLValue, directory: String, defaultID: Result<JobID, ConfigError>, catalog: OperatorCatalog) throws -> JobGraph {
        let top = try root.mapping(allowing: [
            "id", "name", "scheduling", "failover", "restart", "checkpoints", "vertices", "edges",
        ])
        let id: JobID = if let value = top["id"] { try value.identifier() } else { try defaultID.get() }
        let file = root.file
        var configuration = JobConfiguration()
        if let value = top["scheduling"] {
            configuration.scheduling = SchedulingStrategyName(
                rawValue: try value.choice([SchedulingStrategyName.eager.rawValue, SchedulingStrategyName.lazyFromSources.rawValue]))
        }
        if let value = top["failover"] {
            configuration.failover = FailoverStrategyName(rawValue: try value.choice(FailoverStrategyName.allCases.map(\.rawValue)))!
        }
        if let value = top["restart"] { configuration.restart = try restart(value) }
        if let value = top["checkpoints"] {
            let mapping = try value.mapping(allowing: ["interval"])
            configuration.checkpointInterval = try mapping.required("interval").duration(in: .milliseconds(10)...(.seconds(86_400)))
        }

        let verticesValue = try top.required("vertices")
        var vertices: [JobVertex] = []
        for value in try verticesValue.sequence() {
            let vertex = try self.vertex(value, directory: directory, catalog: catalog)
            if vertices.contains(where: { $0.id == vertex.id }) {
                throw value.error("vertex id '\(vertex.id)' is used twice")
            }
            vertices.append(vertex)
        }
        guard !vertices.isEmpty else { throw verticesValue.error("a job needs at least one vertex") }

        var edges: [JobEdge] = []
        if let edgesValue = top["edges"] {
            for value in try edgesValue.sequence() {
                let edge = try self.edge(value, vertices: vertices)
                if edges.contains(where: { $0.source == edge.source && $0.target == edge.target }) {
                    throw value.error("there is already an edge from '\(edge.source)' to '\(edge.target)'")
                }
                edges.append(edge)
            }
        }
        for (index, vertex) in vertices.enumerated() {
            let isSource = catalog.entry(vertex.operators[0].name)?.isSource ?? false
            let hasInput = edges.contains { $0.target == vertex.id }
            if isSource && hasInput {
                throw ConfigError(
                    .badValue, file: file, keyPath: "vertices[\(index)]", line: nil,
                    "vertex '\(vertex.id)' starts with the source '\(vertex.operators[0].name)' but an edge leads into it")
            }
            if !isSource && !hasInput {
                throw ConfigError(
                    .badValue, file: file, keyPath: "vertices[\(index)]", line: nil,
                    "vertex '\(vertex.id)' has no input: start it with a source operator or add an edge into it")
            }
        }
        let name = try top["name"]?.nonEmptyString() ?? id.rawValue
        let graph = JobGraph(id: id, name: name, vertices: vertices, edges: edges, configuration: configuration)
        do {
            try graph.validate()
        } catch {
            throw ConfigError(
                error.code == .notExactlyOnce ? .notExactlyOnce : .badValue, file: file,
                keyPath: error.code == .cycle ? "edges" : error.code == .notExactlyOnce ? "failover" : "", line: nil, error.message)
        }
        return graph
    }

    private static func vertex(_ value: YAMLValue, directory: String, catalog: OperatorCatalog) throws -> JobVertex {
        let mapping = try value.mapping(allowing: [
            "id", "name", "parallelism", "maxParallelism", "slotSharingGroup", "resources", "operators",
        ])
        let id: JobVertexID = try mapping.required("id").identifier()
        let parallelismValue = try mapping.required("parallelism")
        let parallelism = try parallelismValue.int(in: 1...JobVertex.maxParallelismLimit)
        var maxParallelism: Int?
        if let value = mapping["maxParallelism"] {
            let max = try value.int(in: 1...JobVertex.maxParallelismLimit)
            guard max >= parallelism else {
                throw value.error("max parallelism \(max) is below the parallelism \(parallelism)")
            }
            maxParallelism = max
        }
        let operatorsValue = try mapping.required("operators")
        let operators = try operatorsValue.sequence().map { try self.operatorSpec($0, directory: directory, catalog: catalog) }
        guard !operators.isEmpty else { throw operatorsValue.error("a vertex needs at least one operator") }
        for (index, spec) in operators.enumerated().dropFirst() where catalog.entry(spec.name)?.isSource == true {
            throw try operatorsValue.sequence()[index].error("the source '\(spec.name)' can only be the first operator of a chain")
        }
        return JobVertex(
            id: id, name: try mapping["name"]?.nonEmptyString(), operators: operators, parallelism: parallelism,
            maxParallelism: maxParallelism, slotSharingGroup: try mapping["slotSharingGroup"]?.identifier() ?? "default",
            resources: try mapping["resources"].map { try $0.resourceProfile() })
    }

    private static func operatorSpec(_ value: YAMLValue, directory: String, catalog: OperatorCatalog) throws -> OperatorSpec {
        let name: String
        var parameters: [String: String] = [:]
        var parametersValue: YAMLValue?
        if let plain = try? value.string() {
            name = plain
        } else {
            let mapping = try value.mapping(allowing: catalog.names)
            guard mapping.keys.count == 1 else {
                throw value.error("an operator is one name, or one name with its parameters (like 'file-sink: { path: out }')")
            }
            name = mapping.keys[0]
            parametersValue = mapping[name]
        }
        guard let entry = catalog.entry(name) else {
            throw value.error("unknown operator '\(name)' (known: \(catalog.names.joined(separator: ", ")))")
        }
        if let parametersValue {
            let allowed = Array(entry.required.union(entry.optional)).sorted()
            let mapping = try parametersValue.mapping(allowing: allowed)
            for key in mapping.keys {
                var text = try mapping.required(key).string()
                if entry.paths.contains(key) { text = HAConfiguration.absolutePath(text, relativeTo: directory) }
                parameters[key] = text
            }
        }
        for required in entry.required.sorted() where parameters[required] == nil {
            throw value.error("operator '\(name)' needs the parameter '\(required)'", code: .missingKey)
        }
        return OperatorSpec(name, parameters)
    }

    private static func edge(_ value: YAMLValue, vertices: [JobVertex]) throws -> JobEdge {
        let mapping = try value.mapping(allowing: ["from", "to", "pattern", "key", "result"])
        func vertex(_ key: String) throws -> JobVertex {
            let idValue = try mapping.required(key)
            let id: JobVertexID = try idValue.identifier()
            guard let vertex = vertices.first(where: { $0.id == id }) else {
                throw idValue.error("no vertex '\(id)' (vertices: \(vertices.map(\.id.rawValue).joined(separator: ", ")))")
            }
            return vertex
        }
        let source = try vertex("from")
        let target = try vertex("to")
        guard source.id != target.id else { throw value.error("an edge cannot lead from '\(source.id)' to itself") }
        let patternValue = try mapping.required("pattern")
        let pattern = DistributionPattern(rawValue: try patternValue.choice(DistributionPattern.allCases.map(\.rawValue)))!
        if pattern == .forward && source.parallelism != target.parallelism {
            throw patternValue.error(
                "forward joins '\(source.id)' (parallelism \(source.parallelism)) to '\(target.id)' (parallelism \(target.parallelism)); "
                    + "forward needs equal parallelism: use rebalance or hash")
        }
        let key = try mapping["key"]?.nonEmptyString()
        if pattern == .hash && key == nil { throw value.error("a hash edge needs a key", code: .missingKey) }
        if pattern != .hash, let keyValue = mapping["key"] { throw keyValue.error("only hash edges take a key") }
        let result = try mapping["result"].map { ResultPartitionType(rawValue: try $0.choice(ResultPartitionType.allCases.map(\.rawValue)))! }
        return JobEdge(source: source.id, target: target.id, pattern: pattern, key: key, resultType: result ?? .pipelined)
    }

    private static func restart(_ value: YAMLValue) throws -> RestartStrategySpec {
        let strategyValue = try value.mapping(allowing: ["strategy", "attempts", "delay", "initial", "max", "multiplier", "resetAfter", "failures", "interval"])
            .required("strategy")
        let strategy = try strategyValue.choice(["none", "fixed-delay", "exponential-backoff", "failure-rate"])
        let durations: ClosedRange<Duration> = .zero...(.seconds(86_400))
        switch strategy {
        case "none":
            _ = try value.mapping(allowing: ["strategy"])
            return .none
        case "fixed-delay":
            let mapping = try value.mapping(allowing: ["strategy", "attempts", "delay"])
            return .fixedDelay(
                attempts: try mapping.required("attempts").int(in: 0...Int(Int32.max)),
                delay: try mapping["delay"]?.duration(in: durations) ?? .seconds(1))
        case "exponential-backoff":
            let mapping = try value.mapping(allowing: ["strategy", "initial", "max", "multiplier", "resetAfter"])
            let initial = try mapping["initial"]?.duration(in: durations) ?? .seconds(1)
            let max = try mapping["max"]?.duration(in: durations) ?? .seconds(300)
            guard max >= initial else { throw (mapping["max"] ?? value).error("max must not be below initial") }
            var multiplier = 2.0
            if let multiplierValue = mapping["multiplier"] {
                let text = try multiplierValue.string()
                guard let number = Double(text), number >= 1, number <= 100 else {
                    throw multiplierValue.error("'\(text)' is not a multiplier between 1 and 100")
                }
                multiplier = number
            }
            return .exponentialBackoff(
                initial: initial, max: max, multiplier: multiplier,
                resetAfter: try mapping["resetAfter"]?.duration(in: durations) ?? .seconds(3600))
        default:
            let mapping = try value.mapping(allowing: ["strategy", "failures", "interval", "delay"])
            return .failureRate(
                failures: try mapping.required("failures").int(in: 1...Int(Int32.max)),
                interval: try mapping.required("interval").duration(in: .milliseconds(1)...(.seconds(86_400))),
                delay: try mapping["delay"]?.duration(in: durations) ?? .seconds(1))
        }
    }
}
