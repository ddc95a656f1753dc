import BatonFiles
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A key in a file of its own, made once, readable by its owner alone, never in a config that is
/// shared or committed: the cluster's secret (`rpc.secretFile`) and the REST API's bearer token
/// (`rest.tokenFile`).
public enum SecretFile {
    /// What a new secret file holds: 32 random bytes, written as 64 hex digits and a newline.
    static let randomBytes = 32

    /// The config keys that name such a file.
    public enum Kind: CaseIterable, Sendable {
        /// `rpc.secretFile`: the key both ends of an RPC connection prove they know.
        case clusterSecret
        /// `rest.tokenFile`: the bearer token REST requests that change the cluster carry.
        case restToken

        var keyPath: (section: String, key: String) {
            switch self {
            case .clusterSecret: ("rpc", "secretFile")
            case .restToken: ("rest", "tokenFile")
            }
        }

        public var name: String {
            switch self {
            case .clusterSecret: "the cluster's secret file"
            case .restToken: "the REST token file"
            }
        }
    }

    /// Creates every such file the config at `configPath` names and that does not exist yet.
    ///
    /// - Returns: each named file, its kind, and whether it was created now.
    public static func ensureAll(forConfig configPath: String) throws -> [(kind: Kind, path: String, created: Bool)] {
        try Kind.allCases.compactMap { kind in try ensure(forConfig: configPath, kind).map { (kind, $0.path, $0.created) } }
    }

    /// Creates the file of `kind` the config at `configPath` names when it does not exist: 32
    /// random bytes from the system's generator, mode 0600, synced, in a folder created 0700 when
    /// missing. Never replaces an existing file.
    ///
    /// - Returns: the file's path and whether it was created now; nil when the config names no
    ///   such file (an inline `rpc.secret`; no `rest.tokenFile`).
    public static func ensure(forConfig configPath: String, _ kind: Kind = .clusterSecret) throws -> (path: String, created: Bool)? {
        let file = HAConfiguration.absolutePath(configPath, relativeTo: FileManager.default.currentDirectoryPath)
        let root = try YAMLValue.load(path: file)
        guard let section = try root.anyMapping().first(where: { $0.0 == kind.keyPath.section })?.1,
            let value = try section.anyMapping().first(where: { $0.0 == kind.keyPath.key })?.1
        else { return nil }
        let path = HAConfiguration.absolutePath(try value.nonEmptyString(), relativeTo: (file as NSString).deletingLastPathComponent)
        if FileManager.default.fileExists(atPath: path) { return (path, false) }
        try create(at: path, from: value)
        return (path, true)
    }

    private static func create(at path: String, from value: YAMLValue) throws {
        do { try create(at: path) } catch { throw value.error(error.message) }
    }

    /// Why a secret file could not be made.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let message: String
        public var description: String { message }
    }

    /// Writes a new secret file at `path` (see `ensure`); a file already there is left as it is.
    public static func create(at path: String) throws(Failure) {
        let folder = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw Failure(message: "cannot create the folder of the secret file \(path): \(error.localizedDescription)")
        }
        var random = SystemRandomNumberGenerator()
        let bytes = (0..<randomBytes).map { _ in UInt8.random(in: 0...255, using: &random) }
        let text = Array((bytes.map { String(format: "%02x", $0) }.joined() + "\n").utf8)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST { return }  // another process made it meanwhile: that one is the secret
            throw Failure(message: "cannot create the secret file \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        // The mode given to open is masked by the umask; make it exactly 0600.
        fchmod(fd, 0o600)
        let written = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == text.count, fsync(fd) == 0 else {
            unlink(path)
            throw Failure(message: "cannot write the secret file \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// The secret in `path`, refused when the file is missing, readable or writable by group or
    /// others, or too short; every message names the file and how to fix it, never the secret.
    static func read(_ path: String, value: YAMLValue, configFile: String) throws -> [UInt8] {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT {
                throw value.error(
                    "the secret file \(path) does not exist: `baton init --config \(configFile)` creates it (so does `baton group`)")
            }
            throw value.error("cannot read the secret file \(path): \(String(cString: strerror(errno)))")
        }
        if let problem = DurableFiles.othersMayAccess(path, what: "secret file") { throw value.error(problem) }
        guard let data = FileManager.default.contents(atPath: path) else { throw value.error("cannot read the secret file \(path)") }
        var secret = Array(data)
        while secret.last == 0x0A || secret.last == 0x0D { secret.removeLast() }
        return secret
    }
}
