public import BatonCore
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What a member process writes into its lock file, for `baton status` and the other members.
public struct MemberProcessInfo: Codable, Hashable, Sendable {
    /// The member's id: a master's or a task executor's (unique in a config).
    public var member: Identifier
    public var pid: Int32
    public var incarnation: Incarnation
    public var address: String
    public var startedAt: WallTime
    /// `master` or `taskexecutor`.
    public var role: String
    /// The host name of the machine the process runs on (absent in files older than the field).
    public var host: String?

    public init(
        member: Identifier, pid: Int32, incarnation: Incarnation, address: String, startedAt: WallTime, role: String,
        host: String? = MemberProcessInfo.thisHost
    ) {
        self.member = member
        self.pid = pid
        self.incarnation = incarnation
        self.address = address
        self.startedAt = startedAt
        self.role = role
        self.host = host
    }

    /// This machine's host name.
    public static var thisHost: String {
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count - 1) == 0 else { return "" }
        return String(cString: name)
    }
}

/// Where the member lock files of a store live: `<store file>.members/<id>.lock`.
public struct MemberLockDirectory: Sendable, Hashable {
    public let path: String

    public init(storePath: String) { path = storePath + ".members" }

    public func lockPath(for member: Identifier) -> String { "\(path)/\(member.rawValue).lock" }
}

/// An error taking or reading a member lock.
public struct MemberLockError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var message: String
    /// When the lock is held by a live process: what it wrote.
    public var holder: MemberProcessInfo?

    public init(path: String, message: String, holder: MemberProcessInfo? = nil) {
        self.path = path
        self.message = message
        self.holder = holder
    }

    public var description: String { "\(path): \(message)" }
}

/// The lock a member process holds for its whole life: an OFD lock on its member lock file.
///
/// While a process of member M lives, it holds M's lock; so whoever acquires M's lock knows that no
/// process of M is alive. That is the crash fast path of the election: standbys wait on the
/// leader's member lock, and the kernel hands it over the instant the leader dies.
public final class MemberLock: Sendable {
    public let path: String
    public let info: MemberProcessInfo
    private let fd: Int32

    private init(path: String, info: MemberProcessInfo, fd: Int32) {
        self.path = path
        self.info = info
        self.fd = fd
    }

    deinit { close(fd) }

    /// Whether the file this lock is held on is still the one at `path` (false once it was
    /// deleted or replaced: then another process may lock the new file, and probes see that one).
    public var isCurrent: Bool { MemberLocks.sameFile(fd, path) }

    /// Takes the lock of `info.member` and writes `info` into it. Retries for up to `patience`
    /// (another member may hold it for a moment while it checks whether this member is alive).
    ///
    /// - Throws: `MemberLockError` when another live process holds it (naming its pid).
    public static func acquire(
        in directory: MemberLockDirectory, info: MemberProcessInfo, patience: Duration = .seconds(3)
    ) throws -> MemberLock {
        try MemberLocks.makeDirectory(directory.path)
        let path = directory.lockPath(for: info.member)
        var fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o666)
        guard fd >= 0 else {
            throw MemberLockError(path: path, message: "cannot open the member lock file: \(String(cString: strerror(errno)))")
        }
        let deadline = SystemTimeSource().monotonicNow() + patience
        while true {
            switch OFDLock.tryLock(fd) {
            case .acquired where !MemberLocks.sameFile(fd, path):
                // The file was deleted or replaced while we opened it: lock the one at the path.
                close(fd)
                fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o666)
                guard fd >= 0 else {
                    throw MemberLockError(path: path, message: "cannot open the member lock file: \(String(cString: strerror(errno)))")
                }
            case .acquired:
                // A lock file made before files were private (0644) becomes the process's mode:
                // whoever cannot open it cannot lock it.
                fchmod(fd, 0o666 & ~MemberLocks.processUmask)
                let bytes = Array((try? JSONEncoder().encode(info)) ?? Data()) + [0x0A]
                _ = ftruncate(fd, 0)
                _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
                return MemberLock(path: path, info: info, fd: fd)
            case .busy where SystemTimeSource().monotonicNow() < deadline:
                usleep(10_000)
            case .busy:
                let holder = MemberLocks.readInfo(path)
                close(fd)
                guard let holder, MemberLocks.isMemberProcess(holder) else {
                    throw MemberLockError(
                        path: path,
                        message: "the lock of member \(info.member) is held by a process that is not a member of this group"
                            + (holder.map { " (its last process, pid \($0.pid), has ended)" } ?? "")
                            + ": find it with `fuser \(path)` and end it; keep the folder readable by the group's user alone")
                }
                throw MemberLockError(
                    path: path,
                    message: "member \(info.member) is already running (pid \(holder.pid)); stop it first or use another id",
                    holder: holder)
            case .interrupted:
                continue
            case .failed(let code):
                close(fd)
                throw MemberLockError(path: path, message: "cannot lock the member lock file: \(String(cString: strerror(code)))")
            }
        }
    }
}

/// Reading member lock files from the outside (status, benchmarks, tests).
public enum MemberLocks {
    /// What a member lock file says about its member.
    public enum Probe: Hashable, Sendable {
        /// No lock file: the member never ran against this store.
        case neverRan
        /// The lock is free: no process of the member is alive. `last` is what the last one wrote.
        case down(last: MemberProcessInfo?)
        /// A live process holds the lock.
        case alive(MemberProcessInfo?)
        /// A process that is not the member's holds the lock (the member's last process, named in
        /// the file, is gone): the member cannot start until that process lets go.
        case heldByAnother(last: MemberProcessInfo?)
    }

    public static func probe(_ member: Identifier, in directory: MemberLockDirectory) -> Probe {
        let path = directory.lockPath(for: member)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return errno == EACCES ? .heldByAnother(last: nil) : .neverRan }
        defer { close(fd) }
        let info = readInfo(path)
        guard OFDLock.isHeld(fd) == true else { return .down(last: info) }
        return info.map(isMemberProcess) == true ? .alive(info) : .heldByAnother(last: info)
    }

    /// The process's umask, read without changing it (`umask(2)` can only set it, and setting it
    /// for a moment would change the mode of files other threads create meanwhile).
    static var processUmask: mode_t {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("Umask:") }
        return line.flatMap { mode_t($0.dropFirst("Umask:".count).trimmingCharacters(in: .whitespaces), radix: 8) } ?? 0o077
    }

    /// Whether the process `info` names still runs (so the lock is its, not another's that took
    /// the lock after it ended).
    static func isMemberProcess(_ info: MemberProcessInfo) -> Bool {
        kill(info.pid, 0) == 0 || errno == EPERM
    }

    public static func readInfo(_ path: String) -> MemberProcessInfo? {
        guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else { return nil }
        return try? JSONDecoder().decode(MemberProcessInfo.self, from: data)
    }

    /// Whether `fd` is the file now at `path` (same device and inode).
    static func sameFile(_ fd: Int32, _ path: String) -> Bool {
        var open = stat()
        var named = stat()
        guard fstat(fd, &open) == 0, stat(path, &named) == 0 else { return false }
        return open.st_dev == named.st_dev && open.st_ino == named.st_ino
    }

    static func makeDirectory(_ path: String) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o777) != 0 && errno != EEXIST {
                throw MemberLockError(path: path, message: "cannot create \(current): \(String(cString: strerror(errno)))")
            }
        }
    }
}
