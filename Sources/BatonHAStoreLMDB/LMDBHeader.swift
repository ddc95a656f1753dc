import BatonHAStore

/// Checks an LMDB data file from its two meta pages, without LMDB: the magic, the data version,
/// and that the file holds every page the newest meta page says is in use (LMDB maps the file and
/// would fault reading past its end).
///
/// Layout of a meta page (lmdb/mdb.c, 64-bit): a 16-byte page header, then `mm_magic` (u32,
/// 0xBEEFC0DE), `mm_version` (u32, 1), `mm_address` (8), `mm_mapsize` (8), two `MDB_db` of 48
/// bytes (the first one's `md_pad` holds the page size), `mm_last_pg` (u64), `mm_txnid` (u64).
enum LMDBHeader {
    static let magic: UInt32 = 0xBEEF_C0DE
    static let dataVersion: UInt32 = 1

    struct Meta {
        var pageSize: UInt32
        var lastPage: UInt64
        var transactionID: UInt64
    }

    static func validate(path: String) throws {
        guard case .regular(let size) = try StoreFiles.kind(of: path) else {
            throw HAStoreError(.notAStore, path: path, "is not a regular file")
        }
        if size == 0 {
            throw HAStoreError(.notAStore, path: path, "is an empty file, not an LMDB store: remove it or change store.path")
        }
        let first = try StoreFiles.readPrefix(of: path, count: 160)
        guard first.count >= 24, u32(first, 16) == magic else {
            throw HAStoreError(.notAStore, path: path, "is not an LMDB data file (no LMDB magic number)")
        }
        guard u32(first, 20) == dataVersion else {
            throw HAStoreError(.notAStore, path: path, "is an LMDB file of data version \(u32(first, 20)), not \(dataVersion)")
        }
        guard first.count == 160 else {
            throw HAStoreError(.truncated, path: path, "is truncated: \(size) bytes, shorter than an LMDB meta page")
        }
        let meta0 = parse(first)
        guard meta0.pageSize >= 512, meta0.pageSize <= 65_536, meta0.pageSize & (meta0.pageSize - 1) == 0 else {
            throw HAStoreError(.corrupt, path: path, "has an invalid page size \(meta0.pageSize) in its meta page")
        }
        guard size >= 2 * Int64(meta0.pageSize) else {
            throw HAStoreError(
                .truncated, path: path, "is truncated: \(size) bytes, shorter than its two \(meta0.pageSize)-byte meta pages")
        }
        let second = try StoreFiles.read(path, offset: Int64(meta0.pageSize), count: 160)
        var newest = meta0
        if second.count == 160, u32(second, 16) == magic {
            let meta1 = parse(second)
            if meta1.transactionID > meta0.transactionID { newest = meta1 }
        } else {
            throw HAStoreError(.corrupt, path: path, "its second LMDB meta page is damaged")
        }
        let needed = (Int64(clamping: newest.lastPage) + 1) * Int64(meta0.pageSize)
        guard size >= needed else {
            throw HAStoreError(
                .truncated, path: path,
                "is truncated: its meta page says \(newest.lastPage + 1) pages of \(meta0.pageSize) bytes are in use, but the file has \(size) bytes")
        }
    }

    private static func parse(_ page: [UInt8]) -> Meta {
        Meta(pageSize: u32(page, 40), lastPage: u64(page, 136), transactionID: u64(page, 144))
    }

    private static func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * UInt32($1)) }
    }

    private static func u64(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
    }
}
