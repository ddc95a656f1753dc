public import BatonCore
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Watches the lock of the member that leads (for a standby): the kernel wakes a thread waiting in
/// `F_OFD_SETLKW` the instant that member's process dies. A member whose lock file does not exist
/// is not reported (only a member process creates its lock file).
///
/// Each member that was ever watched gets one thread for the rest of the process's life, always
/// waiting for that member's lock (a thread blocked in `fcntl` cannot be re-pointed safely, so
/// re-targeting only changes which thread reports). When a thread acquires the lock of the
/// *watched* member, it calls `onDeath(member)` while holding the lock and releases it only when
/// `onDeath` returns: during `onDeath` no process of that member is alive or can start (a starting
/// member waits for its own lock). A thread that acquires the lock of a member no longer watched
/// releases it at once. After a release the thread polls every `recheckInterval` until some
/// process holds the lock again; if the lock stays free and the member is still watched, it
/// reports again every `4 × recheckInterval` (the previous attempt may have failed).
public final class MemberLockWatcher: @unchecked Sendable {
    // @unchecked: `target`, `stopped` and `threads` are guarded by `condition`.
    private let directory: MemberLockDirectory
    private let onDeath: @Sendable (MemberID) -> Void
    private let recheckInterval: Duration
    private let condition = NSCondition()
    private var target: MemberID?
    private var stopped = false
    private var threads: [MemberID: pthread_t?] = [:]

    public init(
        directory: MemberLockDirectory, recheckInterval: Duration = .milliseconds(50),
        onDeath: @escaping @Sendable (MemberID) -> Void
    ) {
        self.directory = directory
        self.onDeath = onDeath
        self.recheckInterval = recheckInterval
        ThreadInterrupter.installHandler()
    }

    /// Watches `member` from now on (nil: no one).
    public func watch(_ member: MemberID?) {
        condition.lock()
        defer { condition.unlock() }
        guard !stopped else { return }
        target = member
        if let member, threads[member] == nil {
            threads[member] = .some(nil)
            let thread = Thread { [self] in self.run(member) }
            thread.name = "baton-watch-\(member)"
            thread.start()
        }
        condition.broadcast()
    }

    public var watched: MemberID? {
        condition.lock()
        defer { condition.unlock() }
        return target
    }

    /// Ends every watch. Threads waiting for a lock are interrupted and exit.
    public func stop() {
        condition.lock()
        stopped = true
        target = nil
        let running = threads.values.compactMap { $0 }
        condition.broadcast()
        condition.unlock()
        for thread in running { ThreadInterrupter.interrupt(thread) }
    }

    private func state(_ member: MemberID) -> (watched: Bool, stopped: Bool) {
        condition.lock()
        defer { condition.unlock() }
        return (target == member, stopped)
    }

    private func run(_ member: MemberID) {
        condition.lock()
        threads[member] = pthread_self()
        condition.unlock()
        let path = directory.lockPath(for: member.identifier)
        var fd: Int32 = -1
        defer { if fd >= 0 { close(fd) } }
        while !state(member).stopped {
            if fd < 0 {
                // Never create the file: a lock taken on a new file says nothing about a process
                // that holds the lock of a file someone deleted. No file: no fast path (the lease
                // still ends the term).
                fd = open(path, O_RDWR | O_CLOEXEC)
                if fd < 0 {
                    pause(for: recheckInterval)
                    continue
                }
            }
            switch OFDLock.lockWaiting(fd) {
            case .acquired:
                let (watched, stopped) = state(member)
                if watched && !stopped { onDeath(member) }
                OFDLock.unlock(fd)
                waitUntilHeldAgain(member, fd: fd)
            case .interrupted:
                continue
            case .busy, .failed:
                pause(for: recheckInterval)
            }
        }
    }

    /// Polls until some process holds the member's lock again, or, while the member is watched,
    /// for at most four recheck intervals.
    private func waitUntilHeldAgain(_ member: MemberID, fd: Int32) {
        var waited: Duration = .zero
        while !state(member).stopped, OFDLock.isHeld(fd) == false {
            if state(member).watched && waited >= recheckInterval * 4 { return }
            pause(for: recheckInterval)
            waited += recheckInterval
        }
    }

    private func pause(for duration: Duration) {
        condition.lock()
        if !stopped {
            _ = condition.wait(until: Date(timeIntervalSinceNow: Double(duration.nanosecondsClamped) / 1e9))
        }
        condition.unlock()
    }
}

/// Interrupts a thread's blocking system call with `SIGUSR2`, whose handler does nothing and is
/// installed without `SA_RESTART`, so the call returns `EINTR`.
enum ThreadInterrupter {
    private static let installed: Void = {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGUSR2, &action, nil)
    }()

    static func installHandler() { _ = installed }

    static func interrupt(_ thread: pthread_t) {
        pthread_kill(thread, SIGUSR2)
    }
}
