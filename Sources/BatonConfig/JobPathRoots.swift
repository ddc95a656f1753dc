public import BatonJobGraph
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The folders a job may read from and write to (`jobs.allowedPaths`): every path a job spec
/// names (a source's file, a sink's folder) and every savepoint it starts from must resolve,
/// after symlinks and `..`, inside one of them. A leader checks a job when it is submitted,
/// before anything of it runs.
public struct JobPathRoots: Sendable, Hashable, CustomStringConvertible {
    /// The roots, resolved.
    public let roots: [String]

    /// The roots `paths` name (absolute), resolved now.
    public init(_ paths: [String]) {
        var seen: [String] = []
        for path in paths.map(Self.resolve) where !seen.contains(path) { seen.append(path) }
        roots = seen
    }

    public var description: String { roots.joined(separator: ", ") }

    /// `path` (absolute) with every symlink of its existing part followed and every `.` and
    /// `..` applied in order (a `..` after a symlink leaves the symlink's target); the part that
    /// does not exist yet (a sink's folder before its first run) is taken as written.
    public static func resolve(_ path: String) -> String {
        var resolved = "/"
        var exists = true
        for component in path.split(separator: "/") {
            switch component {
            case ".": continue
            case "..": resolved = resolved == "/" ? "/" : (resolved as NSString).deletingLastPathComponent
            default:
                resolved = resolved == "/" ? "/" + component : resolved + "/" + component
                if exists, let real = realpath(resolved, nil) {
                    resolved = String(cString: real)
                    free(real)
                } else {
                    exists = false
                }
            }
        }
        return resolved
    }

    /// Whether `path` resolves inside a root (or is one).
    public func contains(_ path: String) -> Bool { contains(resolved: Self.resolve(path)) }

    private func contains(resolved: String) -> Bool {
        roots.contains { root in resolved == root || resolved.hasPrefix(root == "/" ? "/" : root + "/") }
    }

    /// A path outside the roots: what names it, the path, and the roots.
    public struct Refusal: Error, Sendable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// Checks every path parameter of every operator of `graph` (the catalog says which).
    public func check(_ graph: JobGraph, catalog: OperatorCatalog = .builtIn) throws(Refusal) {
        for vertex in graph.vertices {
            for spec in vertex.operators {
                for parameter in (catalog.entry(spec.name)?.paths ?? []).sorted() {
                    guard let path = spec.parameters[parameter] else { continue }
                    try check(path, named: "vertex '\(vertex.id)' \(spec.name) \(parameter)")
                }
            }
        }
    }

    /// Checks one path; `named` says what it is, for the refusal.
    public func check(_ path: String, named: String) throws(Refusal) {
        guard path.hasPrefix("/") else { throw Refusal(message: "\(named) '\(path)' is not an absolute path") }
        let resolved = Self.resolve(path)
        guard contains(resolved: resolved) else {
            throw Refusal(
                message: "\(named) \(path)\(resolved == path ? "" : " (resolves to \(resolved))") is outside the folders jobs may use: "
                    + "\(description) (jobs.allowedPaths)")
        }
    }
}

extension HAConfiguration {
    /// The roots a job submitted now may use: `jobs.allowedPaths`, or by default the config's
    /// folder and `specDirectory` (the folder of the spec file, when it came from one).
    public func jobPathRoots(specDirectory: String?) -> JobPathRoots {
        JobPathRoots(jobAllowedPaths ?? ([directory] + (specDirectory.map { [$0] } ?? [])))
    }

    /// The roots a savepoint to start from may lie in: the job roots, and the checkpoint and
    /// savepoint folders (where `baton savepoint` writes).
    public func savepointRoots(specDirectory: String?) -> JobPathRoots {
        JobPathRoots(jobPathRoots(specDirectory: specDirectory).roots + [checkpoints.directory, checkpoints.savepointDirectory])
    }
}
