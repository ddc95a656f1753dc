public import BatonCore

/// Why a JobGraph cannot run, naming the vertices and edges concerned.
public struct JobGraphError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let value: String
        private init(_ value: String) { self.value = value }
        public static let empty = Code("empty")
        public static let duplicateVertex = Code("duplicateVertex")
        public static let noOperators = Code("noOperators")
        public static let badParallelism = Code("badParallelism")
        public static let unknownVertex = Code("unknownVertex")
        public static let forwardParallelismMismatch = Code("forwardParallelismMismatch")
        public static let missingKey = Code("missingKey")
        public static let duplicateEdge = Code("duplicateEdge")
        public static let cycle = Code("cycle")
        public static let resourcesNeverFit = Code("resourcesNeverFit")
        public static let notExactlyOnce = Code("notExactlyOnce")
        public static let badParameter = Code("badParameter")
        public var description: String { value }
    }

    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}

extension JobGraph {
    /// Checks the graph's structure; with `taskExecutors` (each task executor's total resources),
    /// also that every slot the job will ask for fits in at least one of them.
    ///
    /// - Throws: the first `JobGraphError` found.
    public func validate(taskExecutors: [ResourceProfile]? = nil) throws(JobGraphError) {
        guard !vertices.isEmpty else { throw JobGraphError(.empty, "job '\(name)' has no vertices") }
        var seen: Set<JobVertexID> = []
        for vertex in vertices {
            guard seen.insert(vertex.id).inserted else {
                throw JobGraphError(.duplicateVertex, "vertex '\(vertex.id)' is defined twice")
            }
            guard !vertex.operators.isEmpty else {
                throw JobGraphError(.noOperators, "vertex '\(vertex.id)' has no operators")
            }
            guard vertex.parallelism >= 1 else {
                throw JobGraphError(.badParallelism, "vertex '\(vertex.id)' has parallelism \(vertex.parallelism); it must be at least 1")
            }
            for operation in vertex.operators where operation.name == "file-sink" {
                if let value = operation.parameters["exactly-once"], value != "true", value != "false" {
                    throw JobGraphError(.badParameter, "vertex '\(vertex.id)': file-sink exactly-once is '\(value)'; it must be true or false")
                }
            }
            guard vertex.maxParallelism >= vertex.parallelism, vertex.maxParallelism <= JobVertex.maxParallelismLimit else {
                throw JobGraphError(
                    .badParallelism,
                    "vertex '\(vertex.id)' has parallelism \(vertex.parallelism) and max parallelism \(vertex.maxParallelism); "
                        + "the max must be between the parallelism and \(JobVertex.maxParallelismLimit)")
            }
        }
        var pairs: Set<[JobVertexID]> = []
        for edge in edges {
            guard let source = vertex(edge.source) else {
                throw JobGraphError(.unknownVertex, "edge \(edge) names an unknown vertex '\(edge.source)'")
            }
            guard let target = vertex(edge.target) else {
                throw JobGraphError(.unknownVertex, "edge \(edge) names an unknown vertex '\(edge.target)'")
            }
            if edge.pattern == .forward && source.parallelism != target.parallelism {
                throw JobGraphError(
                    .forwardParallelismMismatch,
                    "forward edge \(edge) joins parallelism \(source.parallelism) to \(target.parallelism); "
                        + "forward needs equal parallelism (use rebalance or hash)")
            }
            if edge.pattern == .hash && (edge.key ?? "").isEmpty {
                throw JobGraphError(.missingKey, "hash edge \(edge) needs a key")
            }
            guard pairs.insert([edge.source, edge.target]).inserted else {
                throw JobGraphError(.duplicateEdge, "there are two edges from '\(edge.source)' to '\(edge.target)'")
            }
        }
        if topologicalOrder == nil {
            throw JobGraphError(.cycle, "the job has a cycle through \(cycleVertices().map(\.rawValue).joined(separator: " -> "))")
        }
        try validateRestartIndividual()
        if let taskExecutors { try validateResources(taskExecutors) }
    }

