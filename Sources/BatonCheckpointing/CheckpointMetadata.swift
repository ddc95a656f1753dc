import Crypto
public import BatonCore
public import BatonExecutionGraph
public import BatonJobGraph

/// Where one task's snapshot of one checkpoint lies: its file, its size and its CRC-32C, so that a
/// restore can tell a damaged or foreign file from the one that was acknowledged.
public struct StateHandle: Hashable, Sendable {
    public var path: String
    public var size: UInt64
    public var checksum: UInt32

    public init(path: String, size: UInt64, checksum: UInt32) {
        self.path = path
        self.size = size
        self.checksum = checksum
    }
}

/// A checkpoint every task acknowledged (a savepoint is one taken on demand): what a job restores
/// from. This is the metadata the store keeps, fenced, for the retained checkpoints, and what a
/// savepoint's `_metadata` file holds.
public struct CompletedCheckpoint: Hashable, Sendable {
    /// A job vertex as the checkpoint saw it, so that a restore can check the job still matches.
    public struct Vertex: Hashable, Sendable {
        public var index: Int
        public var id: JobVertexID
        public var parallelism: Int
        public init(index: Int, id: JobVertexID, parallelism: Int) {
            self.index = index
            self.id = id
            self.parallelism = parallelism
        }
    }

    public var job: JobID
    public var id: CheckpointID
    public var isSavepoint: Bool
    public var triggeredAt: WallTime
    public var completedAt: WallTime
    /// From the trigger to the last acknowledgement.
    public var duration: Duration
    /// The folder that holds the checkpoint's files.
    public var directory: String
    public var vertices: [Vertex]
    /// Every task's state, by subtask.
    public var states: [ExecutionVertexID: StateHandle]

    public init(
        job: JobID, id: CheckpointID, isSavepoint: Bool, triggeredAt: WallTime, completedAt: WallTime, duration: Duration, directory: String,
        vertices: [Vertex], states: [ExecutionVertexID: StateHandle]
    ) {
        self.job = job
        self.id = id
        self.isSavepoint = isSavepoint
        self.triggeredAt = triggeredAt
        self.completedAt = completedAt
        self.duration = duration
        self.directory = directory
        self.vertices = vertices
        self.states = states
    }

    /// The bytes of every task's state; UInt64.max when they add up to more (sizes come from
    /// task executors' acknowledgements and stored metadata, which nothing bounds).
    public var size: UInt64 {
        states.values.reduce(0) { total, state in
            let (sum, overflow) = total.addingReportingOverflow(state.size)
            return overflow ? .max : sum
        }
    }

    /// The problems that keep `jobGraph` from restoring this checkpoint (vertices missing or
    /// rescaled), one sentence each; empty when it can.
    public func mismatches(with jobGraph: JobGraph) -> [String] {
        var problems: [String] = []
        for vertex in vertices {
            guard let current = jobGraph.vertex(vertex.id) else {
                problems.append("the job has no vertex '\(vertex.id)', which the checkpoint holds state for")
                continue
            }
            if current.parallelism != vertex.parallelism {
                problems.append(
                    "vertex '\(vertex.id)' has parallelism \(current.parallelism), the checkpoint was taken at \(vertex.parallelism)")
            }
        }
        for vertex in jobGraph.vertices where !vertices.contains(where: { $0.id == vertex.id }) {
            problems.append("vertex '\(vertex.id)' is not in the checkpoint")
        }
        return problems
    }

    /// The state of `subtask` of the vertex named `id` (the vertex may have another index in a
    /// job restored from a savepoint).
    public func state(of id: JobVertexID, subtask: Int) -> StateHandle? {
        guard let vertex = vertices.first(where: { $0.id == id }) else { return nil }
        return states[ExecutionVertexID(jobVertex: vertex.index, subtask: subtask)]
    }
}

/// The binary form of `CompletedCheckpoint` (a format byte first; the store checksums values, a
/// savepoint file adds its own magic and checksum).
public enum CompletedCheckpointCodec {
    static let format: UInt8 = 1
    /// The first bytes of a savepoint's `_metadata` file.
    public static let fileMagic: [UInt8] = Array("BATONSP2".utf8)

