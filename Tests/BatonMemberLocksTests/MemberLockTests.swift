import BatonCore
import BatonMemberLocks
import BatonProcessControl
import BatonTestKit
import Foundation
import Synchronization
import Testing

@Suite("member locks")
struct MemberLockTests {
    /// A member process's info: this process's pid (a live process) unless another is given.
    func info(_ member: Identifier, pid: Int32 = getpid(), incarnation: UInt64 = 7) -> MemberProcessInfo {
        MemberProcessInfo(
            member: member, pid: pid, incarnation: Incarnation(rawValue: incarnation), address: "127.0.0.1:1",
            startedAt: WallTime(millisecondsSince1970: 0), role: "master")
    }

    @Test("a member lock is exclusive and tells who holds it")
    func exclusive() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let locks = MemberLockDirectory(storePath: directory.file("ha.sqlite"))
        #expect(MemberLocks.probe("m1", in: locks) == .neverRan)
        var first: MemberLock? = try MemberLock.acquire(in: locks, info: info("m1"))
        #expect(MemberLocks.probe("m1", in: locks) == .alive(info("m1")))
        // OFD locks conflict between open file descriptions, even within one process.
        let error = try #require(throws: MemberLockError.self) {
            try MemberLock.acquire(in: locks, info: info("m1", incarnation: 8), patience: .milliseconds(50))
        }
        #expect(error.holder?.pid == getpid())
        #expect(error.message.contains("already running (pid \(getpid()))"))
        _ = first
        first = nil
        #expect(MemberLocks.probe("m1", in: locks) == .down(last: info("m1")))
        let second = try MemberLock.acquire(in: locks, info: info("m1", incarnation: 8), patience: .milliseconds(50))
        #expect(MemberLocks.probe("m1", in: locks) == .alive(info("m1", incarnation: 8)))
        _ = second
    }

    @Test("a lock held by a process that is not the member (its last process ended) is reported as such, and a starting member says so")
    func heldByAnotherProcess() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let locks = MemberLockDirectory(storePath: directory.file("ha.sqlite"))
        // The member's last process (pid of a process that has ended) wrote its info and left.
        let gone: Int32 = Int32.max - 7  // above any pid the kernel gives: no such process
        var last: MemberLock? = try MemberLock.acquire(in: locks, info: info("m1", pid: gone))
        last = nil
        _ = last
        #expect(MemberLocks.probe("m1", in: locks) == .down(last: info("m1", pid: gone)))
        // Another process takes the lock (a read lock, as any user who can open the file could).
        let intruder = open(locks.lockPath(for: "m1"), O_RDONLY | O_CLOEXEC)
        var lock = flock()
        lock.l_type = Int16(F_RDLCK)
        lock.l_whence = Int16(SEEK_SET)
        #expect(fcntl(intruder, 37 /* F_OFD_SETLK */, &lock) == 0)
        #expect(MemberLocks.probe("m1", in: locks) == .heldByAnother(last: info("m1", pid: gone)))
        let refused = try #require(throws: MemberLockError.self) {
            try MemberLock.acquire(in: locks, info: info("m1", incarnation: 9), patience: .milliseconds(50))
        }
        #expect(refused.message.contains("held by a process that is not a member") && refused.message.contains("fuser"), "\(refused)")
        #expect(refused.holder == nil)
        // Taking the lock makes the file as private as the process's files (0644 from an older version, here).
        close(intruder)
        chmod(locks.lockPath(for: "m1"), 0o644)
        let mask = umask(0o077)
        defer { umask(mask) }
        let member = try MemberLock.acquire(in: locks, info: info("m1", incarnation: 10))
        #expect((try FileManager.default.attributesOfItem(atPath: locks.lockPath(for: "m1"))[.posixPermissions] as? Int) == 0o600)
        _ = member
    }

    @Test("the watcher reports the death of the watched member while it holds its lock")
    func watcherReportsDeath() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let locks = MemberLockDirectory(storePath: directory.file("ha.sqlite"))
        let reports = Mutex<[(MemberID, MemberLocks.Probe)]>([])
        var leader: MemberLock? = try MemberLock.acquire(in: locks, info: info("m1"))
        var other: MemberLock? = try MemberLock.acquire(in: locks, info: info("m2"))
        let watcher = MemberLockWatcher(directory: locks, recheckInterval: .milliseconds(20)) { member in
            // While the report runs, the watcher holds the lock: the member shows as alive.
            let probe = MemberLocks.probe(member.identifier, in: locks)
            reports.withLock { $0.append((member, probe)) }
        }
        defer { watcher.stop() }
        watcher.watch("m1")
        watcher.watch("m2")
        watcher.watch("m1")  // m2 is no longer watched: its death is not reported
        usleep(50_000)
        other = nil
        usleep(100_000)
        #expect(reports.withLock { $0.isEmpty })
        leader = nil
        #expect(eventually(timeout: .seconds(5)) { reports.withLock { !$0.isEmpty } })
        let first = try #require(reports.withLock { $0.first })
        #expect(first.0 == "m1")
        if case .alive = first.1 {} else { Issue.record("the lock must be held during the report, got \(first.1)") }
        // Once reported, the lock is free again: a restarted m1 can take it.
        let restarted = try MemberLock.acquire(in: locks, info: info("m1", pid: 5), patience: .seconds(2))
        watcher.watch(nil)
        _ = (leader, other, restarted)
    }

    @Test("the watcher reports a member that was already dead when watching began")
    func watcherReportsAlreadyDead() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let locks = MemberLockDirectory(storePath: directory.file("ha.sqlite"))
        // A member that ran and died: its lock file exists, unlocked.
        _ = try MemberLock.acquire(in: locks, info: info("gone"))
        let reported = Mutex(0)
        let watcher = MemberLockWatcher(directory: locks, recheckInterval: .milliseconds(20)) { _ in
            reported.withLock { $0 += 1 }
        }
        defer { watcher.stop() }
        watcher.watch("gone")
        #expect(eventually(timeout: .seconds(5)) { reported.withLock { $0 >= 1 } })
        // While it stays dead and watched, it is reported again (the last attempt may have failed).
        #expect(eventually(timeout: .seconds(5)) { reported.withLock { $0 >= 2 } })
    }

    @Test("a member whose lock file does not exist is never reported dead")
    func noFileNoReport() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let locks = MemberLockDirectory(storePath: directory.file("ha.sqlite"))
        let reported = Mutex(0)
        let watcher = MemberLockWatcher(directory: locks, recheckInterval: .milliseconds(10)) { _ in
            reported.withLock { $0 += 1 }
        }
        defer { watcher.stop() }
        watcher.watch("never-ran")
        usleep(200_000)
        #expect(reported.withLock { $0 } == 0)
        #expect(!FileManager.default.fileExists(atPath: locks.lockPath(for: "never-ran")))
    }

    @Test("a lock file deleted while its member holds it: a newcomer locks the new file, and the old holder can tell its lock is no longer current")
    func deletedLockFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let locks = MemberLockDirectory(storePath: directory.file("ha.sqlite"))
        let first = try MemberLock.acquire(in: locks, info: info("m1"))
        try FileManager.default.removeItem(atPath: locks.lockPath(for: "m1"))
        // The member still holds a lock, on the deleted file; a newcomer gets a lock on the new
        // file, which is what the path names now, and that is the one everybody else checks.
        let second = try MemberLock.acquire(in: locks, info: info("m1", pid: 5), patience: .milliseconds(50))
        #expect(MemberLocks.probe("m1", in: locks) == .alive(info("m1", pid: 5)))
        #expect(!first.isCurrent, "the first holder's lock is on a deleted file")
        #expect(second.isCurrent)
    }
}
