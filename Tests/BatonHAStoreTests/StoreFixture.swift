import BatonCore
import BatonElection
import BatonEtcd
import BatonHAStore
import BatonHAStoreEtcd
import BatonHAStoreLMDB
import BatonHAStoreSQLite
import BatonProcessControl
import BatonTestKit

/// The backends the tests run on: the conformance suite on all three, the tests of store files
/// on the two file backends.
enum Backend: String, CustomStringConvertible, Sendable {
    case sqlite, lmdb, etcd
    static let all: [Backend] = [.sqlite, .lmdb, .etcd]
    static let files: [Backend] = [.sqlite, .lmdb]
    var kind: HAStoreBackendKind {
        switch self {
        case .sqlite: SQLiteHAStoreBackend.kind
        case .lmdb: LMDBHAStoreBackend.kind
        case .etcd: preconditionFailure("etcd is not a file backend")
        }
    }
    var description: String { rawValue }
}

/// A store in a temporary folder: a store file, or for etcd a local etcd (real processes) whose
/// data lives there.
struct StoreFixture {
    let backend: Backend
    let directory: TemporaryDirectory
    let etcd: EtcdLocalCluster?
    var path: String {
        if let etcd { return "etcd://\(etcd.endpoints.joined(separator: ","))/\(Self.etcdPrefix)" }
        return directory.file("ha.\(backend.rawValue)")
    }
    static let now = WallTime(millisecondsSince1970: 1_795_622_731_042)
    static let etcdPrefix = "baton-test/"

    /// A fixture of a file backend.
    init(_ backend: Backend) throws {
        precondition(backend != .etcd, "an etcd fixture starts etcd: use StoreFixture.make")
        self.backend = backend
        directory = try TemporaryDirectory("baton-store-test")
        etcd = nil
    }

    private init(etcdIn directory: TemporaryDirectory, cluster: EtcdLocalCluster) {
        backend = .etcd
        self.directory = directory
        etcd = cluster
    }

    /// A fixture of any backend (etcd: a one-member etcd started in the fixture's folder).
    static func make(_ backend: Backend) async throws -> StoreFixture {
        guard backend == .etcd else { return try StoreFixture(backend) }
        let directory = try TemporaryDirectory("baton-store-test")
        do {
            return StoreFixture(etcdIn: directory, cluster: try await EtcdLocalCluster(members: 1, directory: directory.file("etcd")))
        } catch {
            directory.remove()
            throw error
        }
    }

    func open(_ access: StoreAccess = .readWrite, options: StoreOptions = StoreOptions()) throws -> HAStore {
        if let etcd {
            return try EtcdHAStoreBackend.openStore(
                endpoints: etcd.endpoints, prefix: Self.etcdPrefix, access: access, options: options, now: Self.now,
                limits: .init(requestBytes: EtcdLocalCluster.maxRequestBytes, operations: EtcdLocalCluster.maxTxnOps))
        }
        return try HAStore.open(path: path, kind: backend.kind, access: access, options: options, now: Self.now)
    }

    func remove() {
        etcd?.stop()
        directory.remove()
    }

    /// Runs `body` with an open store, and removes the folder afterwards.
    static func with(_ backend: Backend, _ body: (StoreFixture, HAStore) async throws -> Void) async throws {
        let fixture = try await make(backend)
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
