// baton-store: look into an HA store and exercise it from the outside.
//
//   baton-store dump   --config F [--json]     every namespace, key and record (read-only)
//   baton-store check  --config F              integrity check of the backend and every checksum
//   baton-store hammer --config F --id X ...   one of several concurrent writer processes (tests)
//   baton-store etcd-cluster --members N --dir D   a local etcd of 1 or 3 members until SIGTERM (tools/etcd-cluster)
//   baton-store netns-hosts run|destroy|list        hosts in network namespaces with an etcd member each (tools/netns-hosts)
//
// Exit status: 0 success, 1 a failed check or a refused store, 2 bad usage or config.
import ArgumentParser
import BatonClient
import BatonConfig
import BatonCore
import BatonTLS
import BatonElection
import BatonEtcd
import BatonProcessControl
import BatonHAStore
import BatonHAStoreSelection
import Foundation
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

@main
struct StoreTool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baton-store", abstract: "Dump, check and hammer a Baton HA store.",
        subcommands: [Dump.self, Check.self, Hammer.self, EtcdCluster.self, NetnsHostsCommand.self])
}

func openStore(_ config: String, access: StoreAccess) throws -> (HAConfiguration, HAStore) {
    let configuration = try HAConfiguration.load(path: config)
    return (configuration, try HAStoreSelection.open(configuration.store, access: access))
}

struct Dump: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print every namespace, key and record (read-only).")
    @Option var config: String
    @Flag var json = false

    func run() async throws {
        let (_, store) = try openStore(config, access: .readOnly)
        let rows = try await store.read { reader -> [[String: String]] in
            var rows: [[String: String]] = []
            for namespace in StoreNamespace.allCases {
                for entry in try reader.entries(namespace) {
                    rows.append([
                        "namespace": namespace.name, "key": StoreKeyDescription.describe(entry.key),
                        "value": String(decoding: entry.value, as: UTF8.self),
                    ])
                }
            }
            return rows
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("store \(store.path) (\(store.backendName))")
            for row in rows { print("\(row["namespace"]!)/\(row["key"]!)  \(row["value"]!)") }
        }
    }
}

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check the backend's structures and every value's checksum.")
    @Option var config: String

    func run() async throws {
        let (_, store) = try openStore(config, access: .readOnly)
        let problems = try await store.integrityProblems()
        if problems.isEmpty {
            print("ok: \(store.path)")
        } else {
            problems.forEach { print("problem: \($0)") }
            throw ExitCode(1)
        }
    }
}

/// One of several processes that campaign, renew, write fenced records and relinquish as fast as
/// they can against one store, and try stale writes on purpose. It prints what it did as JSON.
struct Hammer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Hammer the store as one of several concurrent writers (tests).")
    @Option var config: String
    @Option var id: String
    @Option var seconds: Double = 3
    @Option var seed: UInt64 = 1

    struct Report: Codable {
        var id: String
        var won = 0
        var lost = 0
        /// Fenced writes that returned success, numbered 0..<writes under `hammer/<id>/`.
        var writes = 0
        var refusedStale = 0
        var acceptedStale = 0
        var busy = 0
        var outcomeUnknown = 0
        var otherErrors: [String] = []
    }

    func run() async throws {
        let (_, store) = try openStore(config, access: .readWrite)
        guard let member = MemberID(rawValue: id) else { throw ValidationError("--id must be a valid id") }
        var random = SeededRandom(seed: seed)
        let identity = LeaderIdentity(member: member, incarnation: .random(using: &random), address: "-", pid: getpid())
        let time = SystemTimeSource()
        let deadline = time.monotonicNow() + .milliseconds(Int64(seconds * 1000))
        var report = Report(id: id)
        // The last epoch this writer led: once it leads no more (it resigned, or its lease lapsed
        // and another took over), every write fenced by it must be refused.
        var staleEpoch: Epoch?
        func note(_ error: any Error) {
            if let error = error as? HAStoreError {
                if error.code == .busy { report.busy += 1; return }
                if error.code == .outcomeUnknown { report.outcomeUnknown += 1; return }
            }
            report.otherErrors.append("\(error)")
        }
        while time.monotonicNow() < deadline {
            do {
                let record = try await store.leadership()
                if let record, record.holder == identity {
                    staleEpoch = record.epoch
                    for _ in 0..<Int.random(in: 1...5, using: &random) {
                        let key = StoreKey.text("hammer/\(id)/") + StoreKey.uint64(UInt64(report.writes))
                        try await store.write(fencedBy: record.epoch) { writer in
                            try writer.put(.jobs, key, bytes: StoreKey.text("\(record.epoch)"))
                        }
                        report.writes += 1
                    }
                    try await store.renew(epoch: record.epoch, now: time.wallNow())
                    if Int.random(in: 0..<5, using: &random) == 0 {
                        try await store.relinquish(epoch: record.epoch, reason: .resigned, now: time.wallNow())
                    }
                } else {
                    if let stale = staleEpoch {
                        do {
                            try await store.write(fencedBy: stale) { writer in
                                try writer.put(.jobs, StoreKey.text("stale/\(self.id)"), bytes: [1])
                            }
                            report.acceptedStale += 1
                        } catch let error as HAStoreError where error.code == .fenced {
                            report.refusedStale += 1
                        }
                    }
                    let expectation: CampaignExpectation =
                        record?.holder == nil
                        ? .vacant(epoch: record?.epoch ?? .none)
                        : .leaseLapsed(epoch: record!.epoch, renewals: record!.renewals)
                    switch try await store.campaign(as: identity, expecting: expectation, leaseMillis: 1000, now: time.wallNow()) {
                    case .won:
                        report.won += 1
                    case .lost:
                        report.lost += 1
                    }
                }
            } catch let error as HAStoreError where error.code == .fenced {
                // Another process took over between our read and our write: expected.
            } catch {
                note(error)
            }
        }
        let data = try JSONEncoder().encode(report)
        print(String(decoding: data, as: UTF8.self))
    }
}

