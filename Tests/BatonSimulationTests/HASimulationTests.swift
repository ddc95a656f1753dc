import BatonCore
import BatonJobMaster
import BatonSimulation
import Testing

@Suite("HA cluster simulation")
struct HASimulationTests {
    @Test("try")
    func tryIt() {
        for takeover in [TakeoverPolicy.reconcile, .restartAll] {
        for seed in UInt64(1)...3 {
            let run = HASimulation.run(seed: seed, faults: 10, takeover: takeover, keepHistory: true)
            print("commits \(run.sinkCommits) checkpoints \(run.checkpoints)")
            if seed == 1 && takeover == .reconcile { print(run.history.filter { !$0.contains("checkpoint") }.prefix(150).joined(separator: "\n")) }
            print("seed \(seed): faults \(run.faults) \(run.faultsByKind) failovers \(run.failovers) violations \(run.violations.count)")
            for violation in run.violations { print("  \(violation)") }
        }
        }
    }
}
