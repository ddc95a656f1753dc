#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import BatonFiles

/// Small file-system operations the stores need, on POSIX calls directly.
public enum StoreFiles {
    public enum Kind: Sendable, Equatable { case missing, regular(size: Int64), directory, other }

    /// What is at `path`: `.missing` only when nothing is there (ENOENT); any other failure to
    /// look (permissions, I/O, an unmounted volume) is an error, never taken as "create a store".
    public static func kind(of path: String) throws -> Kind {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return .missing }
            throw HAStoreError(.io, path: path, "cannot look at the store file: \(errnoText())")
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG: return .regular(size: Int64(info.st_size))
        case S_IFDIR: return .directory
        default: return .other
        }
    }

    /// Up to `count` bytes from the start of the file.
    public static func readPrefix(of path: String, count: Int) throws -> [UInt8] {
        try read(path, offset: 0, count: count)
    }

    public static func read(_ path: String, offset: Int64, count: Int) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw HAStoreError(.io, path: path, "cannot open for reading: \(errnoText())") }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: count)
        var total = 0
        while total < count {
            let n = buffer.withUnsafeMutableBytes { raw in
                pread(fd, raw.baseAddress! + total, count - total, off_t(offset) + off_t(total))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw HAStoreError(.io, path: path, "cannot read: \(errnoText())")
            }
            if n == 0 { break }
            total += n
        }
        return Array(buffer.prefix(total))
    }

    /// Makes `directory` and its parents; each folder it creates is made durable in its parent.
    public static func makeDirectories(_ directory: String) throws {
        do { try DurableFiles.makeDirectories(directory) } catch { throw HAStoreError(.io, path: directory, error.message) }
    }

    /// fsyncs a directory so that a new, renamed or removed entry in it is durable.
    public static func syncDirectory(_ directory: String) throws {
        do { try DurableFiles.syncDirectory(directory) } catch { throw HAStoreError(.io, path: directory, error.message) }
    }

    public static func directory(of path: String) -> String { DurableFiles.directory(of: path) }

    /// Creates `path` as a hard link to `source` only if `path` does not exist yet (atomic
    /// create-if-absent, unlike rename which would replace a store another process just created).
    /// Returns false when `path` already existed.
    public static func linkIfAbsent(_ source: String, to path: String) throws -> Bool {
        if link(source, path) == 0 { return true }
        if errno == EEXIST { return false }
        throw HAStoreError(.io, path: path, "cannot create the store file: \(errnoText())")
    }

    public static func remove(_ path: String) {
        unlink(path)
    }

    public static func errnoText(_ code: Int32? = nil) -> String { DurableFiles.errnoText(code) }
}
