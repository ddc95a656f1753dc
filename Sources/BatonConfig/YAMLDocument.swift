public import BatonCore
import Foundation
import Yams

/// Strict reading of a YAML document: every mapping lists the keys it allows, so an unknown key is
/// an error naming its path; every value is read as one expected type, with errors naming the
/// file, the key path and the line. Shared by ha-configs and job specs.
public struct YAMLValue {
    let node: Node
    /// The path of this value in the document (`store.path`, `masters[0].id`).
    public let keyPath: String
    public let file: String

    /// Parses `text` (the contents of `file`) into its root value.
    public static func parse(_ text: String, file: String) throws -> YAMLValue {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigError(.syntax, file: file, keyPath: "", line: YAMLValue.line(of: error), "invalid YAML: \(error)")
        } catch {
            throw ConfigError(.syntax, file: file, keyPath: "", "invalid YAML: \(error)")
        }
        guard let root else { throw ConfigError(.badValue, file: file, keyPath: "", "the document is empty") }
        return YAMLValue(node: root, keyPath: "", file: file)
    }

    /// Reads and parses the file at `path`.
    public static func load(path: String) throws -> YAMLValue {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ConfigError(.unreadable, file: path, keyPath: "", "cannot read the file: \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(.unreadable, file: path, keyPath: "", "the file is not UTF-8 text")
        }
        return try parse(text, file: path)
    }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        default:
            return nil
        }
    }

    public var line: Int? { node.mark?.line }

    public func error(_ message: String, code: ConfigError.Code = .badValue) -> ConfigError {
        ConfigError(code, file: file, keyPath: keyPath, line: line, message)
    }

    /// A mapping that may hold only `allowed` keys.
    public func mapping(allowing allowed: [String]) throws -> YAMLMapping {
        guard case .mapping(let mapping) = node else { throw error("expected a mapping of keys to values") }
        var entries: [String: YAMLValue] = [:]
        for (keyNode, valueNode) in mapping {
            guard case .scalar(let scalar) = keyNode else { throw error("keys must be plain words") }
            let key = scalar.string
            let path = keyPath.isEmpty ? key : "\(keyPath).\(key)"
            guard allowed.contains(key) else {
                throw ConfigError(
                    .unknownKey, file: file, keyPath: path, line: keyNode.mark?.line,
                    "unknown key '\(key)' (allowed here: \(allowed.joined(separator: ", ")))")
            }
            guard entries[key] == nil else {
                throw ConfigError(.badValue, file: file, keyPath: path, line: keyNode.mark?.line, "key given twice")
            }
            entries[key] = YAMLValue(node: valueNode, keyPath: path, file: file)
        }
        return YAMLMapping(entries: entries, owner: self)
    }

    /// Every key of a mapping whose keys are open-ended names (extended resources), in document order.
    public func anyMapping() throws -> [(String, YAMLValue)] {
        guard case .mapping(let mapping) = node else { throw error("expected a mapping of names to values") }
        var entries: [(String, YAMLValue)] = []
        for (keyNode, valueNode) in mapping {
            guard case .scalar(let scalar) = keyNode else { throw error("keys must be plain words") }
            let key = scalar.string
            guard !entries.contains(where: { $0.0 == key }) else { throw error("key '\(key)' given twice") }
            entries.append((key, YAMLValue(node: valueNode, keyPath: keyPath.isEmpty ? key : "\(keyPath).\(key)", file: file)))
        }
        return entries
    }

    /// A resource profile: `{ cpu: 0.5, taskHeap: 256MiB, managed: 0, network: 32MiB, extended: { gpu: 1 } }`.
    public func resourceProfile() throws -> ResourceProfile {
        let mapping = try self.mapping(allowing: ["cpu", "taskHeap", "managed", "network", "extended"])
        var profile = ResourceProfile()
        if let cpu = mapping["cpu"] {
            let text = try cpu.string()
            guard let cores = Double(text), cores >= 0, cores <= 1024 else { throw cpu.error("'\(text)' is not a number of cores") }
            profile.cpuMillis = Int64((cores * 1000).rounded())
        }
        let limit: ClosedRange<UInt64> = 0...(1 << 44)
        if let heap = mapping["taskHeap"] { profile.taskHeapBytes = Int64(try heap.byteSize(in: limit)) }
        if let managed = mapping["managed"] { profile.managedMemoryBytes = Int64(try managed.byteSize(in: limit)) }
        if let network = mapping["network"] { profile.networkMemoryBytes = Int64(try network.byteSize(in: limit)) }
        if let extendedValue = mapping["extended"] {
            for (name, amount) in try extendedValue.anyMapping() {
                profile.extended[name] = Int64(try amount.int(in: 0...1_000_000))
            }
        }
        return profile
    }

    /// The elements of a sequence.
    public func sequence() throws -> [YAMLValue] {
        guard case .sequence(let sequence) = node else { throw error("expected a list") }
        return sequence.enumerated().map { index, element in
            YAMLValue(node: element, keyPath: "\(keyPath)[\(index)]", file: file)
        }
    }

    public func string() throws -> String {
        guard case .scalar(let scalar) = node else { throw error("expected a single value, not a list or mapping") }
        return scalar.string
    }

    public func nonEmptyString() throws -> String {
        let text = try string()
        guard !text.isEmpty else { throw error("must not be empty") }
        return text
    }

    public func int(in range: ClosedRange<Int>) throws -> Int {
        let text = try string()
        guard let value = Int(text) else { throw error("'\(text)' is not a whole number") }
        guard range.contains(value) else {
            throw error("\(value) is out of range (\(range.lowerBound) to \(range.upperBound))")
        }
        return value
    }

    public func bool() throws -> Bool {
        switch try string().lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        case let other: throw error("'\(other)' is not true or false")
        }
    }

    /// A duration written `2s`, `500ms`, `1.5s`, `1m`.
    public func duration(in range: ClosedRange<Duration>) throws -> Duration {
        let text = try string()
        guard let value = DurationText.parse(text) else {
            throw error("'\(text)' is not a duration (write it like 2s, 500ms, 1.5s, 1m)")
        }
        guard range.contains(value) else {
            throw error(
                "\(text) is out of range (\(DurationText.format(range.lowerBound)) to \(DurationText.format(range.upperBound)))")
        }
        return value
    }

    /// A size written `1GiB`, `512MiB`, or a number of bytes.
    public func byteSize(in range: ClosedRange<UInt64>) throws -> UInt64 {
        let text = try string()
        guard let value = ByteSizeText.parse(text) else {
            throw error("'\(text)' is not a size (write it like 1GiB, 512MiB, or a number of bytes)")
        }
        guard range.contains(value) else {
            throw error(
                "\(text) is out of range (\(ByteSizeText.format(range.lowerBound)) to \(ByteSizeText.format(range.upperBound)))")
        }
        return value
    }

    public func identifier() throws -> Identifier {
        let text = try string()
        guard let identifier = Identifier(rawValue: text) else {
            throw error("'\(text)' is not a valid id: it \(Identifier.problem(with: text)!)")
        }
        return identifier
    }

    /// The value as an id of one kind (a job's, a vertex's, a master's, ...).
    public func identifier<Kind>(_ kind: Kind.Type = Kind.self) throws -> TypedIdentifier<Kind> { TypedIdentifier(try identifier()) }

    public func endpoint() throws -> Endpoint {
        let text = try string()
        guard let endpoint = Endpoint(text) else {
            throw error("'\(text)' is not an address of the form host:port (port 1 to 65535)")
        }
        return endpoint
    }

    /// One of `choices`.
    public func choice(_ choices: [String]) throws -> String {
        let text = try string()
        guard choices.contains(text) else {
            throw error("'\(text)' is not one of \(choices.joined(separator: ", "))")
        }
        return text
    }
}

/// The keys of one mapping.
public struct YAMLMapping {
    let entries: [String: YAMLValue]
    let owner: YAMLValue

    public subscript(_ key: String) -> YAMLValue? { entries[key] }

    public func required(_ key: String) throws -> YAMLValue {
        guard let value = entries[key] else {
            let path = owner.keyPath.isEmpty ? key : "\(owner.keyPath).\(key)"
            throw ConfigError(.missingKey, file: owner.file, keyPath: path, line: owner.line, "required key is missing")
        }
        return value
    }

    public var keys: [String] { entries.keys.sorted() }
}

/// A `host:port` address.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains(where: \.isWhitespace),
            let port = Int(text[text.index(after: colon)...]), (1...65_535).contains(port)
        else { return nil }
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Whether the host is this machine's loopback (`localhost`, 127.0.0.0/8, `::1`): traffic to
    /// it never leaves the machine.
    public var isLoopback: Bool {
        if host == "localhost" || host == "::1" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }
}
