import BatonConfig
import BatonCore
import BatonJobGraph
import Foundation
import Testing

@Suite("job specs")
struct JobSpecTests {
    static let examples = HAConfigurationTests.repository + "/examples/jobs"

    func failure(_ text: String) -> ConfigError? {
        do {
            _ = try JobSpec.parse(text: text, file: "/jobs/test.yaml")
            return nil
        } catch let error as ConfigError {
            return error
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    let base = """
        vertices:
          - id: source
            parallelism: 2
            operators:
              - sequence: { keys: 4 }
          - id: count
            parallelism: 2
            operators:
              - count
        edges:
          - { from: source, to: count, pattern: hash, key: key }
        """

    @Test("the streaming keyed count spec is the same graph as the one the builder makes")
    func specEqualsBuilder() throws {
        let spec = try JobSpec.load(path: Self.examples + "/streaming-keyed-count.yaml")
        var builder = JobGraphBuilder(
            id: "streaming-keyed-count", name: "Streaming keyed count",
            configuration: JobConfiguration(
                scheduling: .eager, failover: .region, restart: .fixedDelay(attempts: 100, delay: .milliseconds(500)),
                checkpointInterval: .milliseconds(500)))
        var source = OperatorSpec.sequence(from: 0, keys: 16)
        source.parameters["rate"] = "1000"
        builder.addVertex("source", operators: [source], parallelism: 2)
        builder.addVertex(
            "count",
            operators: [.count(), .fileSink(HAConfigurationTests.repository + "/examples/output/keyed-count", exactlyOnce: true)],
            parallelism: 2)
        builder.connect("source", to: "count", .hash, key: "key", result: .pipelined)
        #expect(spec == (try builder.build()))
    }

    @Test("the three examples load")
    func examples() throws {
        let batch = try JobSpec.load(path: Self.examples + "/batch-word-count.yaml")
        #expect(batch.configuration.scheduling == .lazyFromSources)
        #expect(batch.edges.allSatisfy { $0.resultType == .blocking })
        #expect(batch.vertices[0].operators[0].parameters["path"] == HAConfigurationTests.repository + "/examples/data/words.txt")
        #expect(FileManager.default.fileExists(atPath: batch.vertices[0].operators[0].parameters["path"]!))
        let shared = try JobSpec.load(path: Self.examples + "/slot-sharing-resources.yaml")
        let groups = SlotSharingGroups(shared).groups
        #expect(groups.map(\.id) == ["ingest", "compute"])
        #expect(groups[0].slotProfile?.cpuMillis == 750)
        #expect(groups[1].slotProfile?.extended["gpu"] == 1)
        #expect(groups[1].slotProfile?.managedMemoryBytes == 512 << 20)
        #expect(shared.configuration.restart == .exponentialBackoff(
            initial: .milliseconds(100), max: .seconds(10), multiplier: 2, resetAfter: .seconds(60)))
    }

    @Test("errors name the file, the path in the document and the problem")
    func errors() throws {
        let unknownOperator = try #require(failure(base.replacingOccurrences(of: "- count", with: "- cuont")))
        #expect(unknownOperator.keyPath == "vertices[1].operators[0]")
        #expect(unknownOperator.message.contains("unknown operator 'cuont'"))
        #expect(unknownOperator.description.hasPrefix("/jobs/test.yaml:"))
        let unknownKey = try #require(failure(base.replacingOccurrences(of: "parallelism: 2\n    operators:\n      - count", with: "paralelism: 2\n    operators:\n      - count")))
        #expect(unknownKey.keyPath == "vertices[1].paralelism")
        let edge = try #require(failure(base.replacingOccurrences(of: "to: count", with: "to: counter")))
        #expect(edge.keyPath == "edges[0].to")
        #expect(edge.message.contains("no vertex 'counter'"))
        let forward = try #require(failure(base.replacingOccurrences(of: "pattern: hash, key: key", with: "pattern: forward").replacingOccurrences(of: "parallelism: 2\n    operators:\n      - count", with: "parallelism: 3\n    operators:\n      - count")))
        #expect(forward.keyPath == "edges[0].pattern")
        #expect(forward.message.contains("forward needs equal parallelism"))
        let parameter = try #require(failure(base.replacingOccurrences(of: "- count", with: "- file-sink: { exactly-once: true }")))
        #expect(parameter.message.contains("needs the parameter 'path'"))
        let badParameter = try #require(failure(base.replacingOccurrences(of: "{ keys: 4 }", with: "{ kees: 4 }")))
        #expect(badParameter.keyPath == "vertices[0].operators[0].sequence.kees")
        let zero = try #require(failure(base.replacingOccurrences(of: "parallelism: 2\n    operators:\n      - sequence", with: "parallelism: 0\n    operators:\n      - sequence")))
        #expect(zero.keyPath == "vertices[0].parallelism")
        let noSource = try #require(failure(base + "\n  - { from: count, to: source, pattern: rebalance }\n"))
        #expect(noSource.message.contains("edge leads into it"))
        let restart = try #require(failure(base + "\nrestart: { strategy: fixed-delay, delay: 1s }\n"))
        #expect(restart.keyPath == "restart.attempts")
        #expect(restart.code == .missingKey)
    }

    @Test("a cycle through non-source vertices is refused")
    func cycle() throws {
        let text = base + """

              - { from: count, to: again, pattern: rebalance }
              - { from: again, to: count, pattern: rebalance }
            """
        let withAgain = text.replacingOccurrences(
            of: "edges:", with: "  - id: again\n    parallelism: 1\n    operators:\n      - count\nedges:")
        let error = try #require(failure(withAgain))
        #expect(error.message.contains("cycle"))
    }
}
