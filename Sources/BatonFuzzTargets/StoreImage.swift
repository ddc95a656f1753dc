public import BatonCore
public import BatonHAStore
public import BatonJobGraph

/// What the `store-values` target reads: entries of the HA store, each a namespace, a key and the
/// payload the store's writer is given (the store adds its checksum envelope). Encoded compactly
/// with `BinaryWriter`: per entry the namespace's number (one byte), the key and the payload
/// (each a varint length, then the bytes), until the end of the bytes.
///
/// The `meta` namespace (the store's format entries) is not part of an image: a store is opened
/// before any image is read.
public struct StoreImage: Hashable, Sendable {
    public struct Entry: Hashable, Sendable {
        public var namespace: StoreNamespace
        public var key: [UInt8]
        public var value: [UInt8]

        public init(_ namespace: StoreNamespace, key: [UInt8], value: [UInt8]) {
            self.namespace = namespace
            self.key = key
            self.value = value
        }
    }

    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    /// Reads an image; throws naming the entry and the byte where it is malformed.
    public init(decoding bytes: [UInt8]) throws {
        var reader = BinaryReader(bytes)
        var entries: [Entry] = []
        while !reader.isAtEnd {
            let number = try reader.readByte()
            guard let namespace = StoreNamespace.numbered(number), namespace != .meta else {
                throw FuzzTargetError(
                    "entry \(entries.count + 1) of the store image (byte \(reader.offset - 1)) names namespace \(number); an image holds 1 to 7")
            }
            let key = try reader.readBytes()
            entries.append(Entry(namespace, key: key, value: try reader.readBytes()))
        }
        self.entries = entries
    }

    public func encoded() -> [UInt8] {
        var writer = BinaryWriter()
        for entry in entries {
            writer.write(entry.namespace.number)
            writer.write(bytes: entry.key)
            writer.write(bytes: entry.value)
        }
        return writer.bytes
    }

    /// The job ids the image's keys name (job records, change records, checkpoints, history):
    /// the text of a key up to its first 0x00 or 0x01 byte, when it is a valid job id.
    public var jobIDs: [JobID] {
        var ids: Set<JobID> = []
        for entry in entries where [.jobs, .executionGraphs, .checkpoints, .jobHistory].contains(entry.namespace) {
            let name = entry.key.prefix { $0 > 0x01 }
            if let text = String(validating: name, as: UTF8.self), let id = JobID(rawValue: text) { ids.insert(id) }
        }
        return ids.sorted()
    }
}