    /// `restart-individual` restarts a failed task alone: it restores its state, but its inputs
    /// do not rewind (the producers are not restarted), so a task downstream of an exchange that
    /// keeps state built from its input (keyed totals, windows, an exactly-once sink) would lose
    /// or double records. Such a job is refused, naming the vertex and the fix.
    private func validateRestartIndividual() throws(JobGraphError) {
        guard configuration.failover == .restartIndividual else { return }
        let consumers = Set(edges.map(\.target))
        for vertex in vertices where consumers.contains(vertex.id) {
            guard let stateful = vertex.operators.first(where: { OperatorCatalog.builtIn.keepsInputState($0) }) else { continue }
            throw JobGraphError(
                .notExactlyOnce,
                "failover: restart-individual cannot be exactly-once for vertex '\(vertex.id)': its operator '\(stateful.name)' keeps state "
                    + "built from its input, and a restarted '\(vertex.id)' alone would not get that input again; use failover: region "
                    + "(or restart-all)")
        }
    }

    /// Vertices on one cycle, in order (for the error message).
    private func cycleVertices() -> [JobVertexID] {
        var state: [JobVertexID: Int] = [:]  // 1: on the stack, 2: done
        var stack: [JobVertexID] = []
        func visit(_ id: JobVertexID) -> [JobVertexID]? {
            state[id] = 1
            stack.append(id)
            for edge in edges where edge.source == id {
                if state[edge.target] == 1 {
                    let start = stack.firstIndex(of: edge.target)!
                    return Array(stack[start...]) + [edge.target]
                }
                if state[edge.target] == nil, let cycle = visit(edge.target) { return cycle }
            }
            stack.removeLast()
            state[id] = 2
            return nil
        }
        for vertex in vertices where state[vertex.id] == nil {
            if let cycle = visit(vertex.id) { return cycle }
        }
        return []
    }

    /// Every shared slot the job asks for must fit in at least one task executor.
    private func validateResources(_ taskExecutors: [ResourceProfile]) throws(JobGraphError) {
        for group in SlotSharingGroups(self).groups {
            guard let profile = group.slotProfile else { continue }
            guard !taskExecutors.contains(where: { profile.fits(in: $0) }) else { continue }
            let detail = taskExecutors.enumerated().prefix(3).map { index, offer in
                "task executor \(index + 1) has " + profile.shortfall(in: offer).map {
                    "\($0.dimension) \($0.dimension.format($0.available)), short by \($0.dimension.format($0.needed - $0.available))"
                }.joined(separator: " and ")
            }.joined(separator: "; ")
            throw JobGraphError(
                .resourcesNeverFit,
                "slot sharing group '\(group.id)' (\(group.vertices.map(\.rawValue).joined(separator: ", "))) asks for "
                    + "\(profile) per slot, which no task executor can ever offer: \(taskExecutors.isEmpty ? "there are none" : detail)")
        }
    }
}

/// The slot sharing groups of a job: which vertices share slots, how many shared slots each group
/// needs (its highest parallelism) and what one shared slot asks for.
public struct SlotSharingGroups: Sendable {
    public struct Group: Hashable, Sendable {
        public var id: SlotSharingGroupID
        public var vertices: [JobVertexID]
        /// The highest parallelism of its vertices: subtask i of every vertex goes to shared slot i.
        public var slotCount: Int
        /// The sum of one subtask of each vertex, or nil when any of them is unspecified (then the
        /// shared slot is a default slot).
        public var slotProfile: ResourceProfile?
    }

    public let groups: [Group]

    public init(_ graph: JobGraph) {
        var order: [SlotSharingGroupID] = []
        var members: [SlotSharingGroupID: [JobVertex]] = [:]
        for vertex in graph.vertices {
            if members[vertex.slotSharingGroup] == nil { order.append(vertex.slotSharingGroup) }
            members[vertex.slotSharingGroup, default: []].append(vertex)
        }
        groups = order.map { id in
            let vertices = members[id]!
            let specified = vertices.allSatisfy { $0.resources != nil }
            return Group(
                id: id, vertices: vertices.map(\.id), slotCount: vertices.map(\.parallelism).max()!,
                slotProfile: specified ? vertices.reduce(ResourceProfile.zero) { $0 + $1.resources! } : nil)
        }
    }

    /// How many slots the job needs in all.
    public var totalSlots: Int { groups.reduce(0) { $0 + $1.slotCount } }
}
