import AsyncHTTPClient
import BatonCore
import Foundation
import NIOCore
import NIOHTTP1

/// One change a watch saw.
public struct EtcdWatchEvent: Hashable, Sendable {
    public enum Kind: Hashable, Sendable { case put, delete }
    public var kind: Kind
    /// The key as it is after the change (for a delete: the key and its `modRevision` only).
    public var keyValue: EtcdKeyValue
}

/// What a watch stream delivers.
public enum EtcdWatchMessage: Hashable, Sendable {
    /// The watch is in place: every change after `revision` will be delivered.
    case created(revision: Int64)
    /// Changes, in revision order; `revision` is the cluster's revision when they were sent.
    case events([EtcdWatchEvent], revision: Int64)
    /// etcd compacted the history the watch asked for (its start revision is older than
    /// `compactRevision`): the changes before it are gone. Read the keys again, then watch from
    /// the revision of that read.
    case compacted(compactRevision: Int64)
}

extension EtcdClient {
    /// Watches `key` (to `rangeEnd`, exclusive, when given) from `startRevision` (nil: from now),
    /// over one streaming request to the first endpoint that takes it.
    ///
    /// The stream ends normally after `lifetime` (start a new watch from the last revision seen
    /// plus one), ends after `.compacted`, and fails with an `EtcdError` when no endpoint takes the
    /// watch or the connection breaks: in every case nothing after the last delivered revision was
    /// lost, and a new watch from there sees it.
    public func watch(
        _ key: [UInt8], rangeEnd: [UInt8]? = nil, startRevision: Int64? = nil, lifetime: Duration = .seconds(300)
    ) -> AsyncThrowingStream<EtcdWatchMessage, any Error> {
        let create = WatchRequestJSON(
            create_request: .init(key: JSONBytes(key), range_end: rangeEnd.map(JSONBytes.init), start_revision: startRevision.map(JSONInt64.init)))
        let endpoints = orderedEndpoints
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    try await Self.runWatch(create, endpoints: endpoints, lifetime: lifetime, http: self.httpClient, continuation: continuation)
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    private static func runWatch(
        _ create: WatchRequestJSON, endpoints: [String], lifetime: Duration, http: HTTPClient,
        continuation: AsyncThrowingStream<EtcdWatchMessage, any Error>.Continuation
    ) async throws {
        let payload = try JSONEncoder().encode(create)
        var unreachable: [String] = []
        for endpoint in endpoints {
            var request = HTTPClientRequest(url: endpoint + "/v3/watch")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: payload))
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request, deadline: .now() + .nanoseconds(lifetime.nanosecondsClamped))
            } catch {
                unreachable.append("\(endpoint): \(error)")
                continue
            }
            guard response.status == .ok else {
                throw EtcdError(.rejected, "/v3/watch at \(endpoint): HTTP \(response.status.code)")
            }
            var pending: [UInt8] = []
            do {
                for try await chunk in response.body {
                    pending += chunk.readableBytesView
                    while let newline = pending.firstIndex(of: 0x0A) {
                        let line = pending[..<newline]
                        defer { pending.removeSubrange(...newline) }
                        guard !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) else { continue }
                        guard let message = try decodeWatchLine(Array(line), endpoint: endpoint) else { continue }
                        continuation.yield(message)
                        if case .compacted = message { return }
                    }
                }
            } catch let error as EtcdError {
                throw error
            } catch let error as HTTPClientError where error == .deadlineExceeded {
                return
            } catch {
                if Task.isCancelled { return }
                throw EtcdError(.unavailable, "the watch at \(endpoint) broke: \(error)")
            }
            return
        }
        throw EtcdError(.unavailable, "no etcd endpoint took the watch: " + unreachable.joined(separator: "; "))
    }

    /// One line of the gateway's watch stream: `{"result": {...}}` or `{"error": {...}}`.
    static func decodeWatchLine(_ line: [UInt8], endpoint: String) throws -> EtcdWatchMessage? {
        let decoded: WatchLineJSON
        do {
            decoded = try JSONDecoder().decode(WatchLineJSON.self, from: Data(line))
        } catch {
            throw EtcdError(.malformed, "/v3/watch at \(endpoint) sent what is not a watch response: \(error)")
        }
        if let error = decoded.error {
            throw EtcdError(.rejected, "/v3/watch at \(endpoint): \(error.message ?? error.error ?? "an error")", grpcCode: error.code)
        }
        guard let result = decoded.result else { return nil }
        let revision = result.header?.revision?.value ?? 0
        if let compacted = result.compact_revision?.value, compacted > 0 { return .compacted(compactRevision: compacted) }
        if result.canceled == true {
            throw EtcdError(.rejected, "/v3/watch at \(endpoint) was canceled: \(result.cancel_reason ?? "no reason given")")
        }
        if result.created == true { return .created(revision: revision) }
        let events = (result.events ?? []).map { event in
            EtcdWatchEvent(kind: event.type == "DELETE" ? .delete : .put, keyValue: (event.kv ?? KeyValueJSON()).keyValue)
        }
        return events.isEmpty ? nil : .events(events, revision: revision)
    }
}

struct WatchRequestJSON: Codable, Sendable {
    struct Create: Codable, Sendable {
        var key: JSONBytes
        var range_end: JSONBytes?
        var start_revision: JSONInt64?
    }
    var create_request: Create
}

struct WatchLineJSON: Codable, Sendable {
    struct Result: Codable, Sendable {
        var header: ResponseHeader?
        var created: Bool?
        var canceled: Bool?
        var cancel_reason: String?
        var compact_revision: JSONInt64?
        var events: [EventJSON]?
    }
    struct EventJSON: Codable, Sendable {
        var type: String?
        var kv: KeyValueJSON?
    }
    var result: Result?
    var error: GatewayErrorJSON?
}
