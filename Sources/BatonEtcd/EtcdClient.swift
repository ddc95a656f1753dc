import BatonCore
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// One key as etcd holds it.
public struct EtcdKeyValue: Hashable, Sendable {
    public var key: [UInt8]
    public var value: [UInt8]
    /// The cluster-wide revision that created the key (0: it does not exist).
    public var createRevision: Int64
    public var modRevision: Int64
    public var version: Int64
    public var lease: Int64
}

/// What a range read found, at which revision of the whole cluster.
public struct EtcdRange: Sendable {
    public var keyValues: [EtcdKeyValue]
    public var revision: Int64
    /// More keys matched than the limit let through.
    public var more: Bool
}

/// A condition of a transaction, on one key (or every key of a range).
public struct EtcdCompare: Sendable {
    public enum Target: String, Sendable { case version = "VERSION", create = "CREATE", mod = "MOD", value = "VALUE" }
    public enum Relation: String, Sendable { case equal = "EQUAL", greater = "GREATER", less = "LESS", notEqual = "NOT_EQUAL" }
    public var key: [UInt8]
    public var rangeEnd: [UInt8]?
    public var target: Target
    public var relation: Relation
    public var number: Int64
    public var value: [UInt8]

    /// The key's `target` revision (or version) compared with `number`.
    public static func revision(_ key: [UInt8], _ target: Target, _ relation: Relation, _ number: Int64, rangeEnd: [UInt8]? = nil) -> EtcdCompare {
        EtcdCompare(key: key, rangeEnd: rangeEnd, target: target, relation: relation, number: number, value: [])
    }

    /// The key's value compared with `value`.
    public static func value(_ key: [UInt8], _ relation: Relation, _ value: [UInt8]) -> EtcdCompare {
        EtcdCompare(key: key, rangeEnd: nil, target: .value, relation: relation, number: 0, value: value)
    }

    var json: CompareJSON {
        var compare = CompareJSON(key: JSONBytes(key), range_end: rangeEnd.map(JSONBytes.init), target: target.rawValue, result: relation.rawValue)
        switch target {
        case .version: compare.version = JSONInt64(number)
        case .create: compare.create_revision = JSONInt64(number)
        case .mod: compare.mod_revision = JSONInt64(number)
        case .value: compare.value = JSONBytes(value)
        }
        return compare
    }
}

/// An operation of a transaction.
public enum EtcdOperation: Sendable {
    case range(key: [UInt8], rangeEnd: [UInt8]?)
    case put(key: [UInt8], value: [UInt8], lease: Int64?)
    case delete(key: [UInt8], rangeEnd: [UInt8]?)

    var json: RequestOpJSON {
        switch self {
        case .range(let key, let end): RequestOpJSON(request_range: RangeRequestJSON(key: JSONBytes(key), range_end: end.map(JSONBytes.init)))
        case .put(let key, let value, let lease):
            RequestOpJSON(request_put: PutRequestJSON(key: JSONBytes(key), value: JSONBytes(value), lease: lease.map(JSONInt64.init)))
        case .delete(let key, let end): RequestOpJSON(request_delete_range: DeleteRangeRequestJSON(key: JSONBytes(key), range_end: end.map(JSONBytes.init)))
        }
    }
}

/// What a transaction did: which branch ran, at which revision, and the ranges it read.
public struct EtcdTxnResult: Sendable {
    public var succeeded: Bool
    public var revision: Int64
    /// The key-values each range operation of the branch that ran found, in order.
    public var ranges: [[EtcdKeyValue]]
}

/// Why a request to etcd failed.
public struct EtcdError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// No endpoint could be reached; the request was not carried out.
        case unavailable
        /// The request was sent but no answer came: it may or may not have been carried out.
        case outcomeUnknown
        /// etcd answered with an error (its gRPC code and message are in the text).
        case rejected
        /// The answer could not be read.
        case malformed
    }
    public var code: Code
    public var message: String
    /// etcd's gRPC status code, for `rejected`.
    public var grpcCode: Int?

    public init(_ code: Code, _ message: String, grpcCode: Int? = nil) {
        self.code = code
        self.message = message
        self.grpcCode = grpcCode
    }

    public var description: String { "etcd \(code.rawValue): \(message)" }
}

/// The one HTTP client of the process for etcd's gateway (never shut down; see `EtcdClient.close`).
private let etcdHTTPClient: HTTPClient = {
    var configuration = HTTPClient.Configuration()
    configuration.timeout = .init(connect: .seconds(1))
    configuration.connectionPool = .init(idleTimeout: .seconds(30))
    return HTTPClient(eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup.singleton), configuration: configuration)
}()

