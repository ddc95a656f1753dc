public import BatonCore

/// Barrier alignment of a task with several input channels, as a pure state machine.
///
/// A channel that delivered the barrier of checkpoint n is held (its reader waits, so its later
/// records stay behind the barrier) until every channel that has not ended delivered barrier n:
/// then the task snapshots its state, forwards the barrier and releases them all. A barrier of a
/// newer checkpoint while aligning an older one abandons the older (it was aborted or a source
/// never received it); a barrier older than the one being aligned, or already aligned, is stale
/// and its channel is released at once.
public struct BarrierAligner: Sendable {
    public struct Step: Equatable, Sendable {
        /// The checkpoint whose barrier arrived on every channel: snapshot and forward it now.
        public var aligned: CheckpointID?
        /// A checkpoint whose alignment was given up.
        public var abandoned: CheckpointID?
        /// The channels whose readers may go on.
        public var release: [Int]

        public init(aligned: CheckpointID? = nil, abandoned: CheckpointID? = nil, release: [Int] = []) {
            self.aligned = aligned
            self.abandoned = abandoned
            self.release = release
        }
    }

    public let channels: Int
    private var ended: Set<Int> = []
    private var current: CheckpointID?
    private var lastAligned: CheckpointID = 0
    private var held: Set<Int> = []

    public init(channels: Int) { self.channels = channels }

    /// The checkpoint being aligned, if any.
    public var aligning: CheckpointID? { current }

    /// Channel `channel` delivered the barrier of checkpoint `id` (its reader now waits).
    public mutating func barrier(_ id: CheckpointID, channel: Int) -> Step {
        if id <= lastAligned || (current.map { id < $0 } ?? false) {
            return Step(release: [channel])
        }
        var step = Step()
        if let aligning = current, id > aligning {
            step.abandoned = aligning
            step.release = held.sorted()
            held.removeAll()
        }
        current = id
        held.insert(channel)
        return complete(step)
    }

    /// Channel `channel` ended: it no longer holds back an alignment.
    public mutating func channelEnded(_ channel: Int) -> Step {
        ended.insert(channel)
        held.remove(channel)
        return complete(Step())
    }

    private mutating func complete(_ step: Step) -> Step {
        guard let aligning = current, held.count + ended.count >= channels else { return step }
        var step = step
        step.aligned = aligning
        step.release += held.sorted()
        held.removeAll()
        lastAligned = aligning
        current = nil
        return step
    }
}
