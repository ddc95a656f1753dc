import BatonCore

/// The faults the chaos tool injects.
public enum FaultKind: String, Codable, Sendable, CaseIterable {
    /// kill -9 of the current leader.
    case kill
    /// SIGSTOP of the leader past its lease, then SIGCONT.
    case stop
    /// kill -9 of a standby.
    case standbyKill = "standby-kill"
    /// kill -9 of a task executor (task failover mixed in).
    case teKill = "te-kill"
    /// Another process holds the store's write lock for a while (file stores).
    case storeStall = "store-stall"
    /// Every process of one host killed (its group, master, task executor and etcd member); the
    /// host then starts again.
    case hostKill = "host-kill"
    /// Every process of one host stopped past the lease, then continued.
    case hostStop = "host-stop"
    /// One host's links cut past the lease (its processes live on, alone), then restored.
    case partition

    /// Whether the fault hits the master group only (it must restart no task). Faults of whole
    /// hosts and links hit task executors too.
    public var isMasterFault: Bool { ![.teKill, .hostKill, .hostStop, .partition].contains(self) }

    /// Whether the fault needs a config that places members on hosts.
    public var needsHosts: Bool { [.hostKill, .hostStop, .partition].contains(self) }

    /// The kinds a run injects when none are named: on hosts, the faults of hosts and links
    /// instead of the store stall (which holds a file store's lock).
    public static func defaults(onHosts: Bool) -> [FaultKind] {
        onHosts ? [.kill, .stop, .standbyKill, .teKill, .hostKill, .hostStop, .partition] : [.kill, .stop, .standbyKill, .teKill, .storeStall]
    }
}

/// The schedule of a chaos run, drawn from a seed: the same seed gives the same faults, at the
/// same delays, against the same choice of targets.
public struct ChaosPlan: Sendable, Hashable {
    public struct Fault: Sendable, Hashable {
        /// Wait this long after the previous fault settled.
        public var delay: Duration
        public var kind: FaultKind
        /// Picks the target among the candidates when the fault happens (`pick % count`).
        public var pick: UInt64
    }

    public var seed: UInt64
    public var faults: [Fault]

    /// `count` faults of `kinds`, each after a delay drawn from `interval`. Coverage: when
    /// `count` is at least the number of distinct kinds, every kind is drawn at least once (the
    /// kinds are dealt once each, the rest drawn at random, and the whole list shuffled, all
    /// from the seed).
    public init(seed: UInt64, kinds: [FaultKind], count: Int, interval: ClosedRange<Duration>) {
        precondition(!kinds.isEmpty && count >= 0)
        var random = SeededRandom(seed: seed)
        let low = interval.lowerBound.nanosecondsClamped
        let span = UInt64(max(0, interval.upperBound.nanosecondsClamped - low))
        self.seed = seed
        var distinct: [FaultKind] = []
        for kind in kinds where !distinct.contains(kind) { distinct.append(kind) }
        var drawn = count >= distinct.count ? distinct : []
        while drawn.count < count { drawn.append(distinct[Int(random.next() % UInt64(distinct.count))]) }
        for index in stride(from: drawn.count - 1, to: 0, by: -1) {
            drawn.swapAt(index, Int(random.next() % UInt64(index + 1)))
        }
        faults = drawn.map { kind in
            let delay = Duration.nanoseconds(low + Int64(span == 0 ? 0 : random.next() % (span + 1)))
            return Fault(delay: delay, kind: kind, pick: random.next())
        }
    }

    /// Parses `2s-5s` (or one duration).
    public static func interval(_ text: String) -> ClosedRange<Duration>? {
        let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let first = parts.first, let low = DurationText.parse(first) else { return nil }
        let high = parts.count == 2 ? DurationText.parse(parts[1]) : low
        guard let high, high >= low, low >= .zero else { return nil }
        return low...high
    }

    /// Parses `kill,stop,...`.
    public static func kinds(_ text: String) -> [FaultKind]? {
        let kinds = text.split(separator: ",").map { FaultKind(rawValue: String($0).trimmingCharacters(in: .whitespaces)) }
        guard !kinds.isEmpty, kinds.allSatisfy({ $0 != nil }) else { return nil }
        return kinds.map { $0! }
    }
}

import Foundation