/// A client of etcd's v3 API through its JSON gateway on the client port (HTTP/1.1, POST).
///
/// Endpoints are tried in turn: a request that could not be delivered (connection refused, no
/// route) goes to the next one; a request that was sent and not answered within the timeout is
/// retried elsewhere only when reading it twice cannot matter (ranges, status, lease keep-alive),
/// otherwise it fails with `outcomeUnknown`, for the caller to find out what happened.
public final class EtcdClient: Sendable {
    public let endpoints: [String]
    public let requestTimeout: Duration
    private let http: HTTPClient
    var httpClient: HTTPClient { http }
    /// The endpoint that answered last: requests go there first (a dead one costs its connect
    /// timeout once, not on every request).
    private let preferred = Mutex(0)

    /// `endpoints` are URLs such as `http://127.0.0.1:2379`.
    public init(endpoints: [String], requestTimeout: Duration = .seconds(2)) throws {
        guard !endpoints.isEmpty else { throw EtcdError(.unavailable, "no etcd endpoints given") }
        for endpoint in endpoints {
            guard let url = URL(string: endpoint), url.scheme == "http", url.host != nil, url.port != nil else {
                throw EtcdError(.unavailable, "'\(endpoint)' is not an etcd endpoint of the form http://HOST:PORT")
            }
        }
        self.endpoints = endpoints.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.requestTimeout = requestTimeout
        http = etcdHTTPClient
    }

    /// Nothing to release: every client shares one process-wide HTTP client (its pooled
    /// connections close when idle). Shutting an HTTP client down while a connection whose
    /// request timed out is still closing trips async-http-client's pool (seen under load), so the
    /// shared one is never shut down.
    public func close() async {}

    /// As `close()`.
    public func closeBlocking() {}

    // MARK: requests (each waits off Swift's cooperative pool; `waiting` has the same, blocking)

    /// The keys from `key` (to `rangeEnd`, exclusive, when given), at `revision` (nil: the latest).
    public func range(_ key: [UInt8], rangeEnd: [UInt8]? = nil, revision: Int64? = nil, limit: Int64 = 0) async throws -> EtcdRange {
        try await offPool { try self.waiting.range(key, rangeEnd: rangeEnd, revision: revision, limit: limit) }
    }

    /// Writes one key; returns the revision it made.
    @discardableResult
    public func put(_ key: [UInt8], _ value: [UInt8], lease: Int64? = nil) async throws -> Int64 {
        try await offPool { try self.waiting.put(key, value, lease: lease) }
    }

    /// Deletes one key (or the range to `rangeEnd`); returns how many were deleted.
    @discardableResult
    public func delete(_ key: [UInt8], rangeEnd: [UInt8]? = nil) async throws -> Int64 {
        try await offPool { try self.waiting.delete(key, rangeEnd: rangeEnd) }
    }

    /// Runs `success` when every comparison holds, otherwise `failure`, atomically.
    public func txn(compare: [EtcdCompare], success: [EtcdOperation], failure: [EtcdOperation] = []) async throws -> EtcdTxnResult {
        try await offPool { try self.waiting.txn(compare: compare, success: success, failure: failure) }
    }

    /// A new lease of `ttlSeconds`; returns its id and the TTL etcd gave it.
    public func grantLease(ttlSeconds: Int64) async throws -> (id: Int64, ttlSeconds: Int64) {
        try await offPool { try self.waiting.grantLease(ttlSeconds: ttlSeconds) }
    }

    /// Renews a lease once; returns its remaining TTL in seconds (0: the lease is gone).
    public func keepAlive(lease: Int64) async throws -> Int64 {
        try await offPool { try self.waiting.keepAlive(lease: lease) }
    }

    /// Ends a lease now: every key attached to it is deleted.
    public func revoke(lease: Int64) async throws {
        try await offPool { try self.waiting.revoke(lease: lease) }
    }

    /// The answering member's view: etcd's version, the raft leader's member id and term, and its own id.
    public func status() async throws -> (version: String, leader: UInt64, raftTerm: Int64, member: UInt64) {
        try await offPool { try self.waiting.status() }
    }

    /// Discards the history before `revision` (watches from earlier revisions are then refused).
    public func compact(revision: Int64) async throws {
        try await offPool {
            let _: EmptyJSON = try self.callBlocking("/v3/kv/compaction", CompactionJSON(revision: JSONInt64(revision), physical: true), idempotent: true)
        }
    }

