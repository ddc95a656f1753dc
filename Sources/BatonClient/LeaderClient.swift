public import BatonConfig
import BatonCore
import BatonElection
import BatonHAStore
import BatonHAStoreSelection
import BatonRPC
public import BatonWire
import Foundation
public import Logging

/// Talks to whoever leads: finds the leader in the store (leader retrieval), connects with the
/// cluster secret, sends a request and returns the reply; when the leader changes meanwhile (a
/// NotLeader reply, a lost connection) it tries again, up to `patience`.
public struct LeaderClient: Sendable {
    public let configuration: HAConfiguration
    public let identity: String
    public let logger: Logger
    public let patience: Duration

    /// Where the leader is: `host:port` and id, or nil when no term is held.
    public typealias LeaderLookup = @Sendable () async throws -> (host: String, port: Int, id: String)?
    /// How the leader is found: by default from the store, opened read-only for each request (a
    /// process that holds the store open already, a master, passes a lookup on its own handle).
    private let lookup: LeaderLookup?

    public init(
        configuration: HAConfiguration, identity: String = "client", logger: Logger, patience: Duration = .seconds(15), leaderLookup: LeaderLookup? = nil
    ) {
        self.configuration = configuration
        self.identity = identity
        self.logger = logger
        self.patience = patience
        self.lookup = leaderLookup
        rpc = Result { try RPCConfiguration(configuration.rpc, identity: identity) }
    }

    /// A leader's `host:port` address split, with its id.
    public static func leader(address: String, id: String) -> (host: String, port: Int, id: String)? {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else { return nil }
        return (String(address[..<colon]), port, id)
    }

    public struct ClientError: Error, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// The connection settings with this client's TLS credentials (`identity`'s), loaded once.
    private let rpc: Result<RPCConfiguration, any Error>

    /// The leader's `host:port` from the store, or nil when no term is held.
    public func leaderAddress() throws -> (host: String, port: Int, id: String)? {
        let store = try HAStoreSelection.open(configuration.store, access: .readOnly)
        guard let record = try store.readLeadershipBlocking(), let holder = record.holder else { return nil }
        return Self.leader(address: holder.address, id: holder.member.rawValue)
    }

    /// Sends `request` to the leader and returns its reply (never a NotLeader).
    public func request(_ request: WireEnvelope, timeout: Duration = .seconds(30)) async throws -> WireEnvelope {
        let deadline = ContinuousClock.now + patience
        let rpc: RPCConfiguration
        do { rpc = try self.rpc.get() } catch { throw ClientError(message: "\(error)") }
        var lastProblem = "no leader is elected"
        while true {
            let found = if let lookup { try await lookup() } else { try leaderAddress() }
            if let leader = found {
                do {
                    let reply = try await RPCClient.connect(
                        host: leader.host, port: leader.port, identity: RPCPeer(id: identity, role: .client), configuration: rpc, logger: logger
                    ) { connection in try await connection.request(request, timeout: timeout) }
                    if case .notLeader = reply.body {
                        lastProblem = "master \(leader.id) is no longer the leader"
                    } else {
                        return reply
                    }
                } catch let error as RPCError where error.code == .refused || error.code == .unauthenticated {
                    throw ClientError(message: error.message)
                } catch {
                    lastProblem = "cannot reach the leader \(leader.id) at \(leader.host):\(leader.port): \(error)"
                }
            }
            guard ContinuousClock.now < deadline else { throw ClientError(message: lastProblem) }
            try await Task.sleep(for: .milliseconds(200))
        }
    }
}
