public import BatonCore
public import BatonJobGraph

/// What a job's change records say beyond the graph they rebuild, folded in sequence order: how
/// many there were, the highest epoch that wrote one, the task restarts, and, for the audit's
/// I2 check, where each vertex's current attempt began and where the job's latest task failure
/// is. A snapshot keeps it, so that the records the snapshot replaces can go while the audit's
/// checks go on over the records after it exactly as over the whole log.
public struct ChangeLog: Hashable, Sendable {
    /// The sequence number of the next record (the records folded are 0..<next).
    public private(set) var next: UInt64
    /// The highest epoch among the records folded.
    public private(set) var highestEpoch: Epoch
    /// New attempts among the records folded (task restarts, all causes).
    public private(set) var resets: UInt64
    /// The latest task failure of the job, or new attempt of a finished task (its result was lost).
    private var lastFailure: UInt64?
    /// Where each vertex's current attempt began (its first record).
    private var began: [ExecutionVertexID: UInt64]
    /// The vertices whose last record says FINISHED.
    private var finished: Set<ExecutionVertexID>
    /// What the records folded showed (the first `maxKeptFindings`; `droppedFindings` more), so
    /// that a compaction never erases evidence.
    public private(set) var findings: [RecordedFinding]
    public private(set) var droppedFindings: UInt64
    public static let maxKeptFindings = 64

    public struct RecordedFinding: Hashable, Sendable {
        public var sequence: UInt64
        public var epoch: Epoch
        public var finding: Finding
        public init(sequence: UInt64, epoch: Epoch, finding: Finding) {
            self.sequence = sequence
            self.epoch = epoch
            self.finding = finding
        }
    }

    /// What a record shows about the writes before it.
    public enum Finding: Hashable, Sendable {
        /// Written at an older epoch than a record before it (a stale leader's write, I1).
        case staleWrite(highest: Epoch)
        /// A new attempt of a task with no task failure of the job since its attempt began (I2).
        case restartWithoutFailure(ExecutionVertexID)
    }

    /// A log that starts at `next`, with nothing known of records before.
    public init(next: UInt64 = 0) {
        self.next = next
        highestEpoch = .none
        resets = 0
        lastFailure = nil
        began = [:]
        finished = []
        findings = []
        droppedFindings = 0
    }

    /// Folds the record `sequence`, written at `epoch`; returns what it shows.
    @discardableResult
    public mutating func fold(sequence: UInt64, epoch: Epoch, _ change: ExecutionGraphChange) -> [Finding] {
        var findings: [Finding] = []
        if epoch < highestEpoch { findings.append(.staleWrite(highest: highestEpoch)) }
        highestEpoch = max(highestEpoch, epoch)
        switch change {
        case .state(let attempt, let state, _):
            if state == .failed { lastFailure = sequence }
            if began[attempt.vertex] == nil { began[attempt.vertex] = sequence }
            if state == .finished { finished.insert(attempt.vertex) } else { finished.remove(attempt.vertex) }
        case .reset(let vertex, _):
            resets += 1
            if finished.contains(vertex) {
                lastFailure = sequence
            } else if (lastFailure.map { $0 < began[vertex, default: 0] }) ?? true {
                findings.append(.restartWithoutFailure(vertex))
            }
            began[vertex] = sequence
            finished.remove(vertex)
        case .partitionsReleased:
            break
        }
        next = sequence + 1
        for finding in findings {
            if self.findings.count < Self.maxKeptFindings {
                self.findings.append(RecordedFinding(sequence: sequence, epoch: epoch, finding: finding))
            } else {
                droppedFindings += 1
            }
        }
        return findings
    }

    /// The log after records up to `next` that are not there to fold (a store missing records):
    /// the next record folded is `next`.
    public mutating func skip(to next: UInt64) { self.next = max(self.next, next) }

    static let format: UInt8 = 1

