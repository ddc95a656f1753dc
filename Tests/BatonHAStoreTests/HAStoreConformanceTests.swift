import BatonCore
import BatonElection
import BatonHAStore
import BatonProcessControl
import BatonTestKit
import Foundation
import Testing

/// One suite, every backend: what every HA store backend must do.
@Suite("HA store conformance")
struct HAStoreConformanceTests {
    @Test("a new store is created with its format and reopens with its data", arguments: Backend.all)
    func createAndReopen(_ backend: Backend) async throws {
        let fixture = try await StoreFixture.make(backend)
        defer { fixture.remove() }
        do {
            let store = try fixture.open()
            let epoch = try await store.winVacant(candidate("m1"))
            try await store.write(fencedBy: epoch) { try $0.put(.jobs, StoreKey.text("job-1"), bytes: [1, 2, 3]) }
        }
        let reopened = try fixture.open(.readOnly)
        let value = try await reopened.read { try $0.bytes(.jobs, StoreKey.text("job-1")) }
        #expect(value == [1, 2, 3])
        let meta = try await reopened.read { reader in
            try reader.bytes(.meta, StoreKey.text("format")).map { String(decoding: $0, as: UTF8.self) }
        }
        #expect(meta == HAStore.formatName)
        #expect(try await reopened.leadership()?.epoch == Epoch(1))
        #expect(try await reopened.integrityProblems().isEmpty)
        // No temporary files are left beside the store.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: fixture.directory.path).filter { $0.contains("creating") }
        #expect(leftovers.isEmpty)
    }

    @Test("a read-only open of a missing store fails and creates nothing", arguments: Backend.all)
    func readOnlyMissing(_ backend: Backend) async throws {
        let fixture = try await StoreFixture.make(backend)
        defer { fixture.remove() }
        let error = try #require(throws: HAStoreError.self) { try fixture.open(.readOnly) }
        #expect(error.code == .notFound)
        #expect(!FileManager.default.fileExists(atPath: fixture.path))
    }

    @Test("get, put, delete and ordered prefix scans", arguments: Backend.all)
    func keyValue(_ backend: Backend) async throws {
        try await StoreFixture.with(backend) { _, store in
            let epoch = try await store.winVacant(candidate("m1"))
            try await store.write(fencedBy: epoch) { writer in
                for index in [5, 1, 300, 2] as [UInt64] {
                    try writer.put(.checkpoints, StoreKey.text("job-a/") + StoreKey.uint64(index), bytes: [UInt8(index % 256)])
                }
                try writer.put(.checkpoints, StoreKey.text("job-b/") + StoreKey.uint64(1), bytes: [9])
                try writer.put(.jobs, StoreKey.text("job-a/"), bytes: [7])
            }
            let keys = try await store.read { reader in
                try reader.entries(.checkpoints, prefix: StoreKey.text("job-a/")).map { StoreKey.readUInt64($0.key.suffix(8))! }
            }
            #expect(keys == [1, 2, 5, 300])
            let after = try await store.read { reader in
                try reader.entries(.checkpoints, prefix: StoreKey.text("job-a/"), after: StoreKey.text("job-a/") + StoreKey.uint64(2), limit: 1)
                    .map { StoreKey.readUInt64($0.key.suffix(8))! }
            }
            #expect(after == [5])
            let all = try await store.read { try $0.entries(.checkpoints).count }
            #expect(all == 5)
            try await store.write(fencedBy: epoch) { try $0.delete(.checkpoints, StoreKey.text("job-a/") + StoreKey.uint64(5)) }
            try await store.write(fencedBy: epoch) { try $0.delete(.checkpoints, StoreKey.text("absent")) }
            let remaining = try await store.read { try $0.entries(.checkpoints, prefix: StoreKey.text("job-a/")).count }
            #expect(remaining == 3)
            let otherNamespace = try await store.read { try $0.bytes(.jobs, StoreKey.text("job-a/")) }
            #expect(otherNamespace == [7])
        }
    }

