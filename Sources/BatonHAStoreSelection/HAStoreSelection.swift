public import BatonConfig
public import BatonCore
public import BatonHAStore
import BatonHAStoreLMDB
import BatonHAStoreSQLite

/// Chooses the store backend a config names and opens the store with the config's options.
public enum HAStoreSelection {
    /// The backend kind for `backend`.
    public static func kind(_ backend: HAConfiguration.StoreConfiguration.Backend) -> HAStoreBackendKind {
        switch backend {
        case .sqlite: SQLiteHAStoreBackend.kind
        case .lmdb: LMDBHAStoreBackend.kind
        case .etcd: preconditionFailure("the config loader refuses the etcd backend until it exists")
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
        return try HAStore.open(path: store.path, kind: kind(store.backend), access: access, options: options, now: time.wallNow())
    }
}
