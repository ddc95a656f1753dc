import BatonConfig
import BatonCore
import BatonHAStoreSelection
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

    /// Registers this process as the member's one live process, with a fresh incarnation, and
    /// says who it is: a member lock file beside a store file, a key on a lease in etcd.
    static func lock(
        _ member: Identifier, address: String, role: String, in configuration: HAConfiguration, time: any TimeSource
    ) throws -> any MemberRegistration {
        var random = SystemRandomNumberGenerator()
        let liveness = try HAStoreSelection.liveness(configuration.store, election: configuration.election)
        // An earlier process of the member that nobody certified dead frees its etcd key when its
        // lease lapses: wait that long for it.
        let patience = configuration.store.backend == .etcd ? configuration.election.leaseDuration + .seconds(2) : .seconds(3)
        return try liveness.register(
            MemberProcessInfo(
                member: member, pid: getpid(), incarnation: .random(using: &random), address: address, startedAt: time.wallNow(),
                role: role),
            patience: patience)
    }
}
