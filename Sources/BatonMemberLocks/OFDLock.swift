#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Open-file-description locks (Linux `F_OFD_*`): owned by the open file description, not the
/// process, so closing some other descriptor of the same file (as SQLite does) never drops them,
/// and the kernel releases them the instant the owning process dies.
///
/// The constants are not visible through Swift's Glibc module; these are their Linux values.
enum OFDLock {
    static let getLock: Int32 = 36  // F_OFD_GETLK
    static let setLock: Int32 = 37  // F_OFD_SETLK
    static let setLockWait: Int32 = 38  // F_OFD_SETLKW

    enum Outcome: Equatable { case acquired, busy, interrupted, failed(Int32) }

    private static func wholeFile(_ type: Int32) -> flock {
        var lock = flock()
        lock.l_type = Int16(type)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = 0
        lock.l_len = 0
        lock.l_pid = 0
        return lock
    }

    /// Takes an exclusive lock on the whole file without waiting.
    static func tryLock(_ fd: Int32) -> Outcome {
        var lock = wholeFile(F_WRLCK)
        if fcntl(fd, setLock, &lock) == 0 { return .acquired }
        return errno == EAGAIN || errno == EACCES ? .busy : .failed(errno)
    }

    /// Waits for an exclusive lock on the whole file; a signal (see `ThreadInterrupter`) ends the wait.
    static func lockWaiting(_ fd: Int32) -> Outcome {
        var lock = wholeFile(F_WRLCK)
        if fcntl(fd, setLockWait, &lock) == 0 { return .acquired }
        return errno == EINTR ? .interrupted : .failed(errno)
    }

    static func unlock(_ fd: Int32) {
        var lock = wholeFile(F_UNLCK)
        _ = fcntl(fd, setLock, &lock)
    }

    /// Whether some open file description (in any process, this one included) holds a lock on the file.
    static func isHeld(_ fd: Int32) -> Bool? {
        var lock = wholeFile(F_WRLCK)
        guard fcntl(fd, getLock, &lock) == 0 else { return nil }
        return lock.l_type != Int16(F_UNLCK)
    }
}
