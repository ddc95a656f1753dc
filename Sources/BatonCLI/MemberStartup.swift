import BatonConfig
import BatonCore
import BatonMemberLocks
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What every member process (master, task executor) does first.
enum MemberStartup {
    /// The usage error for an `--id` the config does not list.
    static func unknownID(_ id: String, kind: String, plural: String, in configuration: HAConfiguration, known: [String]) -> CommandFailure {
        CommandFailure.usage(
            "--id: no \(kind) '\(id)' in \(configuration.file) (\(plural): \(known.joined(separator: ", ")))")
    }

    /// Takes the member's lock for this process, with a fresh incarnation, and writes who it is.
    static func lock(
        _ member: Identifier, address: String, role: String, in configuration: HAConfiguration, time: any TimeSource
    ) throws -> MemberLock {
        var random = SystemRandomNumberGenerator()
        return try MemberLock.acquire(
            in: MemberLockDirectory(storePath: configuration.store.path),
            info: MemberProcessInfo(
                member: member, pid: getpid(), incarnation: .random(using: &random), address: address, startedAt: time.wallNow(),
                role: role))
    }
}
