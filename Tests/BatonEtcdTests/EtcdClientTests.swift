import BatonConfig
import BatonEtcd
import BatonProcessControl
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` with a client of a fresh local etcd of `members` members (real processes in their
/// own folder on free ports), and ends them and removes the folder afterwards.
func withLocalEtcd(members: Int = 1, _ body: (EtcdLocalCluster, EtcdClient) async throws -> Void) async throws {
    let directory = try TemporaryDirectory("baton-etcd-test")
    defer { directory.remove() }
    let cluster = try await EtcdLocalCluster(members: members, directory: directory.path)
    defer { cluster.stop() }
    let client = try EtcdClient(endpoints: cluster.endpoints)
    do {
        try await body(cluster, client)
    } catch {
        await client.close()
        throw error
    }
    await client.close()
}

/// A TCP listener that accepts connections (the kernel does, into its backlog) and never answers.
final class SilentListener {
    let port: Int
    private let fd: Int32

    init() {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(fd, 16)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

@Suite("etcd client over the JSON gateway, against a real etcd", .serialized)
struct EtcdClientTests {
    @Test("keys are written, read by prefix at a revision, and deleted; revisions increase")
    func keyValues() async throws {
        try await withLocalEtcd { _, client in
            let first = try await client.put(bytes("baton/a"), bytes("1"))
            let second = try await client.put(bytes("baton/b"), [0, 255, 7])
            try await client.put(bytes("other"), bytes("x"))
            #expect(second > first)
            let all = try await client.range(bytes("baton/"), rangeEnd: bytes("baton0"))
            #expect(all.keyValues.map(\.key) == [bytes("baton/a"), bytes("baton/b")])
            #expect(all.keyValues[1].value == [0, 255, 7])
            #expect(all.keyValues[0].createRevision == first)
            // As the cluster was at the first write.
            let then = try await client.range(bytes("baton/"), rangeEnd: bytes("baton0"), revision: first)
            #expect(then.keyValues.map(\.key) == [bytes("baton/a")])
            #expect(try await client.delete(bytes("baton/"), rangeEnd: bytes("baton0")) == 2)
            #expect(try await client.range(bytes("baton/a")).keyValues.isEmpty)
        }
    }

    @Test("a transaction runs its success branch only when every comparison holds: a key is created once")
    func transactions() async throws {
        try await withLocalEtcd { _, client in
            let absent = EtcdCompare.revision(bytes("leader"), .create, .equal, 0)
            let won = try await client.txn(compare: [absent], success: [.put(key: bytes("leader"), value: bytes("m1"), lease: nil)], failure: [.range(key: bytes("leader"), rangeEnd: nil)])
            #expect(won.succeeded)
            let lost = try await client.txn(compare: [absent], success: [.put(key: bytes("leader"), value: bytes("m2"), lease: nil)], failure: [.range(key: bytes("leader"), rangeEnd: nil)])
            #expect(!lost.succeeded)
            #expect(lost.ranges.first?.first?.value == bytes("m1"))
            // The create revision is the fencing token: a write compared with a stale one is refused.
            let token = try #require(lost.ranges.first?.first?.createRevision)
            let fenced = try await client.txn(
                compare: [EtcdCompare.revision(bytes("leader"), .create, .equal, token + 1)], success: [.put(key: bytes("job"), value: bytes("x"), lease: nil)])
            #expect(!fenced.succeeded)
            #expect(try await client.range(bytes("job")).keyValues.isEmpty)
            // A comparison over a range: no key in it changed since a revision.
            let quiet = try await client.txn(
                compare: [EtcdCompare.revision(bytes("l"), .mod, .less, won.revision + 1, rangeEnd: bytes("m"))], success: [])
            #expect(quiet.succeeded)
        }
    }

    @Test("a key attached to a lease goes with it: at once when it is revoked, after its TTL when it is not renewed")
    func leases() async throws {
        try await withLocalEtcd { _, client in
            let lease = try await client.grantLease(ttlSeconds: 1)
            #expect(lease.ttlSeconds == 1)
            try await client.put(bytes("held"), bytes("1"), lease: lease.id)
            #expect(try await client.keepAlive(lease: lease.id) >= 1)
            try await client.revoke(lease: lease.id)
            #expect(try await client.range(bytes("held")).keyValues.isEmpty)
            #expect(try await client.keepAlive(lease: lease.id) == 0)

            let lapsing = try await client.grantLease(ttlSeconds: 1)
            try await client.put(bytes("lapsing"), bytes("1"), lease: lapsing.id)
            let deadline = ContinuousClock.now + .seconds(10)
            while try await !client.range(bytes("lapsing")).keyValues.isEmpty, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(try await client.range(bytes("lapsing")).keyValues.isEmpty, "the key outlived its lease")
        }
    }

    @Test("etcd's refusal is an error that says why: a put to a lease that does not exist")
    func refusals() async throws {
        try await withLocalEtcd { _, client in
            let error = await #expect(throws: EtcdError.self) { try await client.put(bytes("k"), bytes("v"), lease: 12345) }
            #expect(error?.code == .rejected)
            #expect(error?.message.contains("lease not found") == true)
        }
    }

    @Test("a dead endpoint is passed over; with none alive the error names them all")
    func deadEndpoints() async throws {
        try await withLocalEtcd { cluster, _ in
            let dead = "http://127.0.0.1:\(FreePort.next())"
            let client = try EtcdClient(endpoints: [dead] + cluster.endpoints)
            try await client.put(bytes("k"), bytes("v"))
            #expect(try await client.range(bytes("k")).keyValues.first?.value == bytes("v"))
            await client.close()
            let none = try EtcdClient(endpoints: [dead])
            let error = await #expect(throws: EtcdError.self) { try await none.put(bytes("k"), bytes("v")) }
            #expect(error?.code == .unavailable)
            #expect(error?.message.contains(dead) == true)
            await none.close()
        }
    }

    @Test("a write sent to a server that never answers has an unknown outcome; a read moves on")
    func silentServer() async throws {
        let silent = SilentListener()
        let client = try EtcdClient(endpoints: ["http://127.0.0.1:\(silent.port)"], requestTimeout: .milliseconds(300))
        let write = await #expect(throws: EtcdError.self) { try await client.put(bytes("k"), bytes("v")) }
        #expect(write?.code == .outcomeUnknown)
        let read = await #expect(throws: EtcdError.self) { try await client.range(bytes("k")) }
        #expect(read?.code == .unavailable)
        await client.close()
    }

    @Test("endpoints that are not http://HOST:PORT are refused, naming the endpoint")
    func badEndpoints() {
        #expect(throws: EtcdError.self) { try EtcdClient(endpoints: []) }
        let error = #expect(throws: EtcdError.self) { try EtcdClient(endpoints: ["etcd.example:2379"]) }
        #expect(error?.message.contains("etcd.example:2379") == true)
    }

    @Test("with one of three members killed, the client goes on through the others; what was written before is still there")
    func memberDown() async throws {
        try await withLocalEtcd(members: 3) { cluster, client in
            try await client.put(bytes("before"), bytes("1"))
            // The member the client used last (the first) dies.
            cluster.members[0].process.kill()
            let deadline = ContinuousClock.now + .seconds(20)
            var written = false
            while !written, ContinuousClock.now < deadline {
                do {
                    try await client.put(bytes("after"), bytes("2"))
                    written = true
                } catch let error as EtcdError {
                    // Until the two left elect a leader: refused or unknown, never a wrong answer.
                    #expect([.rejected, .outcomeUnknown, .unavailable].contains(error.code))
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            #expect(written, "no write went through the two members left within 20 s")
            let read = try await client.range(bytes("before"))
            #expect(read.keyValues.first?.value == bytes("1"))
            #expect(try await client.range(bytes("after")).keyValues.first?.value == bytes("2"))
        }
    }

    @Test("while the raft leader is killed and the two left elect another, every read succeeds (a member's 'unavailable' is gone round); writes fail only as outcome unknown or unavailable")
    func readsThroughAnEtcdElection() async throws {
        try await withLocalEtcd(members: 3) { cluster, _ in
            let clients = try cluster.endpoints.map { try EtcdClient(endpoints: [$0]) }
            let statuses = try await clients.asyncMap { try await $0.status() }
            let leader = try #require(statuses.firstIndex { $0.member == $0.leader }, "\(statuses)")
            // Followers first: the client under test never talks to the dying leader.
            let followers = cluster.endpoints.indices.filter { $0 != leader }.map { cluster.endpoints[$0] }
            let client = try EtcdClient(endpoints: followers)
            try await client.put(bytes("k"), bytes("v"))
            cluster.members[leader].process.kill()
            var reads = 0
            var writesRefused: [EtcdError.Code] = []
            let deadline = ContinuousClock.now + .seconds(4)
            while ContinuousClock.now < deadline {
                let read = try await client.range(bytes("k"))
                #expect(read.keyValues.first?.value == bytes("v"))
                reads += 1
                do {
                    try await client.put(bytes("w"), bytes("\(reads)"))
                } catch let error as EtcdError {
                    writesRefused.append(error.code)
                }
            }
            #expect(reads > 10)
            #expect(writesRefused.allSatisfy { [.outcomeUnknown, .unavailable].contains($0) }, "\(writesRefused)")
        }
    }

    @Test("three members agree on a leader, and what one member wrote another reads")
    func threeMembers() async throws {
        try await withLocalEtcd(members: 3) { cluster, _ in
            let writer = try EtcdClient(endpoints: [cluster.endpoints[0]])
            let reader = try EtcdClient(endpoints: [cluster.endpoints[2]])
            let revision = try await writer.put(bytes("shared"), bytes("yes"))
            let read = try await reader.range(bytes("shared"))
            #expect(read.keyValues.first?.value == bytes("yes"))
            #expect(read.revision >= revision)
            await writer.close()
            await reader.close()
        }
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