    @Test("a transaction whose body throws writes nothing", arguments: Backend.all)
    func atomicity(_ backend: Backend) async throws {
        struct Abort: Error {}
        try await StoreFixture.with(backend) { _, store in
            let epoch = try await store.winVacant(candidate("m1"))
            await #expect(throws: Abort.self) {
                try await store.write(fencedBy: epoch) { writer in
                    try writer.put(.jobs, StoreKey.text("a"), bytes: [1])
                    try writer.put(.jobs, StoreKey.text("b"), bytes: [2])
                    throw Abort()
                }
            }
            #expect(try await store.read { try $0.entries(.jobs).isEmpty })
        }
    }

    @Test("a write fenced by a stale or ended epoch is refused and writes nothing", arguments: Backend.all)
    func fencing(_ backend: Backend) async throws {
        try await StoreFixture.with(backend) { _, store in
            let first = try await store.winVacant(candidate("m1"))
            let current = try #require(try await store.leadership())
            // m2 takes over because m1's lease lapsed.
            let outcome = try await store.campaign(
                as: candidate("m2"), expecting: .leaseLapsed(epoch: first, renewals: current.renewals), leaseMillis: 1000,
                now: StoreFixture.now)
            guard case .won(let victory) = outcome else { Issue.record("m2 should win"); return }
            #expect(victory.record.epoch == first.next)
            for attempt in [first, Epoch(99)] {
                let error = await #expect(throws: HAStoreError.self) {
                    try await store.write(fencedBy: attempt) { try $0.put(.jobs, StoreKey.text("stale"), bytes: [1]) }
                }
                #expect(error?.code == .fenced)
                #expect(error?.fencedWrite == FencedWrite(current: first.next, attempted: attempt))
            }
            let renew = await #expect(throws: HAStoreError.self) { try await store.renew(epoch: first, now: StoreFixture.now) }
            #expect(renew?.code == .fenced)
            let relinquish = await #expect(throws: HAStoreError.self) {
                try await store.relinquish(epoch: first, reason: .resigned, now: StoreFixture.now)
            }
            #expect(relinquish?.code == .fenced)
            #expect(try await store.read { try $0.bytes(.jobs, StoreKey.text("stale")) } == nil)
            // After m2 resigns, even its own epoch is refused.
            try await store.relinquish(epoch: first.next, reason: .resigned, now: StoreFixture.now)
            let ended = await #expect(throws: HAStoreError.self) {
                try await store.write(fencedBy: first.next) { try $0.put(.jobs, StoreKey.text("late"), bytes: [1]) }
            }
            #expect(ended?.fencedWrite == FencedWrite(current: first.next, attempted: first.next))
        }
    }

    @Test("campaigns are compare-and-set: only the expected record can be replaced", arguments: Backend.all)
    func campaignCompareAndSet(_ backend: Backend) async throws {
        try await StoreFixture.with(backend) { _, store in
            let epoch = try await store.winVacant(candidate("m1"))
            // A second vacant campaign for the same epoch loses and sees m1.
            let vacant = try await store.campaign(
                as: candidate("m2"), expecting: .vacant(epoch: .none), leaseMillis: 1000, now: StoreFixture.now)
            guard case .lost(let seen) = vacant else { Issue.record("expected to lose"); return }
            #expect(seen?.holder?.member == "m1")
            // A renewal since the observation defeats a lease-lapsed campaign.
            let observed = try #require(try await store.leadership())
            try await store.renew(epoch: epoch, now: StoreFixture.now)
            let lapsed = try await store.campaign(
                as: candidate("m2"), expecting: .leaseLapsed(epoch: epoch, renewals: observed.renewals), leaseMillis: 1000,
                now: StoreFixture.now)
            guard case .lost = lapsed else { Issue.record("a renewed lease must not be taken"); return }
            // A dead-holder campaign naming the wrong member loses.
            let wrong = try await store.campaign(
                as: candidate("m2"), expecting: .holderDead(member: "m3"), leaseMillis: 1000, now: StoreFixture.now)
            guard case .lost = wrong else { Issue.record("wrong holder must lose"); return }
            // The right one wins the next epoch and closes m1's term as holder-died.
            let right = try await store.campaign(
                as: candidate("m2"), expecting: .holderDead(member: "m1"), leaseMillis: 1000, now: StoreFixture.now)
            guard case .won(let victory) = right else { Issue.record("expected to win"); return }
            #expect(victory.record.epoch == epoch.next)
            let terms = try await store.terms()
            #expect(terms.map(\.epoch) == [epoch, epoch.next])
            #expect(terms[0].endReason == .holderDied)
            #expect(terms[0].endedBy == "m2")
            #expect(terms[1].isOpen)
            #expect(terms[1].previousEpoch == epoch)
        }
    }

    @Test("epochs strictly increase and every term is journaled with how it ended", arguments: Backend.all)
    func epochsNeverRepeat(_ backend: Backend) async throws {
        try await StoreFixture.with(backend) { _, store in
            var seen: [Epoch] = []
            for round in 0..<30 {
                let member: MemberID = round % 2 == 0 ? "m1" : "m2"
                let epoch = try await store.winVacant(candidate(member, UInt64(round)))
                seen.append(epoch)
                try await store.renew(epoch: epoch, now: StoreFixture.now)
                try await store.relinquish(epoch: epoch, reason: .resigned, now: StoreFixture.now)
            }
            #expect(seen == (1...30).map { Epoch(UInt64($0)) })
            let terms = try await store.terms()
            #expect(terms.map(\.epoch) == seen)
            #expect(terms.allSatisfy { $0.endReason == .resigned && $0.endedAt != nil })
            #expect(try await store.terms(from: Epoch(28)).map(\.epoch) == [Epoch(28), Epoch(29), Epoch(30)])
        }
    }

    @Test("concurrent campaigns from many tasks elect exactly one leader per epoch", arguments: Backend.all)
    func concurrentCampaigns(_ backend: Backend) async throws {
        try await StoreFixture.with(backend) { _, store in
            let winners = try await withThrowingTaskGroup(of: Epoch?.self) { group in
                for index in 0..<16 {
                    group.addTask {
                        let outcome = try await store.campaign(
                            as: candidate(MemberID(rawValue: "m\(index)")!), expecting: .vacant(epoch: .none), leaseMillis: 1000,
                            now: StoreFixture.now)
                        if case .won(let victory) = outcome { return victory.record.epoch }
                        return nil
                    }
                }
                return try await group.reduce(into: [Epoch]()) { if let epoch = $1 { $0.append(epoch) } }
            }
            #expect(winners == [Epoch(1)])
        }
    }
}
