import BatonCore
import BatonJobGraph
import Testing

@Suite("job graph")
struct JobGraphTests {
    static let gib: Int64 = 1 << 30

    func chain(_ patterns: [DistributionPattern], parallelism: [Int]) -> JobGraphBuilder {
        var builder = JobGraphBuilder(id: "chain")
        for (index, p) in parallelism.enumerated() {
            builder.addVertex(
                JobVertexID(rawValue: "v\(index)")!, operators: [index == 0 ? .sequence() : .count()], parallelism: p)
        }
        for (index, pattern) in patterns.enumerated() {
            builder.connect(
                JobVertexID(rawValue: "v\(index)")!, to: JobVertexID(rawValue: "v\(index + 1)")!, pattern,
                key: pattern == .hash ? "key" : nil)
        }
        return builder
    }

    func failure(_ build: () throws -> JobGraph) -> JobGraphError? {
        do {
            _ = try build()
            return nil
        } catch {
            return error as? JobGraphError
        }
    }

    @Test("a valid graph builds, in topological order")
    func valid() throws {
        var builder = JobGraphBuilder(id: "diamond")
        builder.addVertex("d", operators: [.count()], parallelism: 2)
        builder.addVertex("a", operators: [.sequence()], parallelism: 2)
        builder.addVertex("b", operators: [.count()], parallelism: 2)
        builder.addVertex("c", operators: [.count()], parallelism: 3)
        builder.connect("a", to: "b", .forward)
        builder.connect("a", to: "c", .rebalance)
        builder.connect("b", to: "d", .hash, key: "key")
        builder.connect("c", to: "d", .broadcast, result: .blocking)
        let graph = try builder.build()
        #expect(graph.topologicalOrder == ["a", "b", "c", "d"])
        #expect(graph.subtaskCount == 9)
        #expect(graph.vertex("a")?.maxParallelism == 128)
        #expect(JobVertex.defaultMaxParallelism(for: 1000) == 2048)
        #expect(JobVertex.defaultMaxParallelism(for: 30_000) == 32_768)
    }

    @Test("a cycle is refused, naming the vertices on it")
    func cycle() throws {
        var builder = chain([.forward, .forward], parallelism: [2, 2, 2])
        builder.connect("v2", to: "v1", .forward)
        let error = try #require(failure { try builder.build() })
        #expect(error.code == .cycle)
        #expect(error.message.contains("v1 -> v2 -> v1"))
    }

    @Test("forward between different parallelisms is refused")
    func forwardMismatch() throws {
        let error = try #require(failure { try chain([.forward], parallelism: [2, 3]).build() })
        #expect(error.code == .forwardParallelismMismatch)
        #expect(error.message.contains("parallelism 2 to 3"))
    }

    @Test("parallelism 0 or above the max is refused")
    func parallelismBounds() throws {
        var zero = JobGraphBuilder(id: "zero")
        zero.addVertex("v", operators: [.sequence()], parallelism: 0)
        #expect(failure { try zero.build() }?.code == .badParallelism)
        var above = JobGraphBuilder(id: "above")
        above.addVertex("v", operators: [.sequence()], parallelism: 10, maxParallelism: 8)
        let error = try #require(failure { try above.build() })
        #expect(error.code == .badParallelism)
        #expect(error.message.contains("max parallelism 8"))
    }

    @Test("an edge naming an unknown vertex is refused")
    func unknownVertex() throws {
        var builder = chain([], parallelism: [1])
        builder.connect("v0", to: "nowhere", .forward)
        let error = try #require(failure { try builder.build() })
        #expect(error.code == .unknownVertex)
        #expect(error.message.contains("'nowhere'"))
    }

    @Test("other structural errors are named")
    func otherErrors() throws {
        #expect(failure { try JobGraphBuilder(id: "empty").build() }?.code == .empty)
        var noOperators = JobGraphBuilder(id: "x")
        noOperators.addVertex("v", operators: [], parallelism: 1)
        #expect(failure { try noOperators.build() }?.code == .noOperators)
        var duplicate = JobGraphBuilder(id: "x")
        duplicate.addVertex("v", operators: [.sequence()], parallelism: 1)
        duplicate.addVertex("v", operators: [.sequence()], parallelism: 1)
        #expect(failure { try duplicate.build() }?.code == .duplicateVertex)
        var noKey = chain([], parallelism: [1, 1])
        noKey.connect("v0", to: "v1", .hash)
        #expect(failure { try noKey.build() }?.code == .missingKey)
    }

