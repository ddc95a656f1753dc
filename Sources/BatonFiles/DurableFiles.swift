#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A file operation that failed, naming the path and the system's reason.
public struct FileError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var message: String
    public init(path: String, _ message: String) {
        self.path = path
        self.message = message
    }
    public var description: String { "\(path): \(message)" }
}

/// File operations whose results survive a crash: every write is synced, and every new, renamed
/// or removed entry is synced in its folder. On POSIX calls directly.
public enum DurableFiles {
    /// Makes `directory` and its parents; each folder it creates is made durable in its parent.
    public static func makeDirectories(_ directory: String) throws(FileError) {
        var current = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/") {
            let parent = current.isEmpty ? "/" : current
            current += "/" + component
            if mkdir(current, 0o777) == 0 {
                try syncDirectory(parent)
            } else if errno != EEXIST {
                throw FileError(path: directory, "cannot create directory \(current): \(errnoText())")
            }
        }
    }

    /// fsyncs a directory so that a new, renamed or removed entry in it is durable.
    public static func syncDirectory(_ directory: String) throws(FileError) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(path: directory, "cannot open directory: \(errnoText())") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw FileError(path: directory, "cannot fsync directory: \(errnoText())") }
    }

    /// Writes `bytes` to a new file at `path` (replacing one that is there), syncs it and its
    /// folder. The folder is created if needed.
    public static func write(_ bytes: [UInt8], to path: String) throws(FileError) {
        let folder = directory(of: path)
        try makeDirectories(folder)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw FileError(path: path, "cannot create: \(errnoText())") }
        defer { close(fd) }
        try writeAll(fd, bytes, path: path)
        guard fsync(fd) == 0 else { throw FileError(path: path, "cannot fsync: \(errnoText())") }
        try syncDirectory(folder)
    }

    /// Writes every byte to `fd`.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(FileError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw in Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                throw FileError(path: path, "cannot write: \(errnoText())")
            }
            offset += written
        }
    }

    /// The whole file.
    public static func read(_ path: String) throws(FileError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(path: path, "cannot open for reading: \(errnoText())") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { raw in Glibc.read(fd, raw.baseAddress!, raw.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw FileError(path: path, "cannot read: \(errnoText())")
            }
            if count == 0 { return bytes }
            bytes += chunk[0..<count]
        }
    }

    /// Renames `source` to `target` (same folder) and syncs the folder unless `sync` is false.
    public static func rename(_ source: String, to target: String, sync: Bool = true) throws(FileError) {
        guard Glibc.rename(source, target) == 0 else { throw FileError(path: source, "cannot rename to \(target): \(errnoText())") }
        if sync { try syncDirectory(directory(of: target)) }
    }

    /// The names in a folder (not `.` and `..`); empty when it cannot be read.
    public static func names(in path: String) -> [String] {
        guard let folder = opendir(path) else { return [] }
        var names: [String] = []
        while let entry = readdir(folder) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(folder)
        return names
    }

    /// Removes `path` and, for a folder, everything under it; a missing path is no error.
    public static func removeTree(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if info.st_mode & S_IFMT == S_IFDIR {
            for name in names(in: path) { removeTree("\(path)/\(name)") }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    /// A second name for the file at `source` (a hard link; same file system), replacing nothing.
    public static func link(_ source: String, to target: String) throws(FileError) {
        guard Glibc.link(source, target) == 0 else { throw FileError(path: source, "cannot link to \(target): \(errnoText())") }
    }

    public static func lastComponent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// Why a file that must stay its owner's (a secret, a key) may not be used: nil when group
    /// and others have no access to it, else a sentence naming `what` it is, the file, its mode
    /// and the `chmod` that fixes it.
    public static func othersMayAccess(_ path: String, what: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 != 0 else { return nil }
        return "the \(what) \(path) can be read or written by others (mode \(String(mode, radix: 8))): run `chmod 600 \(path)`"
    }

    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    public static func errnoText(_ code: Int32? = nil) -> String {
        let code = code ?? errno
        return String(cString: strerror(code)) + " (errno \(code))"
    }
}
