public import BatonConfig
public import BatonCore
public import BatonHAStore
import BatonEtcd
import BatonHAStoreEtcd
import BatonHAStoreLMDB
import BatonHAStoreSQLite
public import BatonMemberLocks

/// Chooses the store backend a config names and opens the store with the config's options.
public enum HAStoreSelection {
    /// The backend kind for a file backend.
    public static func kind(_ backend: HAConfiguration.StoreConfiguration.Backend) -> HAStoreBackendKind {
        switch backend {
        case .sqlite: SQLiteHAStoreBackend.kind
        case .lmdb: LMDBHAStoreBackend.kind
        case .etcd: preconditionFailure("etcd is not a file backend: open it with open(_:access:)")
        }
    }

    /// How the members of a group with this store learn who is alive: member lock files beside
    /// a store file, keys on leases in etcd (`election` gives the leases' TTL: the election lease,
    /// rounded up to whole seconds).
    public static func liveness(_ store: HAConfiguration.StoreConfiguration, election: HAConfiguration.ElectionConfiguration) throws
        -> any MemberLiveness
    {
        switch store.backend {
        case .sqlite, .lmdb:
            return FileMemberLiveness(storePath: store.path)
        case .etcd:
            let millis = election.leaseDuration.milliseconds
            return EtcdMemberLiveness(
                client: try EtcdClient(endpoints: store.endpoints), prefix: store.prefix, leaseSeconds: max(1, Int64((millis / 1000).rounded(.up))))
        }
    }

    public static func options(_ store: HAConfiguration.StoreConfiguration) -> StoreOptions {
        StoreOptions(busyTimeout: store.busyTimeout, mapSizeBytes: store.mapSizeBytes)
    }

    /// Opens the store of `store` (creating it for `.readWrite` when absent). The format and
    /// version are always checked and every value read is verified; the scan of every value's
    /// checksum at open (O(store size)) runs for writers (masters) and when `verifyEveryValue`
    /// says so (audit), not for the clients that read a few records (status, leader retrieval).
    public static func open(
        _ store: HAConfiguration.StoreConfiguration, access: StoreAccess, time: any TimeSource = SystemTimeSource(),
        verifyEveryValue: Bool? = nil
    ) throws -> HAStore {
        var options = options(store)
        options.checkIntegrityOnOpen = verifyEveryValue ?? (access == .readWrite)
        if store.backend == .etcd {
            return try EtcdHAStoreBackend.openStore(
                endpoints: store.endpoints, prefix: store.prefix, access: access, options: options, now: time.wallNow(),
                limits: .init(requestBytes: store.maxRequestBytes, operations: store.maxTxnOps))
        }
        return try HAStore.open(path: store.path, kind: kind(store.backend), access: access, options: options, now: time.wallNow())
    }
}
