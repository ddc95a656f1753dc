/// Latency figures as every benchmark prints them: `{ "min", "median", "p99", "max" }`.
public struct LatencySummary: Codable, Sendable, Hashable {
    public var min: Double
    public var median: Double
    public var p99: Double
    public var max: Double

    /// Summarizes `samples` (nearest-rank percentiles); all zero when there are none.
    public init(_ samples: [Double]) {
        let sorted = samples.sorted()
        func rank(_ fraction: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let index = Int((fraction * Double(sorted.count)).rounded(.up)) - 1
            return sorted[Swift.max(0, Swift.min(sorted.count - 1, index))]
        }
        min = sorted.first ?? 0
        median = rank(0.5)
        p99 = rank(0.99)
        max = sorted.last ?? 0
    }

    /// `min / median / p99 / max` with `decimals` decimals.
    public func formatted(decimals: Int = 2) -> String {
        [min, median, p99, max].map { String(format: "%.\(decimals)f", $0) }.joined(separator: " / ")
    }
}

import Foundation