    public static func encode(_ checkpoint: CompletedCheckpoint) -> [UInt8] {
        var writer = BinaryWriter(capacity: 128 + checkpoint.states.count * 64)
        writer.write(format)
        writer.write(checkpoint.job.rawValue)
        writer.write(checkpoint.id.rawValue)
        writer.write(checkpoint.isSavepoint)
        writer.write(signed: checkpoint.triggeredAt.millisecondsSince1970)
        writer.write(signed: checkpoint.completedAt.millisecondsSince1970)
        writer.write(signed: checkpoint.duration.nanosecondsClamped)
        writer.write(checkpoint.directory)
        writer.write(UInt64(checkpoint.vertices.count))
        for vertex in checkpoint.vertices {
            writer.write(UInt64(vertex.index))
            writer.write(vertex.id.rawValue)
            writer.write(UInt64(vertex.parallelism))
        }
        writer.write(UInt64(checkpoint.states.count))
        for key in checkpoint.states.keys.sorted() {
            let handle = checkpoint.states[key]!
            writer.write(UInt64(key.jobVertex))
            writer.write(UInt64(key.subtask))
            writer.write(handle.path)
            writer.write(handle.size)
            writer.write(UInt64(handle.checksum))
        }
        return writer.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> CompletedCheckpoint {
        var reader = BinaryReader(bytes)
        let version = try reader.readByte()
        guard version == format else { throw BinaryDecodingError(offset: 0, problem: "checkpoint metadata format \(version) is not \(format)") }
        func identifier<Kind>(_ text: String, _ what: String) throws -> TypedIdentifier<Kind> {
            guard let id = TypedIdentifier<Kind>(rawValue: text) else { throw BinaryDecodingError(offset: reader.offset, problem: "'\(text)' is not a valid \(what)") }
            return id
        }
        let job: JobID = try identifier(try reader.readString(), "job id")
        let id = CheckpointID(rawValue: try reader.readUInt64())
        let isSavepoint = try reader.readBool()
        let triggeredAt = WallTime(millisecondsSince1970: try reader.readInt64())
        let completedAt = WallTime(millisecondsSince1970: try reader.readInt64())
        let duration = Duration.nanoseconds(try reader.readInt64())
        let directory = try reader.readString()
        let vertexCount = try reader.readUInt64()
        guard vertexCount <= UInt64(bytes.count) else { throw BinaryDecodingError(offset: reader.offset, problem: "\(vertexCount) vertices") }
        var vertices: [CompletedCheckpoint.Vertex] = []
        func small(_ value: UInt64, _ what: String) throws -> Int {
            guard let number = Int32(exactly: value) else { throw BinaryDecodingError(offset: reader.offset, problem: "\(what) \(value) is out of range") }
            return Int(number)
        }
        for _ in 0..<vertexCount {
            let index = try small(try reader.readUInt64(), "vertex index")
            let vertexID: JobVertexID = try identifier(try reader.readString(), "vertex id")
            vertices.append(.init(index: index, id: vertexID, parallelism: try small(try reader.readUInt64(), "parallelism")))
        }
        let stateCount = try reader.readUInt64()
        guard stateCount <= UInt64(bytes.count) else { throw BinaryDecodingError(offset: reader.offset, problem: "\(stateCount) task states") }
        var states: [ExecutionVertexID: StateHandle] = [:]
        for _ in 0..<stateCount {
            let vertex = try small(try reader.readUInt64(), "vertex index")
            let subtask = try small(try reader.readUInt64(), "subtask")
            let path = try reader.readString()
            let size = try reader.readUInt64()
            let checksum = UInt32(truncatingIfNeeded: try reader.readUInt64())
            states[ExecutionVertexID(jobVertex: vertex, subtask: subtask)] = StateHandle(path: path, size: size, checksum: checksum)
        }
        guard reader.isAtEnd else { throw BinaryDecodingError(offset: reader.offset, problem: "trailing bytes after the checkpoint metadata") }
        return CompletedCheckpoint(
            job: job, id: id, isSavepoint: isSavepoint, triggeredAt: triggeredAt, completedAt: completedAt, duration: duration,
            directory: directory, vertices: vertices, states: states)
    }

    /// A savepoint's `_metadata` file: the magic, the metadata, and an HMAC-SHA256 of both under
    /// the cluster's key (`rpc.secret`), so that only a member of this cluster can write one a
    /// leader will act on (a restore renames and deletes files the metadata names).
    public static func encodeFile(_ checkpoint: CompletedCheckpoint, key: [UInt8]) -> [UInt8] {
        var writer = BinaryWriter(capacity: 256)
        for byte in fileMagic { writer.write(byte) }
        writer.write(bytes: encode(checkpoint))
        var bytes = writer.bytes
        bytes += Array(HMAC<SHA256>.authenticationCode(for: bytes, using: SymmetricKey(data: key)))
        return bytes
    }

    /// The savepoint in a `_metadata` file, after its HMAC is verified under `key`: nothing of
    /// the metadata is read from a file that was not written by a member of this cluster, or was
    /// changed since.
    public static func decodeFile(_ bytes: [UInt8], key: [UInt8]) throws -> CompletedCheckpoint {
        guard bytes.count > fileMagic.count, Array(bytes.prefix(fileMagic.count)) == fileMagic else {
            if bytes.starts(with: Array("BATONSP1".utf8)) {
                throw BinaryDecodingError(offset: 0, problem: "an unsigned savepoint of an older Baton (BATONSP1): take a new savepoint")
            }
            throw BinaryDecodingError(offset: 0, problem: "not a Baton savepoint metadata file (no \(String(decoding: fileMagic, as: UTF8.self)) header)")
        }
        let macLength = SHA256.byteCount
        guard bytes.count >= fileMagic.count + macLength else {
            throw BinaryDecodingError(offset: fileMagic.count, problem: "the file ends before its signature")
        }
        let signed = bytes.dropLast(macLength)
        guard HMAC<SHA256>.isValidAuthenticationCode(bytes.suffix(macLength), authenticating: signed, using: SymmetricKey(data: key)) else {
            throw BinaryDecodingError(
                offset: signed.count, problem: "the signature does not match: the file was changed, or written by another cluster (another rpc.secret)")
        }
        var reader = BinaryReader(Array(signed.dropFirst(fileMagic.count)))
        let body = try reader.readBytes()
        guard reader.isAtEnd else { throw BinaryDecodingError(offset: reader.offset, problem: "trailing bytes after the metadata") }
        return try decode(body)
    }
}
