import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Hosts of one machine, for real: network namespaces (iproute2's `ip netns`), each with two
/// links: one for Baton's members (`address`, on the members' bridge and subnet) and one for its
/// etcd member (`storeAddress`, on the store's bridge and subnet), so that a fault can cut a
/// host off from the other members and not from etcd, or the reverse. The machine itself reaches
/// every host through the bridges (`gateway`, `storeGateway`).
///
/// Faults of whole hosts and links: every process in a host killed or stopped; one of a host's
/// links, or both, cut (the link goes down: packets vanish as on a pulled cable). `destroy()`
/// kills every process left in the hosts, deletes the namespaces (their links go with them) and
/// the bridges. Needs root.
public final class NetnsHosts: Sendable {
    public struct Host: Sendable, Hashable {
        /// `h1`, `h2`, ...
        public let name: String
        /// The network namespace: `<set>-<name>`.
        public let namespace: String
        /// The members' address (`10.x.y.i`).
        public let address: String
        /// The etcd member's address (`10.x.(y+1).i`).
        public let storeAddress: String
        /// The ends of the host's two links on the bridges (in the machine's namespace).
        let membersLink: String
        let storeLink: String
    }

    /// The set's name: every namespace and link it made starts with it.
    public let name: String
    public let hosts: [Host]
    /// The machine's addresses on the two bridges.
    public let gateway: String
    public let storeGateway: String

    private init(name: String, hosts: [Host], gateway: String, storeGateway: String) {
        self.name = name
        self.hosts = hosts
        self.gateway = gateway
        self.storeGateway = storeGateway
    }

    public func host(_ name: String) -> Host? { hosts.first { $0.name == name } }

    /// Whether hosts can be made here: root, and iproute2's `ip`.
    public static var available: Bool {
        getuid() == 0 && ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].contains { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Creates `count` hosts in a set named `name` (default: a fresh `bt` + 6 hex digits) on two
    /// /24s of 10.0.0.0/8 that no interface of the machine uses.
    public static func create(count: Int, name: String? = nil) throws -> NetnsHosts {
        guard (1...50).contains(count) else { throw NetnsError("a set has 1 to 50 hosts, not \(count)") }
        let name = name ?? "bt" + String(format: "%06x", UInt32.random(in: 0...0xFF_FFFF))
        guard name.count <= 8, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
            throw NetnsError("a host set's name is 1 to 8 letters or digits (it prefixes interface names), not '\(name)'")
        }
        if try run(["ip", "netns", "list"]).split(separator: "\n").contains(where: { $0.hasPrefix("\(name)-") }) {
            throw NetnsError("host set '\(name)' exists already: destroy it first (tools/netns-hosts destroy \(name))")
        }
        let (members, store) = try freeSubnets()
        let hosts = (1...count).map { index in
            Host(
                name: "h\(index)", namespace: "\(name)-h\(index)", address: "\(members).\(index)", storeAddress: "\(store).\(index)",
                membersLink: "\(name)-h\(index)m", storeLink: "\(name)-h\(index)s")
        }
        let set = NetnsHosts(name: name, hosts: hosts, gateway: "\(members).254", storeGateway: "\(store).254")
        do {
            for (bridge, gateway) in [("\(name)-bm", set.gateway), ("\(name)-bs", set.storeGateway)] {
                try run(["ip", "link", "add", bridge, "type", "bridge"])
                try run(["ip", "addr", "add", "\(gateway)/24", "dev", bridge])
                try run(["ip", "link", "set", bridge, "up"])
            }
            for host in hosts {
                try run(["ip", "netns", "add", host.namespace])
                try run(["ip", "netns", "exec", host.namespace, "ip", "link", "set", "lo", "up"])
                for (link, inside, bridge, address) in [
                    (host.membersLink, "eth0", "\(name)-bm", host.address), (host.storeLink, "eth1", "\(name)-bs", host.storeAddress),
                ] {
                    try run(["ip", "link", "add", link, "type", "veth", "peer", "name", inside, "netns", host.namespace])
                    try run(["ip", "link", "set", link, "master", bridge])
                    try run(["ip", "link", "set", link, "up"])
                    try run(["ip", "netns", "exec", host.namespace, "ip", "addr", "add", "\(address)/24", "dev", inside])
                    try run(["ip", "netns", "exec", host.namespace, "ip", "link", "set", inside, "up"])
                }
            }
        } catch {
            set.destroy()
            throw error
        }
        return set
    }

    /// The command line that runs `arguments` inside `host`.
    public func exec(_ host: Host, _ arguments: [String]) -> [String] {
        ["ip", "netns", "exec", host.namespace] + arguments
    }

    // MARK: faults

    /// The pids of every process in `host`.
    public func processes(on host: Host) -> [Int32] { Self.pids(in: host.namespace) }

    /// The pids of every process in the network namespace `namespace`.
    static func pids(in namespace: String) -> [Int32] {
        ((try? run(["ip", "netns", "pids", namespace])) ?? "").split(separator: "\n").compactMap { Int32($0) }
    }

    /// Sends `signal` to every process in `host` (SIGKILL: the host died; SIGSTOP: it hangs;
    /// SIGCONT: it goes on). Returns the pids signalled.
    @discardableResult
    public func signalAll(on host: Host, _ signal: Int32) -> [Int32] {
        let pids = processes(on: host)
        for pid in pids { kill(pid, signal) }
        return pids
    }

    /// A host's links.
    public enum Link: Sendable, CaseIterable {
        /// To the other hosts' members (masters, task executors).
        case members
        /// To the etcd members (its own member is cut from the others too).
        case store
    }

    /// Cuts `links` of `host` (default: both: the host is off the network; its processes live on).
    public func cut(_ host: Host, _ links: [Link] = Link.allCases) throws {
        for link in links { try Self.run(["ip", "link", "set", linkName(host, link), "down"]) }
    }

    /// Restores links `cut` took down.
    public func restore(_ host: Host, _ links: [Link] = Link.allCases) throws {
        for link in links { try Self.run(["ip", "link", "set", linkName(host, link), "up"]) }
    }

    private func linkName(_ host: Host, _ link: Link) -> String {
        switch link {
        case .members: host.membersLink
        case .store: host.storeLink
        }
    }

    // MARK: teardown

    /// Kills every process in the hosts and removes the namespaces and the bridge. Safe to call
    /// twice; never throws (what could not be removed is left for `destroy(name:)`).
    public func destroy() { Self.destroy(name: name) }

    /// Removes every namespace and link of the set `name` (for `tools/netns-hosts destroy`, and
    /// after a crashed run).
    public static func destroy(name: String) {
        let namespaces = ((try? run(["ip", "netns", "list"])) ?? "").split(separator: "\n")
            .compactMap { $0.split(separator: " ").first.map(String.init) }.filter { $0.hasPrefix("\(name)-") }
        for namespace in namespaces {
            for pid in pids(in: namespace) {
                kill(pid, SIGCONT)
                kill(pid, SIGKILL)
            }
        }
        for namespace in namespaces {
            // A namespace whose processes are still exiting may refuse deletion for a moment.
            for _ in 0..<50 {
                if (try? run(["ip", "netns", "delete", namespace])) != nil { break }
                usleep(20_000)
            }
        }
        for bridge in ["\(name)-bm", "\(name)-bs"] { _ = try? run(["ip", "link", "delete", bridge]) }
    }

    /// The sets that exist now (by their bridges).
    public static func existingSets() -> [String] {
        ((try? run(["ip", "-o", "link", "show", "type", "bridge"])) ?? "").split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 1 else { return nil }
            let interface = fields[1].trimmingCharacters(in: CharacterSet(charactersIn: ":")).split(separator: "@").first.map(String.init) ?? ""
            return interface.hasSuffix("-bm") ? String(interface.dropLast(3)) : nil
        }
    }

    // MARK: machinery

    /// Two /24s of 10.0.0.0/8 (as `10.x.y`, `10.x.y+1`) that no interface uses.
    static func freeSubnets() throws -> (String, String) {
        let used = try run(["ip", "-o", "-4", "addr", "show"])
        for _ in 0..<200 {
            let (x, y) = (Int.random(in: 64...250), Int.random(in: 0...127) * 2)
            let members = "10.\(x).\(y)"
            let store = "10.\(x).\(y + 1)"
            if !used.contains(" \(members).") && !used.contains(" \(store).") { return (members, store) }
        }
        throw NetnsError("no two free /24s in 10.0.0.0/8 for the hosts")
    }

    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        do {
            try process.run()
        } catch {
            throw NetnsError("cannot run \(arguments.joined(separator: " ")): \(error)")
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw NetnsError("\(arguments.joined(separator: " ")) failed (status \(process.terminationStatus)): \(text.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return text
    }
}

/// A network-namespace operation that failed, with the command and what it printed.
public struct NetnsError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
