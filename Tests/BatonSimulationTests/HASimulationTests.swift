import BatonCore
import BatonJobMaster
import BatonSimulation
import Foundation
import Testing

@Suite("HA cluster simulation (baton simulate)")
struct HASimulationTests {
    static let seeds = Array(UInt64(1)...24)

    func kinds(_ run: HASimulation.Run) -> Set<String> { Set(run.violations.map(\.kind)) }

    func describe(_ runs: [HASimulation.Run]) -> String {
        runs.flatMap { run in run.violations.map { "seed \(run.seed): \($0)" } }.prefix(10).joined(separator: "\n")
    }

    @Test("clean seeds: every fault kind is injected, masters fail over, checkpoints and sink commits go on, and no check fires")
    func cleanSeeds() async {
        let (summary, runs) = await HASimulation.sweep(seeds: Self.seeds, faults: 10, takeover: .reconcile, width: 2)
        #expect(summary.violations.isEmpty, "\(describe(runs))")
        #expect(summary.faults == 10 * Self.seeds.count)
        #expect(Set(summary.faultsByKind.keys) == Set(FaultKind.allCases.map(\.rawValue)))
        #expect(summary.failovers >= 2 * Self.seeds.count)
        #expect(runs.allSatisfy { $0.checkpoints > 10 && $0.sinkCommits > 10 })
    }

    @Test("the same seed gives byte-identical JSON; another seed does not")
    func deterministic() async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let first = try encoder.encode(await HASimulation.sweep(seeds: [7], faults: 10, takeover: .reconcile, width: 1).0)
        let second = try encoder.encode(await HASimulation.sweep(seeds: [7], faults: 10, takeover: .reconcile, width: 1).0)
        let other = try encoder.encode(await HASimulation.sweep(seeds: [8], faults: 10, takeover: .reconcile, width: 1).0)
        #expect(first == second)
        #expect(first != other)
        let history = HASimulation.run(seed: 7, faults: 10, keepHistory: true).history
        #expect(history == HASimulation.run(seed: 7, faults: 10, keepHistory: true).history)
        #expect(history.count > 20)
    }

    @Test("--takeover restart-all makes I2's check fire (restart-by-master-failover), and only it")
    func restartAllFiresI2() async {
        let (summary, runs) = await HASimulation.sweep(seeds: Array(1...8), faults: 10, takeover: .restartAll, width: 2)
        #expect(!summary.violations.isEmpty)
        #expect(Set(summary.violations.map(\.kind)) == ["restart-by-master-failover"], "\(describe(runs))")
        #expect(summary.violations.allSatisfy { $0.invariant == "I2" && $0.replay.hasSuffix("--takeover restart-all") })
    }

    /// Seed 1's cluster without random faults, with `faults` at given times.
    func scheduled(_ faults: [ScheduledFault], storeFaults: Set<StoreFault> = []) -> HASimulation.Run {
        var configuration = HASimulation.configuration(seed: 1, faults: 0)
        configuration.scheduledFaults = faults
        configuration.storeFaults = storeFaults
        configuration.keepsHistory = true
        return HASimulation.run(configuration)
    }

    @Test("a store that loses completed checkpoints makes I3's and I4's checks fire once a task restores; without it they stay silent")
    func lostCheckpointsFireI3AndI4() {
        // A new leader reads the store (and finds no checkpoint); then tasks restart.
        let faults =
            [ScheduledFault(.kind(.leaderCrash), at: .seconds(4)), ScheduledFault(.kind(.leaderCrash), at: .seconds(6))]
            + (1...3).map { ScheduledFault(.kind(.taskExecutorCrash), at: .milliseconds(6_000 + $0)) }
        let clean = scheduled(faults)
        #expect(clean.violations.isEmpty, "\(clean.violations)")
        let faulty = scheduled(faults, storeFaults: [.loseCompletedCheckpoints])
        #expect(kinds(faulty).contains("missing-checkpoint"), "\(faulty.violations)")
        #expect(faulty.violations.contains { $0.invariant == "I4" && $0.kind == "duplicate-output" }, "\(faulty.violations)")
    }

    @Test("a store that does not fence lets a paused leader's writes land after its successor began: I1's checks fire")
    func unfencedStoreFiresI1() {
        var fired: [HASimulation.Run] = []
        var clean: [HASimulation.Run] = []
        for seed in UInt64(1)...30 {
            var configuration = HASimulation.configuration(seed: seed, faults: 6)
            configuration.faultKinds = [.leaderPause]
            clean.append(HASimulation.run(configuration))
            configuration.storeFaults = [.unfenced]
            let run = HASimulation.run(configuration)
            if run.violations.contains(where: { $0.invariant == "I1" }) { fired.append(run) }
        }
        #expect(clean.allSatisfy { $0.violations.isEmpty }, "\(describe(clean))")
        #expect(fired.count >= 3, "only \(fired.count) of 30 seeds caught the stale leader's writes")
    }

    @Test("a cluster whose task executors never come back fails the liveness check: the job is not running at the end")
    func livenessFires() {
        let gone = (1...3).map { ScheduledFault(.loseTaskExecutor(ResourceID(rawValue: "te\($0)")!, returnAfter: nil), at: .seconds(4)) }
        let run = scheduled(gone)
        #expect(run.violations.contains { $0.invariant == "liveness" && $0.kind == "job-not-running" }, "\(run.violations)")
    }
}
