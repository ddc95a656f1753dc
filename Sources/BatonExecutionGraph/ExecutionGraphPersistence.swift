import BatonCore
public import BatonJobGraph

/// The compact binary forms of an ExecutionGraph: a snapshot of every attempt, and change
/// records. A new leader rebuilds the graph from the JobGraph, the last snapshot and the changes
/// written after it, and gets exactly the graph the old leader had.
public enum ExecutionGraphCodec {
    /// 2: with a byte of flags per attempt (1: its blocking results were released).
    static let snapshotFormat: UInt8 = 2
    static let changeFormat: UInt8 = 1

    /// Every vertex's attempt, state and location; task executor names are written once.
    public static func snapshot(_ graph: ExecutionGraph) -> [UInt8] {
        var writer = BinaryWriter(capacity: graph.vertexCount * 4 + 64)
        writer.write(snapshotFormat)
        writer.write(UInt64(graph.vertexCount))
        var names: [ResourceID: Int] = [:]
        var table: [ResourceID] = []
        for execution in graph.executionsInOrder {
            if let location = execution.location, names[location.taskExecutor] == nil {
                names[location.taskExecutor] = table.count
                table.append(location.taskExecutor)
            }
        }
        writer.write(UInt64(table.count))
        for name in table { writer.write(name.rawValue) }
        for execution in graph.executionsInOrder {
            writer.write(UInt64(execution.attempt))
            writer.write(execution.state.rawValue)
            writer.write(UInt8(execution.partitionsReleased ? 1 : 0))
            if let location = execution.location {
                writer.write(UInt64(names[location.taskExecutor]! + 1))
                writer.write(location.allocation.rawValue)
            } else {
                writer.write(UInt64(0))
            }
        }
        return writer.bytes
    }

    /// The graph of `jobGraph` with the attempts of `snapshot`.
    public static func restore(_ jobGraph: JobGraph, snapshot: [UInt8]) throws -> ExecutionGraph {
        var graph = ExecutionGraph(jobGraph: jobGraph)
        var reader = BinaryReader(snapshot)
        let format = try reader.readByte()
        guard format == 1 || format == snapshotFormat else { throw ExecutionGraphError(message: "unknown snapshot format \(format)") }
        let count = try reader.readUInt64()
        guard count == UInt64(graph.vertexCount) else {
            throw ExecutionGraphError(message: "snapshot has \(count) vertices, the job graph \(graph.vertexCount)")
        }
        let nameCount = try reader.readUInt64()
        // Each name takes one byte at least: a larger count is corrupt, and must not size an array.
        guard nameCount <= UInt64(reader.bytes.count - reader.offset) else {
            throw ExecutionGraphError(message: "snapshot names \(nameCount) task executors, more than its \(snapshot.count) bytes hold")
        }
        let names = try (0..<nameCount).map { _ in try identifier(reader.readString()) }
        var executions: [Execution] = []
        executions.reserveCapacity(graph.vertexCount)
        for _ in 0..<count {
            let attempt = try reader.readUInt64()
            guard let state = ExecutionState(rawValue: try reader.readByte()), attempt <= UInt64(Int32.max) else {
                throw ExecutionGraphError(message: "snapshot holds an invalid attempt")
            }
            let flags = format == 1 ? 0 : try reader.readByte()
            guard flags <= 1, flags == 0 || state == .finished else { throw ExecutionGraphError(message: "snapshot holds invalid attempt flags") }
            var location: TaskLocation?
            let name = try reader.readUInt64()
            if name > 0 {
                guard name <= UInt64(names.count) else { throw ExecutionGraphError(message: "snapshot names an unknown task executor") }
                location = TaskLocation(taskExecutor: names[Int(name) - 1], allocation: AllocationID(rawValue: try reader.readUInt64()))
            }
            executions.append(Execution(attempt: Int32(attempt), state: state, location: location, partitionsReleased: flags == 1))
        }
        guard reader.isAtEnd else { throw ExecutionGraphError(message: "snapshot has trailing bytes") }
        graph.restore(executions)
        return graph
    }

    public static func encode(_ change: ExecutionGraphChange) -> [UInt8] {
        var writer = BinaryWriter(capacity: 24)
        writer.write(changeFormat)
        switch change {
        case .state(let attempt, let state, let location):
            writer.write(UInt8(0))
            writer.write(UInt64(attempt.vertex.jobVertex))
            writer.write(UInt64(attempt.vertex.subtask))
            writer.write(UInt64(attempt.attempt))
            writer.write(state.rawValue)
            writer.write(location != nil)
            if let location {
                writer.write(location.taskExecutor.rawValue)
                writer.write(location.allocation.rawValue)
            }
        case .reset(let vertex, let attempt):
            writer.write(UInt8(1))
            writer.write(UInt64(vertex.jobVertex))
            writer.write(UInt64(vertex.subtask))
            writer.write(UInt64(attempt))
        case .partitionsReleased(let attempt):
            writer.write(UInt8(2))
            writer.write(UInt64(attempt.vertex.jobVertex))
            writer.write(UInt64(attempt.vertex.subtask))
            writer.write(UInt64(attempt.attempt))
        }
        return writer.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> ExecutionGraphChange {
        var reader = BinaryReader(bytes)
        guard try reader.readByte() == changeFormat else { throw ExecutionGraphError(message: "unknown change format") }
        func int32() throws -> Int32 {
            let value = try reader.readUInt64()
            guard value <= UInt64(Int32.max) else { throw ExecutionGraphError(message: "number out of range in a change") }
            return Int32(value)
        }
        let kind = try reader.readByte()
        let vertex = ExecutionVertexID(jobVertex: Int(try int32()), subtask: Int(try int32()))
        let attempt = try int32()
        let change: ExecutionGraphChange
        switch kind {
        case 0:
            guard let state = ExecutionState(rawValue: try reader.readByte()) else {
                throw ExecutionGraphError(message: "invalid state in a change")
            }
            var location: TaskLocation?
            if try reader.readBool() {
                location = TaskLocation(taskExecutor: try identifier(reader.readString()), allocation: AllocationID(rawValue: try reader.readUInt64()))
            }
            change = .state(ExecutionAttemptID(vertex: vertex, attempt: attempt), state, location)
        case 1:
            change = .reset(vertex, attempt)
        case 2:
            change = .partitionsReleased(ExecutionAttemptID(vertex: vertex, attempt: attempt))
        default:
            throw ExecutionGraphError(message: "unknown change kind \(kind)")
        }
        guard reader.isAtEnd else { throw ExecutionGraphError(message: "change has trailing bytes") }
        return change
    }

    private static func identifier(_ text: String) throws -> ResourceID {
        guard let id = ResourceID(rawValue: text) else { throw ExecutionGraphError(message: "'\(text)' is not a valid id") }
        return id
    }
}