    @Test("a slot no task executor could ever offer is refused, saying which resource is short and by how much")
    func resourcesNeverFit() throws {
        var builder = JobGraphBuilder(id: "big")
        builder.addVertex(
            "source", operators: [.sequence()], parallelism: 2, slotSharingGroup: "g",
            resources: ResourceProfile(cpuMillis: 3000, taskHeapBytes: 2 * Self.gib))
        builder.addVertex(
            "gpu", operators: [.count()], parallelism: 2, slotSharingGroup: "g",
            resources: ResourceProfile(cpuMillis: 2000, extended: ["gpu": 1]))
        builder.connect("source", to: "gpu", .forward)
        let executors = [
            ResourceProfile(cpuMillis: 4000, taskHeapBytes: 8 * Self.gib),
            ResourceProfile(cpuMillis: 2000, taskHeapBytes: 8 * Self.gib, extended: ["gpu": 2]),
        ]
        let error = try #require(failure { try builder.build(taskExecutors: executors) })
        #expect(error.code == .resourcesNeverFit)
        #expect(error.message.contains("slot sharing group 'g'"))
        #expect(error.message.contains("cpu 5 cores"))
        #expect(error.message.contains("task executor 1 has cpu 4 cores, short by 1 core and gpu 0, short by 1"), "\(error.message)")
        #expect(error.message.contains("task executor 2 has cpu 2 cores, short by 3 cores"), "\(error.message)")
        // It fits once one task executor is big enough.
        let big = executors + [ResourceProfile(cpuMillis: 8000, taskHeapBytes: 8 * Self.gib, extended: ["gpu": 1])]
        #expect(throws: Never.self) { try builder.build(taskExecutors: big) }
    }

    @Test("slot sharing: a source-map-sink job needs as many slots as its highest parallelism")
    func slotSharingFigure5() throws {
        var builder = JobGraphBuilder(id: "figure-5")
        builder.addVertex("source", operators: [.sequence()], parallelism: 2)
        builder.addVertex("map", operators: [.map("identity")], parallelism: 6)
        builder.addVertex("sink", operators: [.print()], parallelism: 1)
        builder.connect("source", to: "map", .rebalance)
        builder.connect("map", to: "sink", .rebalance)
        let groups = SlotSharingGroups(try builder.build())
        #expect(groups.totalSlots == 6)
        #expect(groups.groups.map(\.slotCount) == [6])
        #expect(groups.groups[0].slotProfile == nil)
        // Two groups need their highest parallelisms added up; specified profiles add up per slot.
        var split = JobGraphBuilder(id: "split")
        split.addVertex("a", operators: [.sequence()], parallelism: 4, slotSharingGroup: "x", resources: ResourceProfile(cpuMillis: 500))
        split.addVertex("b", operators: [.count()], parallelism: 4, slotSharingGroup: "x", resources: ResourceProfile(cpuMillis: 250))
        split.addVertex("c", operators: [.discard()], parallelism: 2, slotSharingGroup: "y")
        split.connect("a", to: "b", .forward)
        split.connect("b", to: "c", .rebalance)
        let splitGroups = SlotSharingGroups(try split.build())
        #expect(splitGroups.totalSlots == 6)
        #expect(splitGroups.groups[0].slotProfile == ResourceProfile(cpuMillis: 750))
    }

    @Test("restart-individual is refused where a restarted task's input would not rewind: keyed state or an exactly-once sink after an exchange")
    func restartIndividualNeedsRewindableInputs() throws {
        func job(_ downstream: [OperatorSpec]) -> JobGraphBuilder {
            var builder = JobGraphBuilder(id: "ri", configuration: JobConfiguration(failover: .restartIndividual))
            builder.addVertex("source", operators: [.sequence()], parallelism: 2)
            builder.addVertex("sink", operators: downstream, parallelism: 2)
            builder.connect("source", to: "sink", .hash, key: "key")
            return builder
        }
        for downstream: [OperatorSpec] in [[.count(), .discard()], [.fileSink("/o")], [.map("double"), .tumblingWindow(.seconds(1)), .print()]] {
            let error = failure { try job(downstream).build() }
            #expect(error?.code == .notExactlyOnce, "\(downstream)")
            #expect(error?.message.contains("vertex 'sink'") == true && error?.message.contains("failover: region") == true, "\(error?.message ?? "")")
        }
        // Stateless consumers, an at-least-once sink, or state inside the source's own chain are fine.
        #expect(failure { try job([.map("double"), .fileSink("/o", exactlyOnce: false)]).build() } == nil)
        var chained = JobGraphBuilder(id: "chained", configuration: JobConfiguration(failover: .restartIndividual))
        chained.addVertex("all", operators: [.sequence(), .count(), .fileSink("/o")], parallelism: 2)
        #expect(failure { try chained.build() } == nil)
        // The same job with region failover is exactly-once, and accepted.
        var region = job([.count(), .fileSink("/o")])
        region.configuration.failover = .region
        #expect(failure { try region.build() } == nil)
    }

    @Test("a file sink's exactly-once is true or false, nothing else (every reader agrees on what it means)")
    func exactlyOnceIsABoolean() throws {
        for value in ["True", "yes", "1", ""] {
            var builder = JobGraphBuilder(id: "eo")
            builder.addVertex("s", operators: [.sequence(), OperatorSpec("file-sink", ["path": "/o", "exactly-once": value])], parallelism: 1)
            let error = failure { try builder.build() }
            #expect(error?.code == .badParameter && error?.message.contains("true or false") == true, "\(value)")
        }
        var builder = JobGraphBuilder(id: "eo")
        builder.addVertex("s", operators: [.sequence(), .fileSink("/o", exactlyOnce: false)], parallelism: 1)
        #expect(failure { try builder.build() } == nil)
    }
}
