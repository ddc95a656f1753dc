import BatonCore
import BatonElection
import BatonHAStore
import BatonHAStoreLMDB
import BatonHAStoreSQLite
import BatonProcessControl
import BatonTestKit

/// The backends every conformance test runs on.
enum Backend: String, CaseIterable, CustomStringConvertible, Sendable {
    case sqlite, lmdb
    var kind: HAStoreBackendKind { self == .sqlite ? SQLiteHAStoreBackend.kind : LMDBHAStoreBackend.kind }
    var description: String { rawValue }
}

/// A store file in a temporary folder.
struct StoreFixture {
    let backend: Backend
    let directory: TemporaryDirectory
    var path: String { directory.file("ha.\(backend.rawValue)") }
    static let now = WallTime(millisecondsSince1970: 1_795_622_731_042)

    init(_ backend: Backend) throws {
        self.backend = backend
        directory = try TemporaryDirectory("baton-store-test")
    }

    func open(_ access: StoreAccess = .readWrite, options: StoreOptions = StoreOptions()) throws -> HAStore {
        try HAStore.open(path: path, kind: backend.kind, access: access, options: options, now: Self.now)
    }

    func remove() { directory.remove() }

    /// Runs `body` with an open store, and removes the folder afterwards.
    static func with(_ backend: Backend, _ body: (StoreFixture, HAStore) async throws -> Void) async throws {
        let fixture = try StoreFixture(backend)
        defer { fixture.remove() }
        try await body(fixture, try fixture.open())
    }
}

func candidate(_ member: MemberID, _ incarnation: UInt64 = 1) -> LeaderIdentity {
    LeaderIdentity(member: member, incarnation: Incarnation(rawValue: incarnation), address: "127.0.0.1:1", pid: 1)
}

extension HAStore {
    /// Wins the next term as `identity` when the record is vacant; returns the epoch.
    func winVacant(_ identity: LeaderIdentity) async throws -> Epoch {
        let record = try await leadership()
        let outcome = try await campaign(
            as: identity, expecting: .vacant(epoch: record?.epoch ?? .none), leaseMillis: 1000, now: StoreFixture.now)
        guard case .won(let victory) = outcome else { throw HAStoreError(.io, path: path, "expected to win") }
        return victory.record.epoch
    }
}