enum StoreKeyDescription {
    static func describe(_ key: [UInt8]) -> String {
        if !key.isEmpty, key.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return String(decoding: key, as: UTF8.self) }
        var text = ""
        var index = 0
        while index < key.count, key[index] >= 0x20, key[index] < 0x7F {
            text.append(Character(UnicodeScalar(key[index])))
            index += 1
        }
        let rest = Array(key[index...])
        if let number = StoreKey.readUInt64(rest) { return text + "#\(number)" }
        return text + rest.map { String(format: "%02x", $0) }.joined()
    }
}

/// A local etcd for development: 1 or 3 members on free loopback ports with fast timers, their
/// data and logs in `--dir`. Prints the endpoints, writes every member's pid to `DIR/pids` (so
/// `tools/etcd-cluster stop` can end them even if this process was killed), and runs until
/// SIGTERM or SIGINT, then stops the members.
struct EtcdCluster: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "etcd-cluster", abstract: "Run a local etcd of 1 or 3 members until stopped.")
    @Option(help: "1 or 3.") var members = 1
    @Option(help: "The folder for the members' data, logs and pids (created).") var dir: String

    func run() async throws {
        let cluster = try await EtcdLocalCluster(members: members, directory: dir)
        defer { cluster.stop() }
        let pids = cluster.members.map { "\($0.process.pid)" }.joined(separator: "\n") + "\n"
        try pids.write(toFile: "\(dir)/pids", atomically: true, encoding: .utf8)
        try cluster.endpoints.joined(separator: ",").write(toFile: "\(dir)/endpoints", atomically: true, encoding: .utf8)
        print(cluster.endpoints.joined(separator: ","))
        for await _ in await UnixSignalsSequence(trapping: .sigterm, .sigint) { break }
    }
}

/// Hosts in network namespaces for a group that spans machines (`tools/netns-hosts`).
struct NetnsHostsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netns-hosts", abstract: "Hosts in network namespaces, each with an etcd member (needs root).",
        subcommands: [Run.self, Destroy.self, List.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the hosts, start an etcd member in each, write DIR/ha.yaml placing a master and a task executor on each; "
                + "on SIGTERM or SIGINT, end every process in the hosts and remove them.")
        @Option(help: "How many hosts.") var hosts = 3
        @Option(help: "The set's name (1-8 letters or digits; default: a fresh one).") var name: String?
        @Option(help: "The folder for the config, checkpoints and the etcd members' data (created).") var dir: String

        func run() async throws {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let set = try NetnsHosts.create(count: hosts, name: name)
            defer { set.destroy() }
            let cluster = try await EtcdLocalCluster(on: set, directory: "\(dir)/etcd")
            defer { cluster.stop() }
            try SecretFile.create(at: "\(dir)/cluster.secret")
            let config = MultiHostConfig.text(
                hosts: set.hosts.map { .init(name: $0.name, address: $0.address) }, etcdEndpoints: cluster.endpoints, directory: dir,
                secretFile: "\(dir)/cluster.secret", tlsDirectory: "\(dir)/tls")
            try config.write(toFile: "\(dir)/ha.yaml", atomically: true, encoding: .utf8)
            try ClusterCertificates.issue(for: try HAConfiguration.load(path: "\(dir)/ha.yaml"), into: "\(dir)/tls")
            let table = set.hosts.map { "\($0.name) \($0.namespace) \($0.address) \($0.storeAddress)" }.joined(separator: "\n") + "\n"
            try table.write(toFile: "\(dir)/hosts", atomically: true, encoding: .utf8)
            try set.name.write(toFile: "\(dir)/name", atomically: true, encoding: .utf8)
            // Written at once (not buffered): tools/netns-hosts shows it while this runs on.
            FileHandle.standardOutput.write(
                Data(("host set \(set.name): \(set.hosts.count) hosts, etcd \(cluster.endpoints.joined(separator: ","))\n" + table).utf8))
            for await _ in await UnixSignalsSequence(trapping: .sigterm, .sigint) { break }
        }
    }

    struct Destroy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End every process in the set's hosts and remove its namespaces and bridges.")
        @Argument(help: "The set's name.") var name: String
        func run() async throws { NetnsHosts.destroy(name: name) }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The host sets that exist.")
        func run() async throws {
            for name in NetnsHosts.existingSets() { print(name) }
        }
    }
}
