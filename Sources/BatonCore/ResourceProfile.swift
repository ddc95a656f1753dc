/// The resources a slot offers or a task asks for: CPU, task heap, managed memory, network memory
/// and extended resources (such as `gpu`), each a whole number in its unit.
///
/// CPU is counted in millicores (1000 = one core) so that fractions add up exactly.
public struct ResourceProfile: Hashable, Codable, Sendable, CustomStringConvertible {
    public var cpuMillis: Int64
    public var taskHeapBytes: Int64
    public var managedMemoryBytes: Int64
    public var networkMemoryBytes: Int64
    /// Extended resources by name (`gpu: 2`).
    public var extended: [String: Int64]

    public init(
        cpuMillis: Int64 = 0, taskHeapBytes: Int64 = 0, managedMemoryBytes: Int64 = 0, networkMemoryBytes: Int64 = 0,
        extended: [String: Int64] = [:]
    ) {
        self.cpuMillis = cpuMillis
        self.taskHeapBytes = taskHeapBytes
        self.managedMemoryBytes = managedMemoryBytes
        self.networkMemoryBytes = networkMemoryBytes
        self.extended = extended.filter { $0.value != 0 }
    }

    public static let zero = ResourceProfile()

    /// One dimension of a profile, for shortage reports.
    public enum Dimension: Hashable, Sendable, CustomStringConvertible {
        case cpu, taskHeap, managedMemory, networkMemory
        case extended(String)

        public var description: String {
            switch self {
            case .cpu: "cpu"
            case .taskHeap: "task heap"
            case .managedMemory: "managed memory"
            case .networkMemory: "network memory"
            case .extended(let name): name
            }
        }

        /// The amount formatted in the dimension's unit.
        public func format(_ amount: Int64) -> String {
            switch self {
            case .cpu:
                let cores = Double(amount) / 1000
                let number = cores == cores.rounded() ? "\(Int64(cores))" : "\(cores)"
                return number + (cores == 1 ? " core" : " cores")
            case .taskHeap, .managedMemory, .networkMemory:
                return amount >= 0 ? ByteSizeText.format(UInt64(amount)) : "-" + ByteSizeText.format(UInt64(-amount))
            case .extended: return "\(amount)"
            }
        }
    }

    /// Every dimension with its amount, the extended ones sorted by name.
    public var dimensions: [(Dimension, Int64)] {
        [(.cpu, cpuMillis), (.taskHeap, taskHeapBytes), (.managedMemory, managedMemoryBytes), (.networkMemory, networkMemoryBytes)]
            + extended.keys.sorted().map { (.extended($0), extended[$0]!) }
    }

    public func amount(_ dimension: Dimension) -> Int64 {
        switch dimension {
        case .cpu: cpuMillis
        case .taskHeap: taskHeapBytes
        case .managedMemory: managedMemoryBytes
        case .networkMemory: networkMemoryBytes
        case .extended(let name): extended[name] ?? 0
        }
    }

    /// Whether every dimension of `self` fits within `available`.
    public func fits(in available: ResourceProfile) -> Bool {
        cpuMillis <= available.cpuMillis && taskHeapBytes <= available.taskHeapBytes
            && managedMemoryBytes <= available.managedMemoryBytes && networkMemoryBytes <= available.networkMemoryBytes
            && extended.allSatisfy { $0.value <= (available.extended[$0.key] ?? 0) }
    }

    /// The dimensions in which `self` exceeds `available`: what is needed, what there is.
    public func shortfall(in available: ResourceProfile) -> [(dimension: Dimension, needed: Int64, available: Int64)] {
        dimensions.compactMap { dimension, needed in
            let there = available.amount(dimension)
            return needed > there ? (dimension, needed, there) : nil
        }
    }

    public static func + (lhs: ResourceProfile, rhs: ResourceProfile) -> ResourceProfile {
        ResourceProfile(
            cpuMillis: lhs.cpuMillis + rhs.cpuMillis, taskHeapBytes: lhs.taskHeapBytes + rhs.taskHeapBytes,
            managedMemoryBytes: lhs.managedMemoryBytes + rhs.managedMemoryBytes,
            networkMemoryBytes: lhs.networkMemoryBytes + rhs.networkMemoryBytes,
            extended: lhs.extended.merging(rhs.extended, uniquingKeysWith: +))
    }

    public static func - (lhs: ResourceProfile, rhs: ResourceProfile) -> ResourceProfile {
        lhs + rhs.scaled(by: -1)
    }

    /// Every dimension multiplied by `factor`.
    public func scaled(by factor: Int64) -> ResourceProfile {
        ResourceProfile(
            cpuMillis: cpuMillis * factor, taskHeapBytes: taskHeapBytes * factor, managedMemoryBytes: managedMemoryBytes * factor,
            networkMemoryBytes: networkMemoryBytes * factor, extended: extended.mapValues { $0 * factor })
    }

    /// Every dimension divided by `divisor`, rounded down (a default slot's equal share).
    public func divided(by divisor: Int64) -> ResourceProfile {
        precondition(divisor > 0)
        return ResourceProfile(
            cpuMillis: cpuMillis / divisor, taskHeapBytes: taskHeapBytes / divisor, managedMemoryBytes: managedMemoryBytes / divisor,
            networkMemoryBytes: networkMemoryBytes / divisor, extended: extended.mapValues { $0 / divisor })
    }

    public var description: String {
        let parts = dimensions.filter { $0.1 != 0 }.map { "\($0.0) \($0.0.format($0.1))" }
        return parts.isEmpty ? "nothing" : parts.joined(separator: ", ")
    }
}
