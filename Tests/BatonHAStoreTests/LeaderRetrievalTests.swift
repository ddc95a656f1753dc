import BatonCore
import BatonElection
import BatonHAStore
import Testing

@Suite("leader retrieval")
struct LeaderRetrievalTests {
    @Test("any reader finds the current leader and follows each change of term", arguments: Backend.files)
    func followsChanges(_ backend: Backend) async throws {
        try await StoreFixture.with(backend) { _, store in
            let retrieval = LeaderRetrieval(store: store)
            #expect(try await retrieval.currentLeader() == nil)
            var changes = retrieval.changes(every: .milliseconds(5)).makeAsyncIterator()
            #expect(try await changes.next() == .some(nil))
            let first = try await store.winVacant(candidate("m1"))
            let seen = try await changes.next()
            #expect(seen??.member == "m1")
            #expect(seen??.epoch == first)
            #expect(seen??.address == "127.0.0.1:1")
            // Renewals are not changes of leader; a new term is.
            try await store.renew(epoch: first, now: StoreFixture.now)
            try await store.relinquish(epoch: first, reason: .resigned, now: StoreFixture.now)
            let vacant = try await changes.next()
            #expect(vacant == .some(nil))
            let second = try await store.winVacant(candidate("m2"))
            let next = try await changes.next()
            #expect(next??.member == "m2")
            #expect(next??.epoch == second)
            #expect(try await retrieval.currentLeader()?.epoch == second)
        }
    }
}
