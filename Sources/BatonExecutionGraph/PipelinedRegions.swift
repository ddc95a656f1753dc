import BatonJobGraph

/// The pipelined regions of an ExecutionGraph: sets of subtasks connected by pipelined results.
/// A region runs and fails together (its tasks exchange data while running); regions are joined
/// only by blocking results, which outlive their producers.
///
/// When blocking results would make regions depend on each other in a cycle, those regions are
/// merged into one (they could never be restarted one without the other).
///
/// Cost: linear in subtasks plus results (all-to-all connections are handled per job vertex).
public struct PipelinedRegions: Sendable {
    /// The region of each vertex, by the graph's flat index.
    private let regionOfFlat: [Int32]
    /// Each region's vertices, in flat order.
    public let regions: [[ExecutionVertexID]]

    public init(_ graph: ExecutionGraph) {
        var sets = UnionFind(count: graph.vertexCount)
        for result in graph.results where result.type == .pipelined {
            PipelinedRegions.connect(result, in: graph, &sets)
        }
        var assignment = sets.compactLabels()
        // Merge regions that depend on each other in a cycle through blocking results.
        let cycles = PipelinedRegions.cyclicGroups(graph, labels: assignment.labels, regionCount: assignment.count)
        if !cycles.isEmpty {
            var representative = [Int](repeating: -1, count: assignment.count)
            for (index, label) in assignment.labels.enumerated() where representative[Int(label)] < 0 {
                representative[Int(label)] = index
            }
            for group in cycles {
                for other in group.dropFirst() { sets.union(representative[group[0]], representative[other]) }
            }
            assignment = sets.compactLabels()
        }
        var regions = Array(repeating: [ExecutionVertexID](), count: assignment.count)
        for index in 0..<graph.vertexCount {
            regions[Int(assignment.labels[index])].append(graph.vertex(atFlatIndex: index))
        }
        self.regionOfFlat = assignment.labels
        self.regions = regions
    }

    public var count: Int { regions.count }

    public func region(of vertex: ExecutionVertexID, in graph: ExecutionGraph) -> Int {
        Int(regionOfFlat[graph.flatIndex(vertex)])
    }

    public func region(ofFlatIndex index: Int) -> Int { Int(regionOfFlat[index]) }

    private static func connect(_ result: IntermediateResult, in graph: ExecutionGraph, _ sets: inout UnionFind) {
        let producerBase = graph.flatIndex(ExecutionVertexID(jobVertex: result.producer, subtask: 0))
        let consumerBase = graph.flatIndex(ExecutionVertexID(jobVertex: result.consumer, subtask: 0))
        if result.isPointwise {
            for subtask in 0..<result.partitions { sets.union(producerBase + subtask, consumerBase + subtask) }
        } else {
            for subtask in 0..<result.partitions { sets.union(producerBase, producerBase + subtask) }
            for subtask in 0..<graph.jobVertices[result.consumer].parallelism { sets.union(producerBase, consumerBase + subtask) }
        }
    }

    /// Groups of regions (more than one each) that form cycles through blocking results.
    private static func cyclicGroups(_ graph: ExecutionGraph, labels: [Int32], regionCount: Int) -> [[Int]] {
        let blocking = graph.results.filter { $0.type == .blocking }
        guard !blocking.isEmpty else { return [] }
        // Nodes: regions, then one virtual node per all-to-all blocking result (so that an
        // all-to-all connection costs producers + consumers edges, not their product).
        var successors = Array(repeating: [Int](), count: regionCount)
        for result in blocking {
            let producerBase = graph.flatIndex(ExecutionVertexID(jobVertex: result.producer, subtask: 0))
            let consumerBase = graph.flatIndex(ExecutionVertexID(jobVertex: result.consumer, subtask: 0))
            if result.isPointwise {
                for subtask in 0..<result.partitions {
                    let from = Int(labels[producerBase + subtask])
                    let to = Int(labels[consumerBase + subtask])
                    if from != to { successors[from].append(to) }
                }
            } else {
                let virtual = successors.count
                successors.append([])
                var producerRegions = Set<Int>()
                for subtask in 0..<result.partitions { producerRegions.insert(Int(labels[producerBase + subtask])) }
                for region in producerRegions { successors[region].append(virtual) }
                var consumerRegions = Set<Int>()
                for subtask in 0..<graph.jobVertices[result.consumer].parallelism {
                    consumerRegions.insert(Int(labels[consumerBase + subtask]))
                }
                successors[virtual] = Array(consumerRegions)
            }
        }
        return StronglyConnected.components(successors).compactMap { component in
            let regions = component.filter { $0 < regionCount }.sorted()
            return regions.count > 1 ? regions : nil
        }
    }
}

/// Disjoint sets over 0..<count, with path halving and union by size.
struct UnionFind {
    private var parent: [Int32]
    private var size: [Int32]

    init(count: Int) {
        parent = (0..<count).map { Int32($0) }
        size = Array(repeating: 1, count: count)
    }

    mutating func find(_ element: Int) -> Int {
        var node = element
        while Int(parent[node]) != node {
            parent[node] = parent[Int(parent[node])]
            node = Int(parent[node])
        }
        return node
    }

    mutating func union(_ a: Int, _ b: Int) {
        var rootA = find(a)
        var rootB = find(b)
        guard rootA != rootB else { return }
        if size[rootA] < size[rootB] { swap(&rootA, &rootB) }
        parent[rootB] = Int32(rootA)
        size[rootA] += size[rootB]
    }

    /// A label 0..<count per element, numbered by first appearance.
    mutating func compactLabels() -> (labels: [Int32], count: Int) {
        var labelOfRoot: [Int: Int32] = [:]
        var labels = [Int32](repeating: 0, count: parent.count)
        for element in 0..<parent.count {
            let root = find(element)
            if let label = labelOfRoot[root] {
                labels[element] = label
            } else {
                let label = Int32(labelOfRoot.count)
                labelOfRoot[root] = label
                labels[element] = label
            }
        }
        return (labels, labelOfRoot.count)
    }
}

/// Tarjan's strongly connected components, iterative (graphs of 100k nodes would overflow the
/// stack with recursion).
enum StronglyConnected {
    static func components(_ successors: [[Int]]) -> [[Int]] {
        let count = successors.count
        var index = [Int](repeating: -1, count: count)
        var lowLink = [Int](repeating: 0, count: count)
        var onStack = [Bool](repeating: false, count: count)
        var stack: [Int] = []
        var components: [[Int]] = []
        var next = 0
        for start in 0..<count where index[start] == -1 {
            var work: [(node: Int, edge: Int)] = [(start, 0)]
            index[start] = next
            lowLink[start] = next
            next += 1
            stack.append(start)
            onStack[start] = true
            while let (node, edge) = work.popLast() {
                if edge < successors[node].count {
                    let successor = successors[node][edge]
                    work.append((node, edge + 1))
                    if index[successor] == -1 {
                        index[successor] = next
                        lowLink[successor] = next
                        next += 1
                        stack.append(successor)
                        onStack[successor] = true
                        work.append((successor, 0))
                    } else if onStack[successor] {
                        lowLink[node] = min(lowLink[node], index[successor])
                    }
                    continue
                }
                if let parent = work.last?.node { lowLink[parent] = min(lowLink[parent], lowLink[node]) }
                if lowLink[node] == index[node] {
                    var component: [Int] = []
                    while let member = stack.popLast() {
                        onStack[member] = false
                        component.append(member)
                        if member == node { break }
                    }
                    components.append(component)
                }
            }
        }
        return components
    }
}
