import BatonHAStore

/// Checks an SQLite file from its first 100 bytes, without SQLite: the magic, the page size, the
/// Baton application id, the format version, and that the file is as long as its header says.
enum SQLiteHeader {
    static let magic = Array("SQLite format 3\u{0}".utf8)

    static func validate(path: String) throws {
        guard case .regular(let size) = try StoreFiles.kind(of: path) else {
            throw HAStoreError(.notAStore, path: path, "is not a regular file")
        }
        let header = try StoreFiles.readPrefix(of: path, count: 100)
        if size == 0 {
            throw HAStoreError(.notAStore, path: path, "is an empty file, not an SQLite store: remove it or change store.path")
        }
        guard header.count >= magic.count, Array(header.prefix(magic.count)) == magic else {
            throw HAStoreError(.notAStore, path: path, "is not an SQLite database (no SQLite header)")
        }
        guard header.count == 100 else {
            throw HAStoreError(.truncated, path: path, "is truncated: \(size) bytes, shorter than an SQLite header")
        }
        func u16(_ offset: Int) -> UInt32 { UInt32(header[offset]) << 8 | UInt32(header[offset + 1]) }
        func u32(_ offset: Int) -> UInt32 { u16(offset) << 16 | u16(offset + 2) }
        let rawPageSize = u16(16)
        let pageSize = rawPageSize == 1 ? 65_536 : rawPageSize
        guard pageSize >= 512, pageSize <= 65_536, pageSize & (pageSize - 1) == 0 else {
            throw HAStoreError(.corrupt, path: path, "has an invalid page size \(rawPageSize) in its header")
        }
        let applicationID = u32(68)
        guard applicationID == SQLiteHAStoreBackend.applicationID else {
            throw HAStoreError(
                .foreignFormat, path: path,
                "is an SQLite database but not a Baton HA store (application_id \(applicationID)); point store.path elsewhere")
        }
        let version = u32(60)
        guard version <= HAStore.formatVersion else {
            throw HAStoreError(
                .newerVersion, path: path,
                "was written by format version \(version); this baton reads up to version \(HAStore.formatVersion): upgrade baton")
        }
        guard header[18] == 2 && header[19] == 2 else {
            throw HAStoreError(
                .foreignFormat, path: path,
                "is an SQLite database that is not in WAL mode (format bytes \(header[18])/\(header[19])): not a Baton HA store")
        }
        // A kill during a checkpoint can leave the file shorter than its header says while the WAL
        // still holds everything: then SQLite's recovery and integrity check decide.
        if case .regular(let walSize) = try StoreFiles.kind(of: path + "-wal"), walSize > 0 { return }
        guard size % Int64(pageSize) == 0 else {
            throw HAStoreError(
                .truncated, path: path, "is truncated: \(size) bytes is not a whole number of \(pageSize)-byte pages")
        }
        let changeCounter = u32(24)
        let validFor = u32(92)
        let pages = u32(28)
        if changeCounter == validFor, pages > 0, Int64(pages) * Int64(pageSize) > size {
            throw HAStoreError(
                .truncated, path: path,
                "is truncated: its header says \(pages) pages of \(pageSize) bytes, but the file has \(size) bytes")
        }
    }
}
