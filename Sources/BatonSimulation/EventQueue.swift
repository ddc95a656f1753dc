/// A min-heap of timed events; events at the same time come out in the order they were pushed,
/// so that a simulation run depends only on its seed.
struct EventQueue<Event: Sendable>: Sendable {
    private var heap: [(time: UInt64, sequence: UInt64, event: Event)] = []
    private var sequence: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    /// When the next event is due.
    var peekTime: UInt64? { heap.first?.time }

    mutating func push(_ event: Event, at time: UInt64) {
        sequence += 1
        heap.append((time, sequence, event))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard less(child, parent) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (time: UInt64, event: Event)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count && less(left, smallest) { smallest = left }
            if right < heap.count && less(right, smallest) { smallest = right }
            if smallest == parent { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        return (top.time, top.event)
    }

    private func less(_ a: Int, _ b: Int) -> Bool {
        heap[a].time != heap[b].time ? heap[a].time < heap[b].time : heap[a].sequence < heap[b].sequence
    }
}
