import BatonCore
import BatonElection
import BatonSimulation
import Testing

@Suite("election simulation")
struct ElectionSimulationTests {
    static let fixedSeeds: [UInt64] = [1, 2, 3, 7, 42, 1234, 9_999, 31_337]

    func simulate(_ seed: UInt64, _ adjust: (inout ElectionSimulation.Configuration) -> Void = { _ in })
        -> ElectionSimulation.Report
    {
        var configuration = ElectionSimulation.Configuration(seed: seed)
        adjust(&configuration)
        return ElectionSimulation(configuration).run()
    }

    func expectClean(_ report: ElectionSimulation.Report, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(
            report.violations.isEmpty,
            "seed \(report.seed): \(report.violations.joined(separator: "\n"))\nlast events:\n\(report.history.suffix(30).joined(separator: "\n"))",
            sourceLocation: sourceLocation)
    }

    @Test("kills and pauses never give two leaders, repeat an epoch, or leave the group leaderless", arguments: fixedSeeds)
    func invariantsHold(_ seed: UInt64) {
        let report = simulate(seed)
        expectClean(report)
        #expect(report.kills + report.pauses > 20, "seed \(seed): the schedule must inject faults")
        #expect(report.terms.count > 5, "seed \(seed): leadership must change hands")
        #expect(report.terms.map(\.epoch.rawValue) == Array(1...UInt64(report.terms.count)))
    }

    @Test("random seeds (printed on failure) keep the invariants")
    func randomSeeds() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<4 {
            let seed = generator.next() % 1_000_000
            expectClean(simulate(seed))
        }
    }

    @Test("with a slow store and five candidates the invariants still hold", arguments: [11, 12, 13] as [UInt64])
    func slowStore(_ seed: UInt64) {
        expectClean(
            simulate(seed) {
                $0.candidates = 5
                $0.storeLatencyMillis = 0...40
            })
    }

    @Test("the same seed gives the same history")
    func deterministic() {
        let first = simulate(77)
        let second = simulate(77)
        #expect(first.history == second.history)
        #expect(first.terms == second.terms)
        #expect(simulate(78).history != first.history)
    }

    @Test("kills alone are taken over through the member lock, well within the lease")
    func crashFastPath() {
        let report = simulate(5) {
            $0.killPercent = 100
            $0.restartDelayMillis = 100...300
        }
        expectClean(report)
        let crashEnded = report.terms.filter { $0.endReason == .holderDied }
        #expect(!crashEnded.isEmpty)
        #expect(report.terms.allSatisfy { $0.endReason != .leaseExpired }, "no takeover should have to wait for a lease")
        #expect(report.longestLeaderlessMillis < 500, "longest gap \(report.longestLeaderlessMillis) ms")
    }

    @Test("the checker catches a leader that acts past its lease")
    func checkerCatchesOverlappingLeaders() {
        // A negative step-down margin makes leaders act 2 s longer than standbys wait: paused
        // leaders then wake up still leading while a successor leads. The checker must see it.
        let report = simulate(3) {
            $0.killPercent = 0
            $0.election.stepDownMargin = .seconds(-2)
        }
        #expect(!report.violations.isEmpty, "the checker must catch a leader that outlives its lease")
    }
}
