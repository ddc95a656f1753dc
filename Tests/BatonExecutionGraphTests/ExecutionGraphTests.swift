import BatonCore
import BatonExecutionGraph
import BatonJobGraph
import Testing

/// Small graphs named after the shapes they have.
enum Shapes {
    /// `a(p) -pattern/result-> b(p) -pattern/result-> c(p) ...`
    static func chain(_ links: [(DistributionPattern, ResultPartitionType)], parallelism: Int) -> JobGraph {
        var builder = JobGraphBuilder(id: "chain")
        let names = (0...links.count).map { JobVertexID(rawValue: String(UnicodeScalar(UInt8(97 + $0))))! }
        for (index, name) in names.enumerated() {
            builder.addVertex(name, operators: [index == 0 ? .sequence() : .count()], parallelism: parallelism)
        }
        for (index, link) in links.enumerated() {
            builder.connect(names[index], to: names[index + 1], link.0, key: link.0 == .hash ? "key" : nil, result: link.1)
        }
        return try! builder.build()
    }
}

@Suite("execution graph")
struct ExecutionGraphTests {
    @Test("a job graph expands into subtasks, results and partitions")
    func structure() throws {
        let graph = ExecutionGraph(jobGraph: Shapes.chain([(.forward, .pipelined), (.hash, .blocking)], parallelism: 3))
        #expect(graph.vertexCount == 9)
        #expect(graph.jobVertices.map(\.id) == ["a", "b", "c"])
        #expect(graph.results.count == 2)
        let forward = graph.results[0]
        let hash = graph.results[1]
        #expect(forward.isPointwise && !hash.isPointwise)
        let b1 = ExecutionVertexID(jobVertex: 1, subtask: 1)
        #expect(graph.producers(of: b1, through: forward) == [ExecutionVertexID(jobVertex: 0, subtask: 1)])
        #expect(graph.consumers(of: b1, through: hash).count == 3)
        #expect(graph.producers(of: ExecutionVertexID(jobVertex: 2, subtask: 0), through: hash).count == 3)
        for index in 0..<graph.vertexCount { #expect(graph.flatIndex(graph.vertex(atFlatIndex: index)) == index) }
        #expect(graph.all(.created))
    }

    @Test("attempts follow the state machine and nothing else")
    func stateMachine() throws {
        var graph = ExecutionGraph(jobGraph: Shapes.chain([], parallelism: 1))
        let vertex = ExecutionVertexID(jobVertex: 0, subtask: 0)
        let first = graph.attemptID(vertex)
        #expect(throws: ExecutionGraphError.self) { try graph.transition(first, to: .running) }
        for state in [ExecutionState.scheduled, .deploying, .initializing, .running] {
            try graph.transition(first, to: state, location: state == .deploying ? TaskLocation(taskExecutor: "te1", allocation: 7) : nil)
        }
        #expect(graph.execution(vertex).location == TaskLocation(taskExecutor: "te1", allocation: 7))
        #expect(throws: ExecutionGraphError.self) { try graph.resetForNewAttempt(vertex) }
        try graph.transition(first, to: .canceling)
        #expect(throws: ExecutionGraphError.self) { try graph.transition(first, to: .running) }
        try graph.transition(first, to: .canceled)
        try graph.resetForNewAttempt(vertex)
        #expect(graph.execution(vertex) == Execution(attempt: 1, state: .created, location: nil))
        // Reports about the old attempt are refused.
        let stale = #expect(throws: ExecutionGraphError.self) { try graph.transition(first, to: .scheduled) }
        #expect(stale?.message.contains("stale") == true)
        // Every pair of states: only the documented transitions are allowed.
        let allowed: Set<[ExecutionState]> = [
            [.created, .scheduled], [.created, .canceled], [.created, .failed], [.scheduled, .deploying],
            [.scheduled, .canceled], [.scheduled, .failed], [.deploying, .initializing], [.deploying, .canceling],
            [.deploying, .failed], [.initializing, .running], [.initializing, .finished], [.initializing, .canceling],
            [.initializing, .failed], [.running, .finished], [.running, .canceling], [.running, .failed],
            [.canceling, .canceled], [.canceling, .failed],
        ]
        for from in ExecutionState.allCases {
            for to in ExecutionState.allCases {
                #expect(from.canTransition(to: to) == allowed.contains([from, to]), "\(from) -> \(to)")
            }
        }
    }

    @Test("a snapshot plus the changes after it rebuild exactly the same graph, after thousands of random transitions")
    func roundTrip() throws {
        let job = Shapes.chain([(.forward, .pipelined), (.hash, .blocking), (.broadcast, .pipelined)], parallelism: 4)
        var live = ExecutionGraph(jobGraph: job)
        var random = SeededRandom(seed: 2024)
        var snapshot = ExecutionGraphCodec.snapshot(live)
        var changesSinceSnapshot: [[UInt8]] = []
        let executors: [ResourceID] = ["te1", "te2", "te-3"]
        var applied = 0
        while applied < 5000 {
            let vertex = live.allVertices.randomElement(using: &random)!
            let current = live.execution(vertex).state
            let change: ExecutionGraphChange
            if current.isTerminal && Bool.random(using: &random) {
                change = try live.resetForNewAttempt(vertex)
            } else {
                let next = ExecutionState.allCases.filter { current.canTransition(to: $0) }
                guard let state = next.randomElement(using: &random) else { continue }
                let location = state == .deploying
                    ? TaskLocation(taskExecutor: executors.randomElement(using: &random)!, allocation: AllocationID(rawValue: random.next() % 1000)) : nil
                change = try live.transition(live.attemptID(vertex), to: state, location: location)
            }
            applied += 1
            let bytes = ExecutionGraphCodec.encode(change)
            #expect(try ExecutionGraphCodec.decode(bytes) == change)
            changesSinceSnapshot.append(bytes)
            if applied % 997 == 0 {
                snapshot = ExecutionGraphCodec.snapshot(live)
                changesSinceSnapshot = []
            }
        }
        var rebuilt = try ExecutionGraphCodec.restore(job, snapshot: snapshot)
        for bytes in changesSinceSnapshot { try rebuilt.apply(try ExecutionGraphCodec.decode(bytes)) }
        #expect(rebuilt.executionsInOrder == live.executionsInOrder)
        #expect(try ExecutionGraphCodec.restore(job, snapshot: ExecutionGraphCodec.snapshot(live)).executionsInOrder == live.executionsInOrder)
        // The snapshot is compact: a few bytes per subtask.
        #expect(snapshot.count < live.vertexCount * 16 + 64)
    }

    @Test("damaged persisted bytes are errors, never crashes")
    func damagedBytes() throws {
        let job = Shapes.chain([(.forward, .pipelined)], parallelism: 2)
        let snapshot = ExecutionGraphCodec.snapshot(ExecutionGraph(jobGraph: job))
        #expect(throws: (any Error).self) { try ExecutionGraphCodec.restore(job, snapshot: Array(snapshot.dropLast())) }
        #expect(throws: (any Error).self) { try ExecutionGraphCodec.restore(job, snapshot: snapshot + [0]) }
        #expect(throws: (any Error).self) {
            try ExecutionGraphCodec.restore(Shapes.chain([], parallelism: 3), snapshot: snapshot)
        }
        let change = ExecutionGraphCodec.encode(.state(ExecutionAttemptID(vertex: .init(jobVertex: 0, subtask: 1), attempt: 0), .scheduled, nil))
        for length in 0..<change.count {
            #expect(throws: (any Error).self) { try ExecutionGraphCodec.decode(Array(change.prefix(length))) }
        }
        var wrongState = change
        wrongState[5] = 99
        #expect(throws: (any Error).self) { try ExecutionGraphCodec.decode(wrongState) }
        // A change out of order is refused when replayed.
        var graph = ExecutionGraph(jobGraph: job)
        #expect(throws: ExecutionGraphError.self) {
            try graph.apply(.state(ExecutionAttemptID(vertex: .init(jobVertex: 0, subtask: 1), attempt: 0), .running, nil))
        }
        #expect(throws: ExecutionGraphError.self) { try graph.apply(.reset(.init(jobVertex: 0, subtask: 1), 5)) }
    }
}

