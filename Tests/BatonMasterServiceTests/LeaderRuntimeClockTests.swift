import BatonConfig
import BatonCore
import BatonElection
import BatonHAStore
import BatonHAStoreSelection
import BatonJobGraph
import BatonJobManager
import BatonJobMaster
@testable import BatonMasterService
import BatonProcessControl
import BatonTestKit
import Foundation
import Logging
import Testing

@Suite("the leader's shell on an injected clock")
struct LeaderRuntimeClockTests {
    @Test("a slot request times out when the injected clock passes the timeout, not before, however long the test waits", .timeLimit(.minutes(1)))
    func timersRunOnTheInjectedClock() async throws {
        let directory = try TemporaryDirectory("baton-runtime-clock")
        defer { directory.remove() }
        let path = directory.file("local.yaml")
        try TestConfigs.group(backend: "sqlite", masters: 1).write(toFile: path, atomically: true, encoding: .utf8)
        let configuration = try HAConfiguration.load(path: path)
        try FileManager.default.createDirectory(atPath: directory.file("data"), withIntermediateDirectories: true)
        let store = try HAStoreSelection.open(configuration.store, access: .readWrite)
        let identity = LeaderIdentity(member: "m1", incarnation: Incarnation(rawValue: 1), address: "-", pid: getpid())
        guard case .won(let victory) = try await store.campaign(as: identity, expecting: .vacant(epoch: .none), leaseMillis: 60_000, now: SystemTimeSource().wallNow())
        else {
            Issue.record("the test's master must win its own store")
            return
        }
        let clock = ManualClock()
        let runtime = LeaderRuntime(
            epoch: victory.record.epoch, identity: identity, store: store, configuration: configuration, mode: .session, takeover: .reconcile,
            logger: Logger(label: "test"), time: SystemTimeSource(), clock: clock, lease: .holdingForever)
        let running = Task { try await runtime.run() }
        // No task executor: the job's slot requests wait, with their timeout (300 s) on the clock.
        var builder = JobGraphBuilder(id: "waits", configuration: JobConfiguration(scheduling: .eager, failover: .region, restart: .none))
        builder.addVertex("a", operators: [.sequence()], parallelism: 1)
        let graph = try builder.build()
        #expect(await runtime.request { .submit(graph, savepoint: nil, $0) } == .submitted("waits"))
        let outcome = Task { await runtime.request { .awaitJob("waits", $0) } }
        try await Task.sleep(for: .milliseconds(300))
        #expect(await runtime.request { .awaitJob("missing", $0) } == .refused("no job 'missing'"), "the runtime answers meanwhile")
        clock.advance(by: .seconds(299))
        try await Task.sleep(for: .milliseconds(100))
        #expect(clock.sleeping > 0, "the timeout still waits for the clock")
        clock.advance(by: .seconds(2))
        guard case .outcome(let ended) = await outcome.value else {
            Issue.record("the job did not end")
            return
        }
        #expect(ended.state == .failed)
        #expect(ended.failure?.contains("no slot within 5m") == true, "\(ended.failure ?? "")")
        runtime.stop()
        try await running.value
    }
}
