public import BatonCore

/// Per-key totals (the keyed state of counts, sums and windows): an open-addressing table over a
/// stable FNV-1a hash of the key, faster than a `Dictionary` for the short keys records carry,
/// which would hash each with a seeded SipHash.
public struct KeyedTotals: Sendable, Equatable {
    private var keys: [String] = []
    private var values: [Int64] = []
    /// Per slot, 1 + the index of its key, or 0 when empty; a power of two long.
    private var slots: [Int32] = Array(repeating: 0, count: 16)

    public init() {}

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    public subscript(key: String) -> Int64? {
        find(key, hash: Self.hash(key)).index.map { values[$0] }
    }

    /// Adds `increment` to the total of `key` (absent: 0) and returns the new total.
    @discardableResult
    public mutating func add(_ increment: Int64, to key: String) -> Int64 {
        let hash = Self.hash(key)
        let (slot, found) = find(key, hash: hash)
        if let found {
            values[found] &+= increment
            return values[found]
        }
        keys.append(key)
        values.append(increment)
        slots[slot] = Int32(keys.count)
        if keys.count * 4 > slots.count * 3 { grow() }
        return increment
    }

    public mutating func removeAll() {
        keys.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
        for index in slots.indices { slots[index] = 0 }
    }

    /// Every key with its total, in key order.
    public var sorted: [(key: String, total: Int64)] {
        keys.indices.sorted { keys[$0] < keys[$1] }.map { (keys[$0], values[$0]) }
    }

    public static func == (left: KeyedTotals, right: KeyedTotals) -> Bool {
        left.count == right.count && left.keys.indices.allSatisfy { right[left.keys[$0]] == left.values[$0] }
    }

    /// The slot of `key`: where it is (and its index), or the empty slot where it would go.
    private func find(_ key: String, hash: UInt64) -> (slot: Int, index: Int?) {
        let mask = slots.count - 1
        var slot = Self.slot(hash, mask)
        while true {
            let entry = Int(slots[slot])
            if entry == 0 { return (slot, nil) }
            if keys[entry - 1] == key { return (slot, entry - 1) }
            slot = (slot + 1) & mask
        }
    }

    private mutating func grow() {
        slots = Array(repeating: 0, count: slots.count * 2)
        let mask = slots.count - 1
        for (index, key) in keys.enumerated() {
            var slot = Self.slot(Self.hash(key), mask)
            while slots[slot] != 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(index + 1)
        }
    }

    /// The high bits of the hash multiplied by an odd constant: keys of one subtask share the
    /// low bits of their hash (their key groups), so those are not used alone.
    private static func slot(_ hash: UInt64, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (hash &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    static func hash(_ key: String) -> UInt64 { KeyGroups.hash(key) }

    // MARK: bytes

    /// The totals as checkpoint state: the count, then each key and its total.
    public func encoded() -> [UInt8] {
        var writer = BinaryWriter(capacity: keys.count * 16 + 8)
        writer.write(UInt64(keys.count))
        for index in keys.indices {
            writer.write(keys[index])
            writer.write(signed: values[index])
        }
        return writer.bytes
    }

    public init(decoding bytes: [UInt8]) throws {
        var reader = BinaryReader(bytes)
        let count = try reader.readUInt64()
        guard count <= UInt64(bytes.count) else { throw BinaryDecodingError(offset: 0, problem: "state claims \(count) keys") }
        self.init()
        for _ in 0..<count {
            let key = try reader.readString()
            let total = try reader.readInt64()
            guard self[key] == nil else { throw BinaryDecodingError(offset: reader.offset, problem: "the key '\(key)' appears twice") }
            add(total, to: key)
        }
        guard reader.isAtEnd else { throw BinaryDecodingError(offset: reader.offset, problem: "trailing bytes after the keyed state") }
    }
}