@Suite("pipelined regions")
struct PipelinedRegionTests {
    func regions(_ job: JobGraph) -> (ExecutionGraph, PipelinedRegions) {
        let graph = ExecutionGraph(jobGraph: job)
        return (graph, PipelinedRegions(graph))
    }

    func members(_ regions: PipelinedRegions) -> Set<Set<String>> {
        Set(regions.regions.map { Set($0.map { "\($0.jobVertex)#\($0.subtask)" }) })
    }

    @Test("all-to-all pipelined edges make one region")
    func allToAllPipelined() {
        let (_, regions) = regions(Shapes.chain([(.hash, .pipelined), (.rebalance, .pipelined)], parallelism: 3))
        #expect(regions.count == 1)
    }

    @Test("forward pipelined chains make one region per subtask lane")
    func forwardLanes() {
        let (_, regions) = regions(Shapes.chain([(.forward, .pipelined), (.forward, .pipelined)], parallelism: 3))
        #expect(members(regions) == [["0#0", "1#0", "2#0"], ["0#1", "1#1", "2#1"], ["0#2", "1#2", "2#2"]])
    }

    @Test("blocking edges split regions")
    func blockingSplits() {
        let (_, regions) = regions(Shapes.chain([(.forward, .pipelined), (.hash, .blocking)], parallelism: 2))
        #expect(members(regions) == [["0#0", "1#0"], ["0#1", "1#1"], ["2#0"], ["2#1"]])
    }

    @Test("regions that would depend on each other in a cycle through blocking results are merged")
    func cyclesMerge() throws {
        // a -forward/pipelined-> c, b -forward/pipelined-> c: lanes {a_i, b_i, c_i};
        // a -hash/blocking-> b makes lane 0 feed lane 1 and lane 1 feed lane 0: one region.
        var builder = JobGraphBuilder(id: "cycle")
        builder.addVertex("a", operators: [.sequence()], parallelism: 2)
        builder.addVertex("b", operators: [.count()], parallelism: 2)
        builder.addVertex("c", operators: [.count()], parallelism: 2)
        builder.connect("a", to: "c", .forward)
        builder.connect("b", to: "c", .forward)
        builder.connect("a", to: "b", .hash, key: "key", result: .blocking)
        let (_, regions) = regions(try builder.build())
        #expect(regions.count == 1)
    }

    @Test("regions of 100,000 subtasks are computed without quadratic blow-up")
    func large() {
        let (graph, regions) = regions(
            Shapes.chain([(.hash, .blocking), (.forward, .pipelined), (.hash, .blocking)], parallelism: 25_000))
        #expect(graph.vertexCount == 100_000)
        #expect(regions.count == 75_000)
    }
}