    /// The same requests, blocking the calling thread until etcd answers: for a thread of its own
    /// (the HA store's), never for one of Swift's cooperative pool.
    public var waiting: Waiting { Waiting(client: self) }

    public struct Waiting: Sendable {
        let client: EtcdClient
            // MARK: key-value

        /// The keys from `key` (to `rangeEnd`, exclusive, when given), at `revision` (nil: the latest).
        public func range(_ key: [UInt8], rangeEnd: [UInt8]? = nil, revision: Int64? = nil, limit: Int64 = 0) throws -> EtcdRange {
            let request = RangeRequestJSON(
                key: JSONBytes(key), range_end: rangeEnd.map(JSONBytes.init), limit: limit > 0 ? JSONInt64(limit) : nil,
                revision: revision.map(JSONInt64.init))
            let response: RangeResponseJSON = try client.callBlocking("/v3/kv/range", request, idempotent: true)
            return EtcdRange(
                keyValues: (response.kvs ?? []).map(\.keyValue), revision: response.header?.revision?.value ?? 0, more: response.more ?? false)
        }

        /// Writes one key; returns the revision it made.
        @discardableResult
        public func put(_ key: [UInt8], _ value: [UInt8], lease: Int64? = nil) throws -> Int64 {
            let response: PutResponseJSON = try client.callBlocking(
                "/v3/kv/put", PutRequestJSON(key: JSONBytes(key), value: JSONBytes(value), lease: lease.map(JSONInt64.init)), idempotent: false)
            return response.header?.revision?.value ?? 0
        }

        /// Deletes one key (or the range to `rangeEnd`); returns how many were deleted.
        @discardableResult
        public func delete(_ key: [UInt8], rangeEnd: [UInt8]? = nil) throws -> Int64 {
            let response: DeleteRangeResponseJSON = try client.callBlocking(
                "/v3/kv/deleterange", DeleteRangeRequestJSON(key: JSONBytes(key), range_end: rangeEnd.map(JSONBytes.init)), idempotent: false)
            return response.deleted?.value ?? 0
        }

        /// Runs `success` when every comparison holds, otherwise `failure`, atomically.
        public func txn(compare: [EtcdCompare], success: [EtcdOperation], failure: [EtcdOperation] = []) throws -> EtcdTxnResult {
            let request = TxnRequestJSON(compare: compare.map(\.json), success: success.map(\.json), failure: failure.map(\.json))
            let response: TxnResponseJSON = try client.callBlocking("/v3/kv/txn", request, idempotent: false)
            return EtcdTxnResult(
                succeeded: response.succeeded ?? false, revision: response.header?.revision?.value ?? 0,
                ranges: (response.responses ?? []).compactMap { $0.response_range.map { ($0.kvs ?? []).map(\.keyValue) } })
        }

        // MARK: leases

        /// A new lease of `ttlSeconds`; returns its id and the TTL etcd gave it.
        public func grantLease(ttlSeconds: Int64) throws -> (id: Int64, ttlSeconds: Int64) {
            let response: LeaseGrantResponseJSON = try client.callBlocking("/v3/lease/grant", LeaseGrantRequestJSON(TTL: JSONInt64(ttlSeconds)), idempotent: false)
            if let error = response.error, !error.isEmpty { throw EtcdError(.rejected, "granting a lease: \(error)") }
            guard let id = response.ID?.value, id != 0 else { throw EtcdError(.malformed, "a lease grant without a lease id") }
            return (id, response.TTL?.value ?? ttlSeconds)
        }

        /// Renews a lease once; returns its remaining TTL in seconds (0: the lease is gone).
        public func keepAlive(lease: Int64) throws -> Int64 {
            let response: LeaseKeepAliveResultJSON = try client.callBlocking("/v3/lease/keepalive", LeaseIDJSON(ID: JSONInt64(lease)), idempotent: true)
            return response.result?.TTL?.value ?? 0
        }

        /// Ends a lease now: every key attached to it is deleted.
        public func revoke(lease: Int64) throws {
            let _: EmptyJSON = try client.callBlocking("/v3/lease/revoke", LeaseIDJSON(ID: JSONInt64(lease)), idempotent: true)
        }

        // MARK: cluster

        /// The answering member's view: etcd's version, the raft leader's member id and term, and its own id.
        public func status() throws -> (version: String, leader: UInt64, raftTerm: Int64, member: UInt64) {
            let response: StatusResponseJSON = try client.callBlocking("/v3/maintenance/status", EmptyJSON(), idempotent: true)
            return (response.version ?? "", response.leader?.value ?? 0, response.raftTerm?.value ?? 0, response.header?.member_id?.value ?? 0)
        }

    }

