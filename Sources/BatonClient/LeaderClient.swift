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

    public init(configuration: HAConfiguration, identity: String = "client", logger: Logger, patience: Duration = .seconds(15)) {
        self.configuration = configuration
        self.identity = identity
        self.logger = logger
        self.patience = patience
    }

    public struct ClientError: Error, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    var rpc: RPCConfiguration { RPCConfiguration(configuration.rpc) }

    /// The leader's `host:port` from the store, or nil when no term is held.
    public func leaderAddress() throws -> (host: String, port: Int, id: String)? {
        let store = try HAStoreSelection.open(configuration.store, access: .readOnly)
        guard let record = try store.readLeadershipBlocking(), let holder = record.holder,
            let colon = holder.address.lastIndex(of: ":"), let port = Int(holder.address[holder.address.index(after: colon)...])
        else { return nil }
        return (String(holder.address[..<colon]), port, holder.member.rawValue)
    }

    /// Sends `request` to the leader and returns its reply (never a NotLeader).
    public func request(_ request: WireEnvelope, timeout: Duration = .seconds(30)) async throws -> WireEnvelope {
        let deadline = ContinuousClock.now + patience
        var lastProblem = "no leader is elected"
        while true {
            if let leader = try leaderAddress() {
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