    func encode(into writer: inout BinaryWriter) {
        writer.write(Self.format)
        writer.write(next)
        writer.write(highestEpoch.rawValue)
        writer.write(resets)
        writer.write(lastFailure.map { $0 + 1 } ?? 0)
        writer.write(UInt64(began.count))
        for (vertex, sequence) in began.sorted(by: { $0.key < $1.key }) {
            writer.write(UInt64(vertex.jobVertex))
            writer.write(UInt64(vertex.subtask))
            writer.write(sequence)
        }
        writer.write(UInt64(finished.count))
        for vertex in finished.sorted() {
            writer.write(UInt64(vertex.jobVertex))
            writer.write(UInt64(vertex.subtask))
        }
        writer.write(UInt64(findings.count))
        for recorded in findings {
            writer.write(recorded.sequence)
            writer.write(recorded.epoch.rawValue)
            switch recorded.finding {
            case .staleWrite(let highest):
                writer.write(UInt8(0))
                writer.write(highest.rawValue)
            case .restartWithoutFailure(let vertex):
                writer.write(UInt8(1))
                writer.write(UInt64(vertex.jobVertex))
                writer.write(UInt64(vertex.subtask))
            }
        }
        writer.write(droppedFindings)
    }

    init(from reader: inout BinaryReader) throws {
        guard try reader.readByte() == Self.format else { throw ExecutionGraphError(message: "unknown change log format") }
        next = try reader.readUInt64()
        highestEpoch = Epoch(try reader.readUInt64())
        resets = try reader.readUInt64()
        let failure = try reader.readUInt64()
        lastFailure = failure == 0 ? nil : failure - 1
        func vertex() throws -> ExecutionVertexID {
            let jobVertex = try reader.readUInt64()
            let subtask = try reader.readUInt64()
            guard jobVertex <= UInt64(Int32.max), subtask <= UInt64(Int32.max) else {
                throw ExecutionGraphError(message: "number out of range in a change log")
            }
            return ExecutionVertexID(jobVertex: Int(jobVertex), subtask: Int(subtask))
        }
        // Each entry is read before the next (a corrupt count ends at the end of the bytes).
        began = [:]
        for _ in 0..<(try reader.readUInt64()) { began[try vertex()] = try reader.readUInt64() }
        finished = []
        for _ in 0..<(try reader.readUInt64()) { finished.insert(try vertex()) }
        findings = []
        for _ in 0..<(try reader.readUInt64()) {
            let sequence = try reader.readUInt64()
            let epoch = Epoch(try reader.readUInt64())
            let finding: Finding
            switch try reader.readByte() {
            case 0: finding = .staleWrite(highest: Epoch(try reader.readUInt64()))
            case 1: finding = .restartWithoutFailure(try vertex())
            case let kind: throw ExecutionGraphError(message: "unknown finding kind \(kind) in a change log")
            }
            findings.append(RecordedFinding(sequence: sequence, epoch: epoch, finding: finding))
        }
        droppedFindings = try reader.readUInt64()
    }
}

/// A compact image of a job's ExecutionGraph after its change records `0..<log.next`, with what
/// those records said beyond the graph (`log`): a new leader rebuilds the graph from the JobGraph,
/// this and the records after it. The leader writes one every so many records and deletes the
/// records it covers in the same fenced transaction.
public struct ExecutionGraphSnapshot: Hashable, Sendable {
    public var log: ChangeLog
    /// `ExecutionGraphCodec.snapshot` of the graph.
    public var executions: [UInt8]

    public init(_ graph: ExecutionGraph, log: ChangeLog) {
        self.log = log
        executions = ExecutionGraphCodec.snapshot(graph)
    }

    /// The graph of `jobGraph` this snapshot holds.
    public func restore(_ jobGraph: JobGraph) throws -> ExecutionGraph {
        try ExecutionGraphCodec.restore(jobGraph, snapshot: executions)
    }

    static let format: UInt8 = 1

    public func encoded() -> [UInt8] {
        var writer = BinaryWriter(capacity: executions.count + 64)
        writer.write(Self.format)
        log.encode(into: &writer)
        writer.write(bytes: executions)
        return writer.bytes
    }

    public init(decoding bytes: [UInt8]) throws {
        var reader = BinaryReader(bytes)
        do {
            guard try reader.readByte() == Self.format else { throw ExecutionGraphError(message: "unknown snapshot format") }
            log = try ChangeLog(from: &reader)
            executions = try reader.readBytes()
        } catch let error as ExecutionGraphError {
            throw error
        } catch {
            throw ExecutionGraphError(message: "snapshot does not decode: \(error)")
        }
        guard reader.isAtEnd else { throw ExecutionGraphError(message: "snapshot has trailing bytes") }
    }
}