    // MARK: machinery

    /// The endpoints in the order a request tries them: the last that answered first.
    var orderedEndpoints: [String] {
        let first = preferred.withLock { $0 }
        return endpoints.indices.map { endpoints[($0 + first) % endpoints.count] }
    }

    /// Runs a blocking request on a thread outside Swift's cooperative pool: the awaiting task
    /// holds none while etcd answers.
    private func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Sends the request to each endpoint in turn (the last that answered first) and waits for
    /// the answer, blocking the calling thread (never one of Swift's cooperative pool).
    ///
    /// A member that answers "unavailable" (HTTP 503: it has no raft leader, or the leader
    /// changed while the request was in flight, as during etcd's own elections) is passed over
    /// for a request that may run twice, and such a request goes round the members up to
    /// `unavailableRounds` times, pausing between rounds; any other request then fails as
    /// `outcomeUnknown` (a proposal dropped by a leader change may still have been committed).
    func callBlocking<Request: Encodable, Response: Decodable>(_ path: String, _ body: Request, idempotent: Bool) throws -> Response {
        let payload = try JSONEncoder().encode(body)
        var unreachable: [String] = []
        var answeredUnavailable = false
        for round in 0..<(idempotent ? Self.unavailableRounds : 1) {
            if round > 0 {
                guard answeredUnavailable else { break }
                usleep(useconds_t(Self.unavailablePause.nanosecondsClamped / 1000))
            }
            if let response: Response = try callRound(
                path, payload, idempotent: idempotent, unreachable: &unreachable, answeredUnavailable: &answeredUnavailable)
            {
                return response
            }
        }
        throw EtcdError(.unavailable, "no etcd endpoint answered \(path): " + unreachable.joined(separator: "; "))
    }

    /// How often a request that may run twice goes round members that answered "unavailable",
    /// and the pause between rounds: together longer than an etcd leader election with tuned
    /// timers (about 1.1 s), shorter than the default request timeout.
    static let unavailableRounds = 8
    static let unavailablePause: Duration = .milliseconds(200)

    /// One try of each endpoint; nil when none answered.
    private func callRound<Response: Decodable>(
        _ path: String, _ payload: Data, idempotent: Bool, unreachable: inout [String], answeredUnavailable: inout Bool
    ) throws -> Response? {
        let first = preferred.withLock { $0 }
        for index in endpoints.indices.map({ ($0 + first) % endpoints.count }) {
            let endpoint = endpoints[index]
            let response: HTTPClient.Response
            do {
                let request = try HTTPClient.Request(
                    url: endpoint + path, method: .POST, headers: ["Content-Type": "application/json"], body: .bytes(payload))
                response = try http.execute(request: request, deadline: .now() + .nanoseconds(requestTimeout.nanosecondsClamped)).wait()
            } catch {
                if Self.notDelivered(error) || idempotent {
                    unreachable.append("\(endpoint): \(error)")
                    continue
                }
                throw EtcdError(.outcomeUnknown, "\(path) at \(endpoint) sent, no answer within \(requestTimeout): \(error)")
            }
            let data = response.body.map { Data($0.readableBytesView) } ?? Data()
            guard response.status == .ok else {
                let failure = try? JSONDecoder().decode(GatewayErrorJSON.self, from: data)
                let message = failure?.message ?? failure?.error ?? String(decoding: data.prefix(300), as: UTF8.self)
                if response.status == .serviceUnavailable {
                    if idempotent {
                        unreachable.append("\(endpoint): \(message) (HTTP 503)")
                        answeredUnavailable = true
                        continue
                    }
                    throw EtcdError(
                        .outcomeUnknown, "\(path) at \(endpoint): \(message) (HTTP 503): it may have been carried out", grpcCode: failure?.code)
                }
                throw EtcdError(.rejected, "\(path) at \(endpoint): \(message) (HTTP \(response.status.code))", grpcCode: failure?.code)
            }
            preferred.withLock { $0 = index }
            do {
                return try JSONDecoder().decode(Response.self, from: data)
            } catch {
                throw EtcdError(.malformed, "\(path) at \(endpoint) answered what is not its response: \(error)")
            }
        }
        return nil
    }

    /// Whether the request surely never reached the server (the connection was not made).
    static func notDelivered(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError, error == .connectTimeout { return true }
        if let error = error as? IOError, [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EADDRNOTAVAIL].contains(error.errnoCode) { return true }
        if error is NIOConnectionError { return true }
        if let error = error as? ChannelError, case .connectTimeout = error { return true }
        return false
    }
}
