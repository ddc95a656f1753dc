import Foundation

// The JSON forms of etcd's v3 API as its gateway speaks them (etcd 3.4, `/v3/...`, POST only):
// bytes fields are standard base64, int64 fields are strings, and fields at their default value
// are left out of responses, so every response field is decoded as optional.

/// An integer that the gateway writes as a string (and accepts as one): int64 fields (revisions,
/// leases) and uint64 ones (member and cluster ids, which a real etcd sets above Int64.max).
struct JSONInteger<Value: FixedWidthInteger & Codable & Sendable>: Codable, Hashable, Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            guard let value = Value(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not a \(Value.self)")
            }
            self.value = value
        } else {
            value = try container.decode(Value.self)
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(String(value))
    }
}

typealias JSONInt64 = JSONInteger<Int64>
typealias JSONUInt64 = JSONInteger<UInt64>

/// Bytes as standard base64.
struct JSONBytes: Codable, Hashable, Sendable {
    var bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let data = Data(base64Encoded: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not base64")
        }
        bytes = [UInt8](data)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Data(bytes).base64EncodedString())
    }
}

struct ResponseHeader: Codable, Sendable {
    var cluster_id: JSONUInt64?
    var member_id: JSONUInt64?
    var revision: JSONInt64?
    var raft_term: JSONInt64?
}

struct KeyValueJSON: Codable, Sendable {
    var key: JSONBytes?
    var create_revision: JSONInt64?
    var mod_revision: JSONInt64?
    var version: JSONInt64?
    var value: JSONBytes?
    var lease: JSONInt64?

    var keyValue: EtcdKeyValue {
        EtcdKeyValue(
            key: key?.bytes ?? [], value: value?.bytes ?? [], createRevision: create_revision?.value ?? 0,
            modRevision: mod_revision?.value ?? 0, version: version?.value ?? 0, lease: lease?.value ?? 0)
    }
}

struct RangeRequestJSON: Codable, Sendable {
    var key: JSONBytes
    var range_end: JSONBytes?
    var limit: JSONInt64?
    var revision: JSONInt64?
    var keys_only: Bool?
    var count_only: Bool?
}

struct RangeResponseJSON: Codable, Sendable {
    var header: ResponseHeader?
    var kvs: [KeyValueJSON]?
    var more: Bool?
    var count: JSONInt64?
}

struct PutRequestJSON: Codable, Sendable {
    var key: JSONBytes
    var value: JSONBytes
    var lease: JSONInt64?
}

struct PutResponseJSON: Codable, Sendable {
    var header: ResponseHeader?
}

struct DeleteRangeRequestJSON: Codable, Sendable {
    var key: JSONBytes
    var range_end: JSONBytes?
}

struct DeleteRangeResponseJSON: Codable, Sendable {
    var header: ResponseHeader?
    var deleted: JSONInt64?
}

struct CompareJSON: Codable, Sendable {
    var key: JSONBytes
    var range_end: JSONBytes?
    var target: String
    var result: String
    var version: JSONInt64?
    var create_revision: JSONInt64?
    var mod_revision: JSONInt64?
    var value: JSONBytes?
    var lease: JSONInt64?
}

struct RequestOpJSON: Codable, Sendable {
    var request_range: RangeRequestJSON?
    var request_put: PutRequestJSON?
    var request_delete_range: DeleteRangeRequestJSON?
}

struct ResponseOpJSON: Codable, Sendable {
    var response_range: RangeResponseJSON?
    var response_put: PutResponseJSON?
    var response_delete_range: DeleteRangeResponseJSON?
}

struct TxnRequestJSON: Codable, Sendable {
    var compare: [CompareJSON]
    var success: [RequestOpJSON]
    var failure: [RequestOpJSON]
}

struct TxnResponseJSON: Codable, Sendable {
    var header: ResponseHeader?
    var succeeded: Bool?
    var responses: [ResponseOpJSON]?
}

struct LeaseGrantRequestJSON: Codable, Sendable {
    var TTL: JSONInt64
    var ID: JSONInt64?
}

struct LeaseGrantResponseJSON: Codable, Sendable {
    var header: ResponseHeader?
    var ID: JSONInt64?
    var TTL: JSONInt64?
    var error: String?
}

struct LeaseIDJSON: Codable, Sendable {
    var ID: JSONInt64
}

/// A keep-alive answers on a stream: each renewal a `result` of the grant's shape.
struct LeaseKeepAliveResultJSON: Codable, Sendable {
    var result: LeaseGrantResponseJSON?
}

struct EmptyJSON: Codable, Sendable {}

struct CompactionJSON: Codable, Sendable {
    var revision: JSONInt64
    var physical: Bool
}

struct StatusResponseJSON: Codable, Sendable {
    var header: ResponseHeader?
    var version: String?
    var leader: JSONUInt64?
    var raftTerm: JSONInt64?
}

/// An error the gateway answers with instead of a response.
struct GatewayErrorJSON: Codable, Sendable {
    var error: String?
    var message: String?
    var code: Int?
}
